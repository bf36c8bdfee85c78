"""What a marketplace sandbox offers the contract-test kit.

A plugin's ``sandbox_factory`` hook returns a :class:`SandboxFactory`: a
callable that starts a sandbox (a real server on loopback) and returns a
context manager yielding a :class:`Sandbox`.

Every sandbox implements :class:`Sandbox`. The methods of
:class:`SandboxExtras` are optional; each one a sandbox implements switches
on the checks that need it (the kit skips them otherwise, and says why):

- ``expected_orders()``: the canonical truth of the orders it serves, for the
  ``expected_records`` check (field by field, money exactly, dates as instants);
- ``expire_credentials()`` and ``issued_secrets()``: for marketplaces whose
  tokens expire, for the ``credentials_expire`` and ``secrets`` checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Sandbox(Protocol):
    """A running marketplace sandbox."""

    url: str

    def settings(self) -> dict[str, Any]:
        """Store settings that connect to this sandbox with good credentials."""

    def bad_settings(self) -> dict[str, Any]:
        """The same settings with credentials the sandbox refuses."""

    def add_orders(self, count: int) -> list[str]:
        """Create ``count`` new orders now; return their order keys as the host will see them."""

    def orders(self) -> list[dict[str, Any]]:
        """Every order the sandbox holds: at least ``order_key``, ``status``, ``tracking_number``, ``valid``.

        For partial shipments, ``shipped`` maps line keys to the quantities
        shipped so far.
        """

    def set_faults(self, **rates: float) -> None:
        """Set fault rates (``error_rate``, ``drop_rate``, ``quota_rate``, ``malformed_rate``...)."""


class SandboxExtras(Protocol):
    """Optional sandbox methods (see the module docstring); implement those that apply."""

    def expected_orders(self) -> Mapping[str, Mapping[str, Any]]:
        """The canonical truth per order key, as a part of the canonical order JSON.

        Give the fields the sandbox knows the right value of, with the shape
        of :func:`connector_core.models.to_json` of an :class:`~connector_core.models.Order`:
        money as decimal strings (``"1234.5"``, compared exactly as decimals),
        dates as ISO 8601 strings with an offset (compared as instants),
        ``items`` as a list in line order (compared by position; give a line's
        fields or ``{}`` to skip it). Fields left out are not compared. Orders
        left out (e.g. those without a shipping address) are not compared.
        """

    def expire_credentials(self) -> None:
        """Make every access token issued so far invalid now (the next call with one is refused)."""

    def issued_secrets(self) -> list[str]:
        """Every token or other secret the sandbox handed out (not the settings' own secrets)."""


SandboxFactory = Callable[..., AbstractContextManager[Sandbox]]

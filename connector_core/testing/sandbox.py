"""What a marketplace sandbox offers the contract-test kit.

A plugin's ``sandbox_factory`` hook returns a :class:`SandboxFactory`: a
callable that starts a sandbox (a real server on loopback) and returns a
context manager yielding a :class:`Sandbox`.
"""

from __future__ import annotations

from collections.abc import Callable
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
        """Every order the sandbox holds: at least ``order_key``, ``status``, ``tracking_number``, ``valid``."""

    def set_faults(self, **rates: float) -> None:
        """Set fault rates (``error_rate``, ``drop_rate``, ``quota_rate``, ``malformed_rate``...)."""


SandboxFactory = Callable[..., AbstractContextManager[Sandbox]]

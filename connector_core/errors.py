"""Every error the host raises or expects a plugin to raise.

One root, so a caller can catch everything the framework means to say::

    ConnectorError
    ├── ConfigError            bad settings, unknown store or marketplace, bad CLI input
    │   ├── SettingsError      settings that fail the plugin's settings schema
    │   └── CatalogueImportError  a catalogue file with bad rows (nothing imported)
    ├── PluginError            a plugin is missing, broken or answered out of contract
    ├── MarketplaceError       the marketplace answered with an error
    │   ├── AuthError          credentials refused: the message says what to fix
    │   ├── AccountError       account deactivated / suspended
    │   ├── TransientError     worth retrying (5xx, timeouts, dropped connections)
    │   │   ├── QuotaError     rate limit hit; carries ``retry_after`` seconds
    │   │   └── DeadlineError  no complete answer within the request's (or sync's) deadline
    │   └── TransitionError    an illegal order status change (e.g. ship a cancelled order)
    ├── PayloadError           one payload is unusable; the batch goes on without it
    │   ├── ValidationError    failed a JSON Schema; carries the JSON path
    │   ├── MappingError       could not be mapped to a canonical order
    │   └── HostileInputError  XML bombs, external entities, oversize or junk documents
    ├── StoreError             the order book cannot do what was asked
    │   └── LeaseBusyError     another live host process holds the store's lease
    └── DeliveryError          a customer e-mail could not be handed over

    WorkerFailed (not a ConnectorError: the host handles it itself)
                               a map worker died or failed; its pages are mapped in process
    Interrupted (not a ConnectorError: nothing may swallow it as one store's failure)
                               SIGTERM / Ctrl-C ended a wait; the work done so far is kept

Every exception carries its context (store, order key, JSON path) as
attributes and never a secret: messages are built from the context, and
:func:`connector_core.secrets.redact` is applied to anything a plugin passes in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

from connector_core.secrets import redact

if TYPE_CHECKING:
    from connector_core.catalogue import RowError


class ConnectorError(Exception):
    """Root of every error raised by the host or its plugins."""

    def __init__(
        self,
        message: str,
        *,
        store: str | None = None,
        order_key: str | None = None,
        path: str | None = None,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.store = store
        self.order_key = order_key
        self.path = path

    def __str__(self) -> str:
        return self.message

    def context(self) -> dict[str, Any]:
        """The error as a JSON-able dict (for ``--json`` output and the quarantine)."""
        out: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        for key in ("store", "order_key", "path"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class ConfigError(ConnectorError):
    """Bad configuration or user input; the message says which value to change."""


class SettingsError(ConfigError):
    """Store settings that fail the plugin's settings schema."""


class CatalogueImportError(ConfigError):
    """A catalogue file has bad rows; nothing of it was imported. ``errors`` lists each problem."""

    def __init__(self, message: str, *, errors: tuple[RowError, ...], **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors = errors


class PluginError(ConnectorError):
    """A plugin is missing, could not be loaded, or answered outside its contract."""


class MarketplaceError(ConnectorError):
    """The marketplace answered with an error it reported itself."""

    def __init__(self, message: str, *, code: str | int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.code = code


class AuthError(MarketplaceError):
    """Credentials were refused. Never retried; the user must fix the settings."""


class AccountError(MarketplaceError):
    """The account exists but cannot be used (deactivated, suspended)."""


class TransientError(MarketplaceError):
    """A failure that may pass: 5xx, timeouts, dropped connections."""


class QuotaError(TransientError):
    """The marketplace's rate limit was hit; wait ``retry_after`` seconds."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, until: datetime | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        self.until = until  # set when the host has blocked the partner: no call is made before it


class DeadlineError(TransientError):
    """A request (or a sync) ran out of its total deadline; the message names the site and what to do."""


class TransitionError(MarketplaceError):
    """An order status change that the marketplace's rules do not allow."""


class PayloadError(ConnectorError):
    """One payload is unusable. It is quarantined with this reason; the batch goes on."""

    stage = "payload"


class ValidationError(PayloadError):
    """A document failed a JSON Schema. ``path`` is the JSON path of the failure."""

    stage = "validation"

    def __init__(self, message: str, *, schema_id: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.schema_id = schema_id


class MappingError(PayloadError):
    """A valid raw payload could not be mapped to a canonical order."""

    stage = "mapping"


class HostileInputError(PayloadError):
    """A document was refused before parsing finished: entities, size cap, junk."""

    stage = "parse"


class StoreError(ConnectorError):
    """The order book could not do what was asked (unknown order, busy, bad state)."""


class LeaseBusyError(StoreError):
    """Another live host process holds the store's lease."""


class DeliveryError(ConnectorError):
    """A message could not be handed to the mail server (or written to the outbox).

    ``permanent`` is true when retrying cannot help (e.g. SMTP 5xx: the
    recipient does not exist); the row is then marked ``failed``.
    """

    def __init__(self, message: str, *, permanent: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.permanent = permanent


class WorkerFailed(Exception):
    """A map worker died or could not map a page; the sync maps the page itself."""


class Interrupted(Exception):
    """A wait was ended by :func:`connector_core.http.interrupt` (SIGTERM, Ctrl-C): stop, keeping what is done."""

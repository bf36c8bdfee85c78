"""Adding and changing stores: validate, connect, and save only what worked.

The command line and the web app call these, so a store is checked the
same way wherever it is created: its settings against the plugin's
settings schema (and the plugin's own check), then ``connect`` against the
marketplace; nothing is saved when either fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connector_core import quota
from connector_core.db.rows import StoreRecord
from connector_core.db.storage import OrderStore
from connector_core.errors import ConfigError
from connector_core.models import ConnectResult
from connector_core.plugins import PluginHost
from connector_core.secrets import register_settings
from connector_core.store_context import StoreContext

NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NAME_HELP = "a store name is 1 to 64 letters, digits, dots, underscores or hyphens, starting with a letter or digit"


def check_settings(host: PluginHost, marketplace: str, name: str, settings: Mapping[str, Any]) -> None:
    """Validate a store's name and plugin settings; raise a one-line error that says what to change."""
    info = host.info(marketplace)
    register_settings(info.settings_schema, settings)
    host.schemas.validate(
        "canonical/store_settings", {"name": name, "marketplace": marketplace, "settings": dict(settings)}
    )
    host.validate_settings(marketplace, dict(settings))


def connect(
    host: PluginHost, marketplace: str, name: str, settings: Mapping[str, Any], book: OrderStore | None = None
) -> ConnectResult:
    """Call the plugin's ``connect`` with these settings (nothing is saved).

    With the ``book`` given, its requests count against the partner's quota
    ledger as every other request does (:mod:`connector_core.quota`).
    """
    context = StoreContext(name=name, marketplace=marketplace, settings=dict(settings))
    if book is not None:
        context.http.gate = quota.ledger_for(host, book, marketplace, name, settings)
    try:
        return host.connect(context)
    finally:
        context.http.close()


def add_store(
    book: OrderStore,
    host: PluginHost,
    marketplace: str,
    name: str,
    settings: dict[str, Any],
    store_settings: dict[str, Any] | None = None,
) -> str:
    """Validate, connect and save a store; return the connected account. Nothing is saved on failure."""
    check_settings(host, marketplace, name, settings)
    if book.has_store(name):
        raise ConfigError(f"a store named {name!r} already exists: pick another --name or `stores remove {name}`")
    result = connect(host, marketplace, name, settings, book)
    book.add_store(name, marketplace, settings, store_settings=store_settings)
    return result.account


def update_store(book: OrderStore, host: PluginHost, name: str, changes: Mapping[str, Any]) -> tuple[StoreRecord, str]:
    """Change some plugin settings of a saved store, keeping its orders; validate and connect before saving.

    Returns the saved record and the connected account.
    """
    record = book.get_store(name)
    settings = {**record.settings, **changes}
    check_settings(host, record.marketplace, name, settings)
    result = connect(host, record.marketplace, name, settings, book)
    return book.update_store(name, settings=settings), result.account

"""Helpers of the reliability tests: a Spartoo host on a real order book, against the real sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.http import HttpPolicy
from connector_core.plugins import PluginHost, get_plugin_manager

FAST = HttpPolicy(max_attempts=8, backoff_base=0.001, backoff_max=0.01, max_total_wait=2.0, max_quota_wait=0.01)
STORE = "sp"


def spartoo_host() -> PluginHost:
    """A fresh plugin host holding the Spartoo plugin only."""
    import connector_spartoo.plugin

    return PluginHost(get_plugin_manager(plugins=[connector_spartoo.plugin], load_entrypoints=False, disabled=()))


def settings_for(sandbox_settings: dict[str, Any]) -> dict[str, Any]:
    """Store settings that reach the sandbox and see all its orders."""
    return {**sandbox_settings, "initial_lookback_days": 40}


def engine_on(book: OrderBook, sandbox_settings: dict[str, Any], **kw: Any) -> Engine:
    """An engine with one Spartoo store named ``sp`` reaching the sandbox."""
    if not book.has_store(STORE):
        book.add_store(STORE, "spartoo", settings_for(sandbox_settings))
    return Engine(spartoo_host(), book, http_policy=FAST, **kw)


def book_keys(db: Path) -> set[str]:
    """The order keys of store ``sp`` in the book at ``db``."""
    with OrderBook(db) as book:
        return {r[0] for r in book.conn.execute("SELECT order_key FROM orders WHERE store = ?", (STORE,))}

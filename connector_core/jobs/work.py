"""What a job does: open the book, run the engine for one store, close the book."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from connector_core.db import open_book
from connector_core.engine import Engine
from connector_core.plugins import PluginHost, get_plugin_manager


def _engine(book_target: str | None) -> Engine:
    # A fresh book per job: a worker runs jobs in several threads and a
    # connection is not shared across them.
    return Engine(PluginHost(get_plugin_manager()), open_book(book_target))


def _run(book_target: str | None, work: Callable[[Engine], Any]) -> dict[str, Any]:
    engine = _engine(book_target)
    try:
        return attrs.asdict(work(engine), value_serializer=_plain)
    finally:
        engine.book.close()


def run_sync(book_target: str | None, store: str) -> dict[str, Any]:
    """Sync ``store``; the report as plain data (procrastinate keeps a job's result as JSON)."""
    return _run(book_target, lambda engine: engine.sync(store))


def run_push(book_target: str | None, store: str) -> dict[str, Any]:
    """Push ``store``'s pending shipments; the report as plain data."""
    return _run(book_target, lambda engine: engine.push(store))


def _plain(inst: Any, field: Any, value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict, tuple)) else str(value)

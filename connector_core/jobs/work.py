"""What a job does: open the book, run the engine for one store, close the book."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from connector_core import quota
from connector_core.db import open_book
from connector_core.engine import Engine
from connector_core.plugins import PluginHost, get_plugin_manager


def _engine(book_target: str | None) -> Engine:
    # A fresh book per job: a worker runs jobs in several threads and a
    # connection is not shared across them.
    return Engine(PluginHost(get_plugin_manager()), open_book(book_target))


def _run(
    book_target: str | None, store: str, work: Callable[[Engine], Any], left: Callable[[Any], bool]
) -> dict[str, Any]:
    engine = _engine(book_target)
    try:
        report = work(engine)
        result = attrs.asdict(report, value_serializer=_plain)
        result["blocked_until"] = _blocked_until(engine, store) if left(report) else None
        return result
    finally:
        engine.book.close()


def _blocked_until(engine: Engine, store: str) -> str | None:
    """When the quota block of ``store``'s partner ends (ISO), if it is blocked now."""
    record = engine.book.get_store(store)
    marketplace, partner = quota.scope_of(engine.host, record.marketplace, record.name, record.settings)
    until = engine.book.quota_blocked_until(marketplace, partner)
    return None if until is None else until.isoformat()


def run_sync(book_target: str | None, store: str) -> dict[str, Any]:
    """Sync ``store``; the report as plain data (procrastinate keeps a job's result as JSON).

    ``blocked_until`` says when the partner's quota reopens if the sync left
    work for then (its task queues itself again for that moment).
    """
    return _run(book_target, store, lambda engine: engine.sync(store), lambda report: bool(report.quota_until))


def run_push(book_target: str | None, store: str) -> dict[str, Any]:
    """Push ``store``'s pending shipments; the report as plain data (``blocked_until``: as for a sync)."""
    return _run(book_target, store, lambda engine: engine.push(store), lambda report: report.retry > 0)


def _plain(inst: Any, field: Any, value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict, tuple)) else str(value)

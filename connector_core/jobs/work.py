"""What a job does: open the book, run the engine for one store, close the book."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import attrs

from connector_core import quota
from connector_core.db import open_book
from connector_core.engine import Engine
from connector_core.plugins import PluginHost, get_plugin_manager

_HOSTS: dict[int, PluginHost] = {}
_HOSTS_LOCK = threading.Lock()


def _plugin_host() -> PluginHost:
    """This worker process's plugin host, made by its first job and shared by the jobs after it.

    Making one loads every plugin and compiles every JSON Schema, about
    70 ms of CPU: more than half of what a small store's sync costs. Jobs
    running side by side share it as the threads of ``sync_all`` do; a
    forked child makes its own.
    """
    pid = os.getpid()
    with _HOSTS_LOCK:
        host = _HOSTS.get(pid)
        if host is None:
            host = _HOSTS[pid] = PluginHost(get_plugin_manager())
        return host


def _engine(book_target: str | None) -> Engine:
    # A fresh book per job: a worker runs jobs in several threads and a
    # connection is not shared across them.
    return Engine(_plugin_host(), open_book(book_target))


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
    until = quota.saved_store_block(engine.host, engine.book, engine.book.get_store(store))
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

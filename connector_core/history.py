"""The history of syncs and pushes: one ``runs`` row per sync or push of a store, from start to end.

The sync runner and the push open a run with :func:`recording` and keep its
counters up to date as they go; the row says when it started and ended, how
it ended (``done``, ``failed`` with the error, ``interrupted`` by Ctrl-C or
SIGTERM) and what it did. ``runs list`` and ``runs show`` (and the web app)
read it back with :meth:`OrderBook.list_runs` and :meth:`OrderBook.get_run`.
A push with nothing to send (the ``run`` loop's usual case) records no run.
A run whose process died keeps ``running`` with no end: ``runs show`` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs

from connector_core.db.history import RUN_COUNTS
from connector_core.db.storage import OrderStore
from connector_core.errors import ConnectorError
from connector_core.secrets import redact

log = logging.getLogger("connector_core.history")


@attrs.define
class RunLog:
    """A run being recorded: the caller updates its counters; the row is written at the end."""

    id: int
    counts: dict[str, int] = attrs.field(factory=dict)
    cursor: Any = None
    state: str = "done"
    """How the run ends if it returns normally: ``done``, or ``interrupted`` when it stopped early."""
    error: str | None = None

    def update(self, **counts: int) -> None:
        """Set some counters (``fetched``, ``stored``, ``rejected``, ``accepted``, ``pushed``, ...)."""
        unknown = set(counts) - set(RUN_COUNTS)
        if unknown:
            raise ValueError(f"unknown run counters: {sorted(unknown)}")
        self.counts.update(counts)


def sites_of(settings: dict[str, Any]) -> list[str] | None:
    """The marketplace sites a store's settings name (``sites``), if any."""
    sites = settings.get("sites")
    if isinstance(sites, list | tuple):
        return [str(s) for s in sites]
    if isinstance(sites, str) and sites:
        return [sites]
    return None


@contextmanager
def recording(book: OrderStore, kind: str, store: str, sites: Sequence[str] | None = None) -> Iterator[RunLog]:
    """Record one sync or push of ``store``: a row now, its end and counters when the block ends.

    An exception ends the run as ``failed`` (with the error's one-line
    message) or, for ``KeyboardInterrupt``, ``interrupted``, and goes on.
    """
    run = RunLog(book.start_run(kind, store, sites))
    try:
        yield run
    except KeyboardInterrupt:
        _finish(book, run, "interrupted", "stopped by Ctrl-C")
        raise
    except ConnectorError as err:
        _finish(book, run, "failed", err.message)
        raise
    except BaseException as exc:
        _finish(book, run, "failed", redact(f"{type(exc).__name__}: {exc}"))
        raise
    else:
        _finish(book, run, run.state, run.error)


def _finish(book: OrderStore, run: RunLog, state: str, error: str | None) -> None:
    try:
        book.finish_run(run.id, state, run.counts, error=error, cursor=run.cursor)
    except ConnectorError as err:  # the history never hides what the run itself did or raised
        log.warning("could not record the end of run %d: %s", run.id, err)

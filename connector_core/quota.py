"""Marketplace quotas: a quota answer blocks its (marketplace, partner) in the order book until the window resets.

The HTTP layer never sleeps through a marketplace's quota window
(:mod:`connector_core.http` raises :class:`~connector_core.errors.QuotaError`
at once). The engine records the block here, in the order book, so every
store of the same partner account and every host process sharing the book
sees it; calls for a blocked partner are not made (:func:`ensure_open`
raises before any request), and the deferred work (accepts in the accept
outbox, shipments in the outbox, the orders past the cursor) is picked up
by the first sync or push after the block ends.

Before that, when the operator gives the quota's size (the setting the
plugin's quota model names in ``requests_setting``; Spartoo's is
``requests_per_hour``, since Spartoo does not publish it), every request of
every store of the partner, in every process on the book, first takes one
from the book's request ledger (:class:`Ledger`, one statement per request:
:meth:`~connector_core.db.quota.LedgerTable.take_request`). Once the
window's requests are taken, the ledger refuses the next one with a
:class:`QuotaError` before it is sent, which blocks the partner as a quota
answer would, so no marketplace ever sees more requests than its quota. Without
the size the host does not count ahead and only a quota answer blocks.

The block lasts until the marketplace's own ``retry_after`` when the answer
gives one, else until the end of the quota window of the plugin's
:class:`~connector_core.models.QuotaModel` (Spartoo: the next clock hour),
else one hour. The partner is keyed by a fingerprint of the setting that
names it (:func:`fingerprint`), never by the secret itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from connector_core.errors import ConnectorError, QuotaError

if TYPE_CHECKING:
    from connector_core.db.rows import StoreRecord
    from connector_core.db.storage import OrderStore
    from connector_core.models import QuotaModel
    from connector_core.plugins import PluginHost
    from connector_core.runtime import Runtime
    from connector_core.store_context import StoreContext

log = logging.getLogger("connector_core.quota")

DEFAULT_WINDOW = 3600
"""Seconds a quota answer blocks a store whose plugin declares no quota model."""


def fingerprint(value: str) -> str:
    """A stable, non-secret key for a partner account (the first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def scope(runtime: Runtime, store: StoreContext) -> tuple[str, str]:
    """``(marketplace, partner key)`` of the quota ``store`` draws on."""
    return scope_of(runtime.host, store.marketplace, store.name, store.settings)


def scope_of(host: PluginHost, marketplace: str, name: str, settings: Mapping[str, Any]) -> tuple[str, str]:
    """:func:`scope` of a saved store from its marketplace, name and settings (no store context needed)."""
    model = host.info(marketplace).quota
    if model is None or settings.get(model.partner_setting) in (None, ""):
        return marketplace, f"store:{name}"
    return marketplace, fingerprint(str(settings[model.partner_setting]))


def store_blocks(host: PluginHost, book: OrderStore) -> dict[str, datetime | None]:
    """Each saved store's quota block: when it ends, or ``None`` while calls may be made.

    A store whose plugin is not installed has nothing to say of its quota (``None``).
    """
    out: dict[str, datetime | None] = {}
    for record in book.list_stores():
        try:
            out[record.name] = saved_store_block(host, book, record)
        except ConnectorError:
            out[record.name] = None
    return out


def saved_store_block(host: PluginHost, book: OrderStore, record: StoreRecord) -> datetime | None:
    """When the quota block of a saved store's partner ends, or ``None`` while calls may be made."""
    return book.quota_blocked_until(*scope_of(host, record.marketplace, record.name, record.settings))


def _aligned_end(epoch: float, seconds: int) -> datetime:
    """The end of the aligned window of ``seconds`` (e.g. the clock hour) that holds ``epoch``."""
    start = int(epoch)
    return datetime.fromtimestamp(start - start % seconds + seconds, UTC)


def window_end(runtime: Runtime, store: StoreContext, now: datetime | None = None) -> datetime:
    """When the current quota window of ``store``'s marketplace ends."""
    moment = now or datetime.now(UTC)
    model = runtime.host.info(store.marketplace).quota
    seconds = model.window_seconds if model is not None else DEFAULT_WINDOW
    if model is not None and model.aligned:
        return _aligned_end(moment.timestamp(), seconds)
    return moment + timedelta(seconds=seconds)


def blocked_until(runtime: Runtime, store: StoreContext) -> datetime | None:
    """When the block on ``store``'s quota ends, or ``None`` if calls may be made now."""
    marketplace, partner = scope(runtime, store)
    return runtime.book.quota_blocked_until(marketplace, partner)


def clock_time(when: datetime) -> str:
    """``when`` as the one-line form the CLI shows (``14:00 UTC``; with the date when not today)."""
    when = when.astimezone(UTC)
    if when.date() != datetime.now(UTC).date():
        return when.strftime("%Y-%m-%d %H:%M UTC")
    return when.strftime("%H:%M UTC")


def blocked_error(runtime: Runtime, store: StoreContext, until: datetime) -> QuotaError:
    """The error for a call refused because ``store``'s quota is blocked until ``until``."""
    title = runtime.host.info(store.marketplace).title
    wait = max(0.0, (until - datetime.now(UTC)).total_seconds())
    return QuotaError(
        f"{title} quota used up until {clock_time(until)}: no call is made before then; "
        "the next sync or push after that picks the deferred work up",
        retry_after=wait,
        until=until,
        store=store.name,
    )


def ensure_open(runtime: Runtime, store: StoreContext) -> None:
    """Raise the :func:`blocked_error` when ``store``'s quota is blocked; do nothing otherwise."""
    until = blocked_until(runtime, store)
    if until is not None:
        raise blocked_error(runtime, store, until)


def block(runtime: Runtime, store: StoreContext, err: QuotaError) -> datetime:
    """Record the quota answer ``err``: block ``store``'s partner until the window resets; return that moment."""
    if err.until is not None:  # already a block the host recorded
        return err.until
    now = datetime.now(UTC)
    until = now + timedelta(seconds=err.retry_after) if err.retry_after else window_end(runtime, store, now)
    marketplace, partner = scope(runtime, store)
    runtime.book.block_quota(marketplace, partner, until, err.message)
    log.warning("%s: quota used up until %s: %s", store.name, clock_time(until), err.message)
    return runtime.book.quota_blocked_until(marketplace, partner) or until


def request_limit(model: QuotaModel | None, settings: Mapping[str, Any]) -> int | None:
    """The quota's size the store's settings give (``model.requests_setting``), or ``None`` when not given."""
    if model is None or model.requests_setting is None:
        return None
    value = settings.get(model.requests_setting)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


class Ledger:
    """The client gate of one store: takes a request from the book's ledger before each marketplace request.

    It works on a connection of its own to the book (opened at the first
    request, and again in a forked child), so a request is counted at once,
    never held in (or rolled back with) a write of the sync. Threads of one
    store share it; a lock keeps its connection to one of them at a time.
    """

    def __init__(
        self, book: OrderStore, marketplace: str, partner: str, *, limit: int, model: QuotaModel, title: str
    ) -> None:
        self._source = book
        self.marketplace = marketplace
        self.partner = partner
        self.limit = limit
        self._model = model
        self._title = title
        self._book: OrderStore | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Ledger({self.marketplace!r}, partner={self.partner!r}, limit={self.limit})"

    def __call__(self) -> None:
        """Take one request; when none is left, block the partner until one is and raise that :class:`QuotaError`.

        The block is recorded here, with the exact end of the window (an
        aligned window reopens at its end; a rolling one lets one request in
        once one has drained), so every process sees the same moment.
        """
        model = self._model
        now = time.time()
        with self._lock:
            if self._book is None or self._pid != os.getpid():
                self._book = self._source.reopen()
                self._pid = os.getpid()
            if self._book.take_request(
                self.marketplace,
                self.partner,
                limit=self.limit,
                window=model.window_seconds,
                aligned=model.aligned,
                now=now,
            ):
                return
            if model.aligned:
                until = _aligned_end(now, model.window_seconds)
            else:
                until = datetime.fromtimestamp(now + model.window_seconds / self.limit, UTC)
            span = "hour" if model.window_seconds == 3600 else f"{model.window_seconds} s"
            message = (
                f"{self._title}: the {self.limit} requests per {span} set for this partner"
                f" ({model.requests_setting}) are used up"
            )
            self._book.block_quota(self.marketplace, self.partner, until, message)
        log.warning("quota used up until %s: %s", clock_time(until), message)
        raise QuotaError(message, retry_after=max(0.0, until.timestamp() - now), until=until)

    def close(self) -> None:
        """Close the ledger's connection (a new one opens if the store makes another request)."""
        with self._lock:
            if self._book is not None and self._pid == os.getpid():
                self._book.close()
            self._book = None


def ledger_for(
    host: PluginHost, book: OrderStore, marketplace: str, name: str, settings: Mapping[str, Any]
) -> Ledger | None:
    """The :class:`Ledger` a store's client must ask before each request, or ``None`` when its quota has no size."""
    info = host.info(marketplace)
    limit = request_limit(info.quota, settings)
    if info.quota is None or limit is None:
        return None
    _, partner = scope_of(host, marketplace, name, settings)
    return Ledger(book, marketplace, partner, limit=limit, model=info.quota, title=info.title)

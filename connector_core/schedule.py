"""When each store is due for a sync: its ``schedule.sync_interval`` after its last sync began.

``run`` syncs, in each cycle, the stores that are due, the most out-of-date
first (never synced, then the oldest last sync), so no store waits behind
the others; a store whose interval is 0 is due on every cycle. The web app's
stores page shows the same next time. The last sync is read from the run
history (``runs``), whatever started it (``run``, ``sync``, the web app),
and counts whether it succeeded or not: a failing store is retried on its
interval, not on every cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs

from connector_core import host_settings
from connector_core.clock import parse_iso
from connector_core.db.rows import StoreRecord
from connector_core.db.storage import OrderStore
from connector_core.errors import ConnectorError


@attrs.frozen
class Slot:
    """One store's place in the schedule."""

    store: str
    interval: float
    last_sync: datetime | None
    next_sync: datetime | None
    """``None``: on every cycle of ``run`` (interval 0) or never synced yet (due now)."""

    def due(self, now: datetime) -> bool:
        """Whether ``run`` syncs the store in a cycle beginning at ``now``."""
        return self.next_sync is None or self.next_sync <= now


def _interval(record: StoreRecord) -> float:
    try:
        return host_settings.load(record.store_settings, store=record.name).schedule.sync_interval
    except ConnectorError:  # settings that no longer validate: the store is synced every cycle, which reports them
        return 0.0


def slots(
    book: OrderStore, records: Sequence[StoreRecord] | None = None, *, default_interval: float = 0.0
) -> list[Slot]:
    """Every store's slot, the most out-of-date first (never synced first, then by last sync, then by name).

    ``default_interval`` stands for a store's interval of 0: ``run`` leaves it
    0 (every cycle); the workers, which have no cycle, give their own.
    """
    last = book.last_sync_starts()
    out = []
    for record in book.list_stores() if records is None else records:
        interval = _interval(record) or default_interval
        began = parse_iso(last[record.name]) if record.name in last else None
        following = began + timedelta(seconds=interval) if began is not None and interval > 0 else None
        out.append(Slot(record.name, interval, began, following))
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(out, key=lambda s: (s.last_sync is not None, s.last_sync or oldest, s.store))


def due_stores(book: OrderStore, now: datetime | None = None, *, default_interval: float = 0.0) -> list[str]:
    """The stores due for a sync at ``now``, the most out-of-date first (``default_interval``: see :func:`slots`)."""
    moment = now or datetime.now(UTC)
    return [s.store for s in slots(book, default_interval=default_interval) if s.due(moment)]

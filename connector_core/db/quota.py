"""The quota table of the order book: which (marketplace, partner) is blocked, until when and why.

A marketplace's request quota belongs to the partner account, not to one
store or one process: every store and every host process sharing the book
sees the same row. ``partner`` is whatever the caller keys it by (the host
uses a fingerprint of the partner ID, never the ID itself).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from connector_core.clock import utc_iso


class QuotaTable:
    """The ``quotas`` table, mixed into :class:`~connector_core.db.book.OrderBook`."""

    conn: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover - OrderBook's
        raise NotImplementedError

    def quota_blocked_until(self, marketplace: str, partner: str) -> datetime | None:
        """When the block of (``marketplace``, ``partner``) ends, or ``None`` if it is not blocked (any more)."""
        row = self.conn.execute(
            "SELECT blocked_until FROM quotas WHERE marketplace = ? AND partner = ?", (marketplace, partner)
        ).fetchone()
        if row is None:
            return None
        until = datetime.fromisoformat(str(row[0]).replace("Z", "+00:00"))
        until = until if until.tzinfo else until.replace(tzinfo=UTC)
        return until if until > datetime.now(UTC) else None

    def block_quota(self, marketplace: str, partner: str, until: datetime, reason: str) -> None:
        """Block (``marketplace``, ``partner``) until ``until``; a longer block already recorded is kept."""
        stamp = utc_iso(until, fixed=True)
        with self.transaction() as c:
            c.execute(
                "INSERT INTO quotas (marketplace, partner, blocked_until, reason, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (marketplace, partner) DO UPDATE SET blocked_until = excluded.blocked_until,"
                " reason = excluded.reason, updated_at = excluded.updated_at"
                " WHERE excluded.blocked_until > quotas.blocked_until",
                (marketplace, partner, stamp, reason, utc_iso(fixed=True)),
            )

    def clear_quota(self, marketplace: str, partner: str) -> None:
        """Lift the block of (``marketplace``, ``partner``), if any."""
        with self.transaction() as c:
            c.execute("DELETE FROM quotas WHERE marketplace = ? AND partner = ?", (marketplace, partner))


def _take_sql(aligned: bool) -> str:
    """The one statement that takes a request from the ledger; it returns a row only when the request may go.

    The ledger row holds ``level``, the requests counted against the quota,
    and ``stamp``. An aligned window (a clock hour) starts the count afresh
    when ``stamp``, the start of the window counted, is older than the
    window of the request. A rolling window is a leaky bucket: the count
    drains at ``limit / window`` per second since ``stamp`` (the last
    request): bursts of up to ``limit``, and ``limit`` per window on average.
    Either way the row's lock (SQLite's single writer, PostgreSQL's row lock
    taken by ``ON CONFLICT DO UPDATE``, whose ``WHERE`` sees the row as the
    last committed taker left it) makes the count exact across processes.
    """
    if aligned:
        level = "CASE WHEN quota_ledger.stamp < excluded.stamp THEN 0 ELSE quota_ledger.level END"
        stamp = "CASE WHEN quota_ledger.stamp < excluded.stamp THEN excluded.stamp ELSE quota_ledger.stamp END"
    else:
        elapsed = "CASE WHEN excluded.stamp > quota_ledger.stamp THEN excluded.stamp - quota_ledger.stamp ELSE 0 END"
        drained = f"quota_ledger.level - ({elapsed}) * ?"
        level = f"CASE WHEN {drained} > 0 THEN {drained} ELSE 0 END"
        stamp = "CASE WHEN excluded.stamp > quota_ledger.stamp THEN excluded.stamp ELSE quota_ledger.stamp END"
    return (
        "INSERT INTO quota_ledger (marketplace, partner, stamp, level, granted) VALUES (?, ?, ?, 1, 1)"
        f" ON CONFLICT (marketplace, partner) DO UPDATE SET level = {level} + 1, stamp = {stamp},"
        " granted = quota_ledger.granted + 1"
        f" WHERE {level} + 1 <= ? RETURNING level"
    )


_TAKE = {True: _take_sql(True), False: _take_sql(False)}


class LedgerTable:
    """The ``quota_ledger`` table: requests counted per (marketplace, partner) in the current quota window.

    Its methods run one autocommit statement each on the connection they
    are given, never inside another write of the book: a request's count
    must not wait for (or roll back with) a page being stored.
    """

    conn: sqlite3.Connection

    def take_request(
        self, marketplace: str, partner: str, *, limit: int, window: float, aligned: bool, now: float
    ) -> bool:
        """Count one request of (``marketplace``, ``partner``) at ``now`` (epoch seconds) if the quota allows it.

        ``limit`` requests fit in one ``window`` (seconds); ``aligned`` windows
        start on multiples of it (a clock hour for 3600). Returns whether the
        request may be sent; a refusal is counted too (``refused``).
        """
        if aligned:
            start = now - now % window
            params: tuple[object, ...] = (marketplace, partner, start, limit)
        else:
            rate = limit / window
            params = (marketplace, partner, now, rate, rate, rate, rate, limit)
        if self.conn.execute(_TAKE[aligned], params).fetchone() is not None:
            return True
        self.conn.execute(
            "UPDATE quota_ledger SET refused = refused + 1 WHERE marketplace = ? AND partner = ?",
            (marketplace, partner),
        )
        return False

    def ledger_counts(self, marketplace: str, partner: str) -> tuple[int, int]:
        """``(granted, refused)``: the requests of (``marketplace``, ``partner``) the ledger let through and refused."""
        row = self.conn.execute(
            "SELECT granted, refused FROM quota_ledger WHERE marketplace = ? AND partner = ?", (marketplace, partner)
        ).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

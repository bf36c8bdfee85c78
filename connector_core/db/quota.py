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

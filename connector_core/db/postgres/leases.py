"""Per-store leases on PostgreSQL: session-level advisory locks instead of lease rows.

A lease is ``pg_try_advisory_lock`` held on a connection of its own. The
server frees it when that connection ends, so a holder that crashes or is
killed frees its stores at once, with no expiry to wait for and no renewal
thread. The busy message names the holder through ``application_name``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from types import TracebackType

from connector_core.db.leases import make_owner
from connector_core.db.postgres.connection import PgConnection
from connector_core.errors import LeaseBusyError, StoreError

log = logging.getLogger(__name__)
LEASE_SPACE = 0x6C65  # first key of every store lease (the second: hashtext(store))
LEASE_TCP = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
             "tcp_user_timeout": 10_000}  # fmt: skip
"""libpq settings of a lease's connection: a server that went away is noticed within about 10 s."""


class AdvisoryLease:
    """A held store lease; release it (or leave the ``with`` block) to free the store."""

    def __init__(self, conn: PgConnection, name: str, owner: str) -> None:
        self.name = name
        self.owner = owner
        self.lost = False
        self._conn = conn

    def __repr__(self) -> str:
        return f"AdvisoryLease(name={self.name!r}, owner={self.owner!r}, lost={self.lost})"

    def check(self) -> None:
        """Raise :class:`StoreError` if the session holding the lock is gone (the lock with it).

        The connection sits idle while the lock is held, so its client side
        learns nothing of a session the server ended (an administrator, an
        ``idle_session_timeout``, a NAT that dropped it): each check asks the
        server (one round trip, where a push makes two to the marketplace; a
        dead link is bounded by the connection's TCP timeouts). A
        session-level advisory lock lives as long as its session, so an
        answer means the lock is still held.
        """
        if self._conn.closed:
            self.lost = True
        elif not self.lost:
            try:
                self._conn.execute("SELECT 1").fetchone()
            except sqlite3.Error:  # the adapter's form of psycopg's errors
                self.lost = True
        if self.lost:
            raise StoreError(
                f"the lease on {self.name!r} was lost (its connection to the order book ended): "
                "stopping this run; its work so far is saved"
            )

    def release(self) -> None:
        """Free the lock, then close its connection (idempotent).

        The lock is freed by a statement first: a closed connection's server
        process drops its locks a moment after the client has gone, so a
        lease taken right after a bare close could still find the store busy.
        """
        if self._conn.closed:
            return
        try:
            if not self.lost:
                self._conn.execute("SELECT pg_advisory_unlock_all()").fetchone()
        except sqlite3.Error:  # the session is gone, and its locks with it
            self.lost = True
        finally:
            self._conn.close()

    def __enter__(self) -> AdvisoryLease:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _holder(conn: PgConnection, name: str) -> str:
    row = conn.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = ? AND l.objid = hashtext(?)::oid",
        (LEASE_SPACE, name),
    ).fetchone()
    return str(row[0]) if row and row[0] else "unknown"


def acquire(
    url: str, name: str, *, purpose: str, wait: float = 0.0, poll: float = 0.1, shared: bool = False
) -> AdvisoryLease:
    """Take store ``name``'s lock, waiting up to ``wait`` seconds; raise :class:`LeaseBusyError`.

    ``shared`` takes it in shared mode: any number of shared holders at once,
    none while an exclusive holder has it (and the reverse).
    """
    take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    owner = make_owner()
    conn = PgConnection(url, options=LEASE_TCP)
    try:
        conn.execute("SELECT set_config('application_name', ?, false)", (f"{owner} {purpose}"[:63],))
        deadline = time.monotonic() + wait
        while True:
            got = conn.execute(f"SELECT {take}(?, hashtext(?))", (LEASE_SPACE, name)).fetchone()
            if got[0]:
                return AdvisoryLease(conn, name, owner)
            if time.monotonic() >= deadline:
                holder = _holder(conn, name)
                raise LeaseBusyError(
                    f"another host process ({holder}) is working on {name!r}: wait for it to finish and try again",
                    store=name,
                )
            time.sleep(poll)
    except BaseException:
        conn.close()
        raise

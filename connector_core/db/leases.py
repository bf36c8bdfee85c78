"""Per-store leases: one host process at a time syncs or pushes a store.

Two host processes may share one order book file (a ``run`` loop and a
``sync`` typed by hand, or two machines on a network share). Each sync or
push of a store first takes the store's lease: a row of the ``leases``
table naming its owner and an expiry time, written in a ``BEGIN IMMEDIATE``
transaction so that two takers cannot both win. While the work goes on, a
background thread renews the lease (on its own SQLite connection) every
third of its time to live; at the end the lease is released.

A lease is *stale*, and may be taken over, when it has expired or when its
owner is a process on this machine that no longer exists (killed with
SIGKILL, say): a crashed host never blocks the next one for long.

The table is created by the order book's schema migrations
(:mod:`connector_core.db.migrations`).
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType

from connector_core.db.connection import transaction
from connector_core.errors import LeaseBusyError, StoreError

log = logging.getLogger("connector_core.db.leases")

DEFAULT_TTL = 60.0
"""Seconds a lease lives without renewal."""


def make_owner() -> str:
    """A lease owner id for this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_alive(owner: str) -> bool:
    """Whether ``owner`` may still be alive (always ``True`` for another machine)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0:1] != ["Z"]


def try_acquire(conn: sqlite3.Connection, name: str, owner: str, purpose: str, ttl: float) -> str | None:
    """Take lease ``name`` for ``owner`` if it is free or stale; return ``None``, or the holder's owner id.

    One write transaction (:func:`connector_core.db.connection.transaction`):
    two takers cannot both win.
    """
    now = time.time()
    with transaction(conn, savepoint="lease", where="the lease table"):
        row = conn.execute("SELECT owner, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
        if row is not None:
            holder, expires = str(row[0]), float(row[1])
            if holder != owner and expires > now and _owner_alive(holder):
                return holder  # nothing was written: the commit is empty
            if holder != owner:
                log.info("lease %s: taking over a stale lease of %s", name, holder)
        conn.execute(
            "INSERT INTO leases (name, owner, purpose, expires_at, acquired_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, purpose = excluded.purpose,"
            " expires_at = excluded.expires_at, acquired_at = excluded.acquired_at",
            (name, owner, purpose, now + ttl, now),
        )
    return None


def renew(conn: sqlite3.Connection, name: str, owner: str, ttl: float) -> bool:
    """Push the expiry of ``owner``'s lease ``name`` forward; ``False`` if it is no longer ours."""
    cur = conn.execute(
        "UPDATE leases SET expires_at = ? WHERE name = ? AND owner = ?", (time.time() + ttl, name, owner)
    )
    return cur.rowcount == 1


def release(conn: sqlite3.Connection, name: str, owner: str) -> None:
    """Give lease ``name`` back (only if ``owner`` still holds it)."""
    conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))


class Lease:
    """A held lease, renewed by a background thread until :meth:`release` (or the ``with`` block ends).

    Take one with :func:`acquire`. :meth:`check` raises :class:`StoreError`
    if the lease was lost (renewal found another owner), so the work stops
    before it writes anything more.
    """

    def __init__(
        self, path: Path, conn: sqlite3.Connection, name: str, owner: str, ttl: float, timeout_ms: int
    ) -> None:
        self.path = path
        self.name = name
        self.owner = owner
        self.ttl = ttl
        self._conn = conn
        self._timeout_ms = timeout_ms
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._keep, name=f"lease-{name}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"Lease(name={self.name!r}, owner={self.owner!r}, lost={self.lost})"

    def _keep(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self._timeout_ms / 1000, isolation_level=None)
        try:
            while not self._stop.wait(self.ttl / 3):
                try:
                    if not renew(conn, self.name, self.owner, self.ttl):
                        self.lost = True
                        log.warning("lease %s: lost to another process", self.name)
                        return
                except sqlite3.Error as exc:  # a busy file: try again at the next beat
                    log.info("lease %s: renewal postponed (%s)", self.name, exc)
        finally:
            conn.close()

    def check(self) -> None:
        """Raise :class:`StoreError` if another process has taken this lease over."""
        if self.lost:
            raise StoreError(
                f"the lease on {self.name!r} was taken over by another process: stopping this run; "
                "its work so far is saved"
            )

    def release(self) -> None:
        """Stop renewing and give the lease back."""
        self._stop.set()
        self._thread.join()
        if not self.lost:
            try:
                release(self._conn, self.name, self.owner)
            except sqlite3.Error as exc:  # it expires by itself
                log.warning("lease %s: could not release (%s); it will expire", self.name, exc)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def acquire(
    conn: sqlite3.Connection,
    path: Path,
    name: str,
    *,
    purpose: str,
    owner: str | None = None,
    ttl: float = DEFAULT_TTL,
    wait: float = 0.0,
    poll: float = 0.1,
    timeout_ms: int = 30_000,
) -> Lease:
    """Take lease ``name``, waiting up to ``wait`` seconds for its holder; raise :class:`LeaseBusyError`."""
    who = owner or make_owner()
    deadline = time.monotonic() + wait
    while True:
        try:
            holder = try_acquire(conn, name, who, purpose, ttl)
        except sqlite3.Error as exc:
            raise StoreError(f"could not take the lease on {name!r}: {exc}") from None
        if holder is None:
            return Lease(path, conn, name, who, ttl, timeout_ms)
        if time.monotonic() >= deadline:
            raise LeaseBusyError(
                f"another host process ({holder}) is working on {name!r}: wait for it to finish and try again",
                store=name,
            )
        time.sleep(poll)

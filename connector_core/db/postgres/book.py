"""The order book on a PostgreSQL server: the SQLite book's code over :class:`PgConnection`.

Every query of :class:`~connector_core.db.book.OrderBook` and its mixins
(outbox, history, quota) is standard SQL that PostgreSQL runs as written
(``ON CONFLICT ... DO UPDATE``, ``RETURNING``); what is SQLite's alone is
overridden here: opening (a URL, no file), the schema version, leases
(advisory locks, see :mod:`.leases`), and the WAL tuning of
:meth:`bulk_writes` (nothing to tune), and the database session each run is
started from (:attr:`RUN_SESSION`: ``close_abandoned_runs`` ends the runs of
dead sessions while other pushers share the store). :meth:`claim_shipments` adds the
claim several workers can share: ``FOR UPDATE SKIP LOCKED`` hands each
pending shipment to one of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from connector_core.db import book as sqlite_book
from connector_core.db.connection import transaction
from connector_core.db.leases import DEFAULT_TTL
from connector_core.db.postgres import leases, migrations
from connector_core.db.postgres.connection import PgConnection
from connector_core.db.rows import OutboxEntry, outbox_entry
from connector_core.db.target import mask_url


class PostgresBook(sqlite_book.OrderBook):
    """The order book in a PostgreSQL database (``postgresql://user:password@host/db``)."""

    UTF8_TEXT = "convert_from(?, 'UTF8')"
    """UTF-8 bytes (sent as ``bytea``) stored as text."""
    RUN_SESSION = "(SELECT pid::text || '@' || backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid())"
    """A run's session: its backend pid and start time (a pid alone is reused)."""
    RUN_SESSION_GONE = (
        "session IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a"
        " WHERE a.pid::text = split_part(runs.session, '@', 1)"
        " AND (a.backend_start IS NULL OR a.pid::text || '@' || a.backend_start::text = runs.session))"
    )
    """No live session is the run's. Another role's session whose start time the server hides is taken
    as the run's while its pid is alive, so a live run is never ended."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 30_000) -> None:
        self.url = url
        self.path = mask_url(url)  # type: ignore[assignment]  # what messages name; never the password
        self.busy_timeout_ms = busy_timeout_ms
        self.conn = PgConnection(url)  # type: ignore[assignment]
        try:
            self.conn.execute("SELECT set_config('lock_timeout', ?, false)", (f"{int(busy_timeout_ms)}ms",))
            self.migrate()
        except BaseException:
            self.conn.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresBook({self.path!r})"

    @property
    def version(self) -> int:
        """The schema version of the database (same numbering as the SQLite book's)."""
        return migrations.version(self.conn)  # type: ignore[arg-type]

    def migrate(self, scripts: Any = None) -> int:
        """Apply every migration newer than the database; return the resulting version."""
        return migrations.migrate(self.conn, f"the order book {self.path}", scripts)  # type: ignore[arg-type]

    def reopen(self) -> PostgresBook:
        """A new connection to the same database."""
        return PostgresBook(self.url, busy_timeout_ms=self.busy_timeout_ms)

    @contextmanager
    def bulk_writes(self, *, checkpoint_pages: int = 0) -> Iterator[None]:
        """Nothing to tune: PostgreSQL's checkpoints do not stop the writer."""
        yield

    def transaction(self) -> AbstractContextManager[Any]:
        """One write transaction, or a savepoint inside the caller's (as on SQLite)."""
        return transaction(self.conn, savepoint="order_book", where=f"the order book {self.path}")

    def lease(
        self, store: str, *, purpose: str, ttl: float = DEFAULT_TTL, wait: float = 0.0, shared: bool = False
    ) -> Any:
        """Take the store's advisory lock on a connection of its own; freed when it closes or its process dies.

        A ``shared`` lease (pushers claiming their shipments) admits other
        shared holders and keeps out only the exclusive one (a sync).
        """
        return leases.acquire(self.url, f"store:{store}", purpose=purpose, wait=wait, shared=shared)

    def lease_holders(self, store: str) -> int:
        """How many sessions hold ``store``'s lease now (shared pushers count one each)."""
        row = self.conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = ?"
            " AND objid = hashtext(?)::oid",
            (leases.LEASE_SPACE, f"store:{store}"),
        ).fetchone()
        return int(row[0])

    @contextmanager
    def claim_shipments(self, store: str, limit: int = 50, *, after: int = 0) -> Iterator[list[OutboxEntry]]:
        """Hold up to ``limit`` pending shipments of ``store`` (ids above ``after``) while the block runs.

        The rows are locked (``FOR UPDATE``) in a transaction that lasts the
        block; another worker's claim skips them (``SKIP LOCKED``) instead of
        waiting, so two workers never push the same shipment. Marks written
        inside the block (:meth:`mark_pushed` ...) commit with it.
        """
        with self.transaction() as c:
            rows = c.execute(
                "SELECT * FROM outbox WHERE store = ? AND state = 'pending' AND id > ? ORDER BY id LIMIT ?"
                " FOR UPDATE SKIP LOCKED",
                (store, after, limit),
            ).fetchall()
            yield [outbox_entry(r) for r in rows]

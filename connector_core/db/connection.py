"""Opening an order-book file, and the one write-transaction helper every table's code uses.

:func:`transaction` is the only place that begins, commits or rolls back:
the order book, the outbox, the catalogue and the notification queue all
write through it, so a write inside another write becomes a savepoint of
it and all of it commits together, or none.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from connector_core.errors import StoreError

DB_ENV = "CONNECTOR_HOST_DB"
BUSY_TIMEOUT_MS = 30_000


def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$CONNECTOR_HOST_DB``, else ``$XDG_DATA_HOME/connector-host/orders.sqlite3``."""
    env = os.environ if environ is None else environ
    if env.get(DB_ENV):
        return Path(env[DB_ENV]).expanduser()
    data_home = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "connector-host" / "orders.sqlite3"


def connect(path: Path, timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A connection to the order book at ``path``: WAL, foreign keys on, autocommit outside :func:`transaction`."""
    conn = sqlite3.connect(path, timeout=timeout_ms / 1000, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _describe(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "disk is full" in text or "database or disk is full" in text:
        return "disk full: free some space where the order book lives, then run the command again"
    return text


def _rollback(conn: sqlite3.Connection, statement: str = "ROLLBACK") -> None:
    # a failed COMMIT (disk full, I/O error) may already have ended the transaction
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute(statement)


@contextmanager
def transaction(
    conn: sqlite3.Connection, *, savepoint: str = "nested", where: str | os.PathLike[str] = "the order book"
) -> Iterator[sqlite3.Connection]:
    """All-or-nothing: a ``BEGIN IMMEDIATE`` transaction, or a savepoint inside the caller's.

    ``savepoint`` names the savepoint used when ``conn`` is already in a
    transaction (an identifier, never user input). Committed on success,
    rolled back on any exception, including ``KeyboardInterrupt``. A failure
    to begin or commit is a :class:`StoreError` that names ``where``.
    """
    if conn.in_transaction:
        conn.execute(f"SAVEPOINT {savepoint}")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
            raise
        conn.execute(f"RELEASE {savepoint}")
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise StoreError(f"{where} is not writable: {_describe(exc)}") from None
    try:
        yield conn
    except sqlite3.Error as exc:
        _rollback(conn)
        if "full" in str(exc):
            raise StoreError(f"could not write to {where}: {_describe(exc)}") from None
        raise
    except BaseException:
        _rollback(conn)
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(conn)
        raise StoreError(f"could not commit to {where}: {_describe(exc)}") from None


def split_statements(script: str) -> Iterable[str]:
    """Split a DDL script into statements (``executescript`` would commit the caller's transaction)."""
    buf = ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \t\r\n;"):
                yield buf.strip()
            buf = ""
    if buf.strip(" \t\r\n;"):
        yield buf.strip()

"""One write transaction on a SQLite connection, nesting as a savepoint."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def write_transaction(conn: sqlite3.Connection, savepoint: str) -> Iterator[sqlite3.Connection]:
    """All-or-nothing: a ``BEGIN IMMEDIATE`` transaction, or a savepoint inside the caller's.

    ``savepoint`` names the savepoint used when ``conn`` is already in a
    transaction (an identifier, never user input). Committed on success,
    rolled back on any exception, including ``KeyboardInterrupt``.
    """
    if conn.in_transaction:
        conn.execute(f"SAVEPOINT {savepoint}")
        try:
            yield conn
        except BaseException:
            conn.execute(f"ROLLBACK TO {savepoint}")
            conn.execute(f"RELEASE {savepoint}")
            raise
        conn.execute(f"RELEASE {savepoint}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")

"""The web app's own rows in the order book: operators, the session key, the runs it started.

``users`` holds the operators who may log in (an Argon2id hash per name, from
``argon2-cffi``; the password itself is never stored). ``web_keys`` holds the
key that signs session cookies, made once per order book so that sessions
survive a restart. ``web_runs`` records each sync, push and connection check
started from the web app: when, what it did, or the error it met. The tables
are created by the order book's migrations (:mod:`connector_core.db.migrations`, v10).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Mapping
from typing import Any

import attrs
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from connector_core.clock import now_iso
from connector_core.db.connection import transaction
from connector_core.errors import ConfigError

MIN_PASSWORD = 8
NAME_MAX = 64
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password of anyone")


# -- users -------------------------------------------------------------------


def check_username(name: str) -> str:
    """The user name, stripped; :class:`ConfigError` saying what to fix if it is unusable."""
    name = name.strip()
    if not name or len(name) > NAME_MAX or any(ch.isspace() or not ch.isprintable() for ch in name):
        raise ConfigError(f"a user name is 1 to {NAME_MAX} printable characters without spaces")
    return name


def add_user(conn: sqlite3.Connection, name: str, password: str, *, replace: bool = False) -> None:
    """Save an operator with the Argon2id hash of ``password``; ``replace`` sets a new password."""
    name = check_username(name)
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    digest = _hasher.hash(password)
    with transaction(conn, savepoint="web_user") as c:
        exists = c.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is not None
        if exists and not replace:
            raise ConfigError(f"a user named {name!r} already exists: pass --replace to set a new password")
        c.execute(
            "INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash",
            (name, digest, now_iso()),
        )


def list_users(conn: sqlite3.Connection) -> list[str]:
    """Every operator's name."""
    return [r[0] for r in conn.execute("SELECT name FROM users ORDER BY name")]


def remove_user(conn: sqlite3.Connection, name: str) -> bool:
    """Delete an operator; whether there was one."""
    with transaction(conn, savepoint="web_user") as c:
        return c.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0


def verify_user(conn: sqlite3.Connection, name: str, password: str) -> bool:
    """Whether ``password`` is ``name``'s. An unknown name costs the same hash as a known one."""
    row = conn.execute("SELECT password_hash FROM users WHERE name = ?", (name.strip(),)).fetchone()
    digest = _DUMMY_HASH if row is None else str(row[0])
    try:
        _hasher.verify(digest, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if row is None:
        return False
    if _hasher.check_needs_rehash(digest):
        with transaction(conn, savepoint="web_user") as c:
            c.execute("UPDATE users SET password_hash = ? WHERE name = ?", (_hasher.hash(password), name.strip()))
    return True


# -- the session key -----------------------------------------------------------


def session_key(conn: sqlite3.Connection) -> str:
    """The key that signs this order book's session cookies (made on first use)."""
    with transaction(conn, savepoint="web_key") as c:
        row = c.execute("SELECT value FROM web_keys WHERE name = 'session'").fetchone()
        if row is not None:
            return str(row[0])
        value = secrets.token_urlsafe(48)
        c.execute("INSERT INTO web_keys (name, value) VALUES ('session', ?)", (value,))
        return value


# -- runs ------------------------------------------------------------------------


@attrs.frozen
class Run:
    """A sync, push or connection check started from the web app."""

    id: int
    store: str
    kind: str
    state: str
    started_at: str
    finished_at: str | None
    summary: dict[str, Any]
    error: str | None
    started_by: str | None


def start_run(conn: sqlite3.Connection, store: str, kind: str, user: str | None) -> int:
    """Record that a run begins; return its id."""
    with transaction(conn, savepoint="web_run") as c:
        cur = c.execute(
            "INSERT INTO web_runs (store, kind, state, started_at, started_by) VALUES (?, ?, 'running', ?, ?)"
            " RETURNING id",  # RETURNING rather than lastrowid: the PostgreSQL book has no rowid
            (store, kind, now_iso(), user),
        )
        return int(cur.fetchone()[0])


def finish_run(
    conn: sqlite3.Connection, run_id: int, *, summary: Mapping[str, Any] | None = None, error: str | None = None
) -> None:
    """Record how a run ended: its summary, or the error that stopped it."""
    with transaction(conn, savepoint="web_run") as c:
        c.execute(
            "UPDATE web_runs SET state = ?, finished_at = ?, summary = ?, error = ? WHERE id = ?",
            (
                "error" if error else "ok",
                now_iso(),
                json.dumps(dict(summary or {}), default=str),
                error,
                run_id,
            ),
        )


def _run(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"],
        store=row["store"],
        kind=row["kind"],
        state=row["state"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        summary=json.loads(row["summary"]) if row["summary"] else {},
        error=row["error"],
        started_by=row["started_by"],
    )


def list_runs(conn: sqlite3.Connection, *, store: str | None = None, limit: int = 200) -> list[Run]:
    """Runs, newest first."""
    sql = "SELECT * FROM web_runs"
    args: list[Any] = []
    if store is not None:
        sql += " WHERE store = ?"
        args.append(store)
    return [_run(r) for r in conn.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])]


def get_run(conn: sqlite3.Connection, run_id: int) -> Run | None:
    """One run, or ``None``."""
    row = conn.execute("SELECT * FROM web_runs WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else _run(row)


def last_runs(conn: sqlite3.Connection, kind: str) -> dict[str, Run]:
    """The latest run of ``kind`` of every store."""
    rows = conn.execute(
        "SELECT * FROM web_runs WHERE id IN (SELECT max(id) FROM web_runs WHERE kind = ? GROUP BY store)", (kind,)
    )
    return {r["store"]: _run(r) for r in rows}


def new_token() -> str:
    """A fresh random token (CSRF)."""
    return secrets.token_urlsafe(32)

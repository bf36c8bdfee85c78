"""A throwaway PostgreSQL server for the job queue tests (or the one named by ``$CONNECTOR_HOST_TEST_PG``).

The cluster is made with ``initdb`` in a temporary folder and started with
``pg_ctl`` on a free loopback port; as root the binaries run as the
``postgres`` user, which PostgreSQL requires. Each test gets its own
database, so queues never leak between tests.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        pytest.fail(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found[-1]


def _as_pg(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's ``postgres`` database, up for the whole session."""
    reuse = os.environ.get("CONNECTOR_HOST_TEST_PG")
    if reuse:
        yield reuse
        return
    folder = Path(tempfile.mkdtemp(prefix="connector-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    port = _free_port()
    subprocess.run(
        _as_pg([_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c fsync=off"
    subprocess.run(
        _as_pg([_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(folder / "log"), "-w", "-t", "60", "start"]),
        check=True,
        capture_output=True,
        timeout=90,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_pg([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "60", "stop"]),
            capture_output=True,
            timeout=90,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def queue_url(pg_server: str) -> Iterator[str]:
    """A fresh database with procrastinate's schema applied: this test's job queue."""
    name = "q_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.rsplit("/", 1)[0] + "/" + name
    from connector_core.jobs import make_app

    app = make_app(url)
    with app.open():
        app.schema_manager.apply_schema()
    yield url
    with psycopg.connect(pg_server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

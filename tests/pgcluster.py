"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary folder, started on a free loopback port.

``CONNECTOR_HOST_TEST_PG`` set to a URL uses that server instead. As root,
the cluster is created and run as the ``postgres`` user (PostgreSQL refuses
to run as root), in a folder that user owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

ENV = "CONNECTOR_HOST_TEST_PG"


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries are missing: apt-get install -y postgresql")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def cluster(
    *,
    durable: bool = False,
    listen: Sequence[str] = (),
    hba: Sequence[str] = (),
    settings: Mapping[str, str | int] | None = None,
    max_connections: int = 60,
) -> Iterator[str]:
    """A superuser URL of a running server, for the duration of the block.

    Tests run it with ``fsync`` off (nothing is kept); ``durable`` keeps
    PostgreSQL's own default, so a benchmark compares like with like.

    The URL is always on 127.0.0.1. ``listen`` adds addresses the server
    listens on too (on the same port) and ``hba`` lines appended to its
    ``pg_hba.conf`` let clients from there in, so a test can reach it from
    another network namespace. ``settings`` are more ``-c name=value``
    server settings (keepalives, timeouts). With ``$CONNECTOR_HOST_TEST_PG``
    set, that server is used as it is, and these options are not applied.
    """
    if os.environ.get(ENV):
        yield os.environ[ENV]
        return
    bindir = _bindir()
    tmp = Path(tempfile.mkdtemp(prefix="chpg-"))
    data, sock = tmp / "data", tmp / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]), **run)
    if hba:
        with open(data / "pg_hba.conf", "a", encoding="utf-8") as conf:
            conf.write("".join(f"{line}\n" for line in hba))
    hosts = ",".join(["127.0.0.1", *listen])
    opts = f"-h {hosts} -p {port} -k {sock} -c max_connections={max_connections}" + ("" if durable else " -c fsync=off")
    opts += "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
    subprocess.run(
        _as_postgres(
            [str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(tmp / "log"), "-w", "-t", "60", "start"]
        ),
        **run,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "60", "stop"]),
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(tmp, ignore_errors=True)


def new_database(server_url: str) -> str:
    """A fresh, empty database on the server; its URL."""
    import psycopg

    name = f"book_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"

"""SIGTERM to `run` while a marketplace is not answering: the read in progress is cut, the host stops promptly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from connector_spartoo.sandbox.server import SpartooSandbox

from connector_core.db import OrderBook
from connector_core.http import HttpPolicy

CLI = [sys.executable, "-c", "from connector_core.cli import main; main()"]
SLOW = HttpPolicy(connect_timeout=5, read_timeout=120, max_attempts=1, request_deadline=300, sync_deadline=600)


@attrs.define
class Silent:
    """A loopback server that reads each request and never answers."""

    port: int
    asked: threading.Event


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    asked = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)
            held.append(conn)  # kept open, never answered
            asked.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield Silent(server.getsockname()[1], asked)
    server.close()
    for conn in held:
        conn.close()
    thread.join(5)


def test_sigterm_cuts_a_read_in_progress_and_run_ends_within_seconds(silent: Silent, tmp_path: Path) -> None:
    """The read would wait 120 s; SIGTERM ends `run` about a second later, exit 0, nothing stored half-way."""
    db = tmp_path / "book.sqlite3"
    settings = {
        **SpartooSandbox(orders=0).settings(),
        "base_url": f"http://127.0.0.1:{silent.port}/{{site}}/mp/",
        "sites": ["com"],
        "timeout": 120,  # each read may wait 120 s
    }
    with OrderBook(db) as book:
        book.add_store("sp", "spartoo", settings)  # no connect check: the server never answers
    env = {**os.environ, "CONNECTOR_HOST_DB": str(db), "CONNECTOR_HOST_HTTP_POLICY": json.dumps(attrs.asdict(SLOW))}
    proc = subprocess.Popen(
        [*CLI, "run", "--interval", "3600"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert silent.asked.wait(60), "the host never sent its first request"
        time.sleep(0.3)  # the host is now blocked reading the answer
        proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped after 1 cycle(s)" in out
    assert "Traceback" not in err
    assert took < 20  # cut about a second after the signal, not waited out: the read alone would take 120 s
    with OrderBook(db) as book:
        assert book.count_orders("sp") == 0 and book.get_cursor("sp") is None

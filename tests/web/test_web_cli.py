"""``connector-host users add`` and ``connector-host web``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from connector_core.cli import App, build_cli
from connector_core.db import OrderBook
from connector_core.plugins import PluginHost
from connector_core.web import records
from connector_core.web.commands import is_loopback


def _run(host: PluginHost, path: Path, args: list[str], stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(
        build_cli(host), ["--db", str(path), *args], input=stdin, obj=App(host_factory=lambda: host)
    )
    return result.exit_code, result.output


def test_users_add_reads_the_password_from_stdin(host: PluginHost, tmp_path: Path) -> None:
    """`users add NAME` takes the password from stdin, stores a hash, and lists the user."""
    path = tmp_path / "b.sqlite3"
    code, out = _run(host, path, ["users", "add", "ana", "--password-stdin"], "a long password\n")
    assert code == 0 and "user ana added" in out
    assert "a long password" not in out
    with OrderBook(path) as book:
        assert records.verify_user(book.conn, "ana", "a long password")
    assert _run(host, path, ["users", "list"]) == (0, "ana\n")


def test_users_add_has_no_password_option(host: PluginHost, tmp_path: Path) -> None:
    """A password cannot be given on the command line."""
    code, out = _run(host, tmp_path / "b.sqlite3", ["users", "add", "ana", "--password", "x"])
    assert code == 2 and "No such option" in out


def test_users_add_refuses_a_short_password_and_a_second_add(host: PluginHost, tmp_path: Path) -> None:
    """A short password and an existing name are one-line errors; --replace sets a new password."""
    path = tmp_path / "b.sqlite3"
    code, out = _run(host, path, ["users", "add", "ana"], "short\n")
    assert code == 1 and out.startswith("error: the password is too short")
    assert _run(host, path, ["users", "add", "ana"], "first password\n")[0] == 0
    code, out = _run(host, path, ["users", "add", "ana"], "second password\n")
    assert code == 1 and "already exists" in out
    assert _run(host, path, ["users", "add", "ana", "--replace"], "second password\n")[0] == 0
    with OrderBook(path) as book:
        assert records.verify_user(book.conn, "ana", "second password")
    assert _run(host, path, ["users", "remove", "ana"])[0] == 0
    assert _run(host, path, ["users", "remove", "ana"])[0] == 1


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("192.168.1.4", False)],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    """Only loopback addresses count as local (beyond them a warning and Secure cookies)."""
    assert is_loopback(host) is loopback


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_web_command_serves_the_app(tmp_path: Path) -> None:
    """`connector-host web --port N` serves /health on loopback and stops on SIGTERM."""
    port = _free_port()
    env = {**os.environ, "CONNECTOR_HOST_DB": str(tmp_path / "b.sqlite3")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from connector_core.cli import main; main()", "web", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        answer = None
        for _ in range(200):  # up to 20 s for the server to bind
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and answer.json() == {"status": "ok"}
        login = httpx.get(f"http://127.0.0.1:{port}/orders", timeout=5)
        assert login.status_code == 303 and login.headers["location"].startswith("/login")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert proc.returncode in (0, -signal.SIGTERM), err  # uvicorn re-raises SIGTERM once it has shut down
    assert f"on http://127.0.0.1:{port}" in out
    assert "no operator yet" in err


def test_the_web_commands_come_through_the_entry_point(host: PluginHost) -> None:
    """The core's `web` entry point registers `web` and `users` with the plugin hook, as a plugin would."""
    assert host.pm.has_plugin("web")
    group = build_cli(host)
    assert {"web", "users"} <= set(group.commands)

"""Fixtures for the operator CLI tests: the Spartoo sandbox on loopback, a real order book, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_kit import Run
from click.testing import CliRunner, Result

from connector_core.cli import App, build_cli, cli
from connector_core.plugins import PluginHost, get_plugin_manager

sandbox_server = pytest.importorskip("connector_spartoo.sandbox.server")


@pytest.fixture
def sandbox() -> Iterator[object]:
    """A Spartoo sandbox with 30 orders on one site."""
    with sandbox_server.SpartooSandbox(orders=30, sites=["com"], seed=5) as sb:
        yield sb


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """This test's order book file (its folder exists)."""
    return tmp_path / "orders.sqlite3"


@pytest.fixture
def run(db: Path) -> Run:
    """Run one command against the installed plugins and this test's order book; check its exit status."""
    host = PluginHost(get_plugin_manager(disabled=()))
    build_cli(host)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
        result = runner.invoke(cli, ["--db", str(db), *args], obj=App(host_factory=lambda: host), env=env)
        assert result.exit_code == code, (result.stdout, result.stderr)
        assert "Traceback" not in result.output
        return result

    return invoke


@pytest.fixture
def store(run: Run, sandbox: object, tmp_path: Path) -> str:
    """A Spartoo store ``sp`` on the sandbox, synced once (its new orders auto-accepted)."""
    settings = tmp_path / "spartoo.json"
    settings.write_text(json.dumps(sandbox.settings()), encoding="utf-8")  # type: ignore[attr-defined]
    run("stores", "add", "spartoo", "--name", "sp", "--settings", str(settings))
    run("sync")
    return "sp"

"""End to end through the CLI on both backends: the Spartoo sandbox, stores add, sync, orders list, ship, push."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector_core.cli import App, cli
from connector_core.plugins import PluginHost, get_plugin_manager

sandbox_server = pytest.importorskip("connector_spartoo.sandbox.server")


def _run(db: str, *args: str, ok: bool = True) -> str:
    host = PluginHost(get_plugin_manager(disabled=()))
    result = CliRunner().invoke(cli, ["--db", db, *args], obj=App(host_factory=lambda: host))
    if ok:
        assert result.exit_code == 0, result.output
    return result.output


def _story(db: str, settings_file: Path) -> dict[str, Any]:
    """The same commands on one book; what the operator sees at each step (times left out)."""
    _run(db, "stores", "add", "spartoo", "--name", "sp", "--settings", str(settings_file))
    _run(db, "sync")
    listed = json.loads(_run(db, "orders", "list", "--json"))
    keys = sorted(o["order_key"] for o in listed)
    _run(db, "ship", keys[0], "--store", "sp", "--tracking", "TRK-1", "--carrier", "Colissimo")
    _run(db, "push")
    shipments = json.loads(_run(db, "shipments", "list", "--json"))
    again = json.loads(_run(db, "orders", "list", "--json"))
    return {
        "keys": keys,
        "statuses": sorted((o["order_key"], o["status"]) for o in again),
        "shipments": [(s["order_key"], s["state"], s["shipment"]["tracking_number"], s["attempts"]) for s in shipments],
    }


def test_same_story_on_sqlite_and_postgresql(tmp_path: Path, pg_url: str) -> None:
    with sandbox_server.SpartooSandbox(orders=5, sites=["com"], seed=11) as sandbox:
        settings_file = tmp_path / "spartoo.json"
        settings_file.write_text(json.dumps(sandbox.settings()), encoding="utf-8")
        on_sqlite = _story(str(tmp_path / "orders.sqlite3"), settings_file)
    with sandbox_server.SpartooSandbox(orders=5, sites=["com"], seed=11) as sandbox:
        settings_file.write_text(json.dumps(sandbox.settings()), encoding="utf-8")
        on_pg = _story(pg_url, settings_file)
    assert on_sqlite["keys"]
    assert on_pg == on_sqlite
    assert on_pg["shipments"][0][1] == "pushed"


def test_bad_url_is_one_line_without_the_password(pg_server: str) -> None:
    url = pg_server.replace("postgres@", "postgres:Hunter2-pw@").rsplit("/", 1)[0] + "/missing_db"
    out = _run(url, "stores", "list", ok=False)
    assert "Hunter2-pw" not in out
    assert "Traceback" not in out
    assert (
        out.strip().startswith("error: cannot connect to the order book at postgresql://postgres:***@")
        and len(out.strip().splitlines()) == 1
    )


def test_shell_completion_reads_store_names_from_the_postgresql_book(pg_url: str) -> None:
    """`--db postgresql://...`: bash completion of --store lists the server book's stores (as it does a file's)."""
    import os
    import subprocess
    import sys

    from connector_core.db import open_book

    with open_book(pg_url) as book:
        book.add_store("north", "spartoo", {"partner_id": "P"})
        book.add_store("south", "spartoo", {"partner_id": "P"})
    words = f"connector-host --db {pg_url} sync --store "
    env = {**os.environ, "_CONNECTOR_HOST_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": "5"}
    done = subprocess.run(
        [sys.executable, "-c", "from connector_core.cli import main; main()"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.splitlines() == ["plain,north", "plain,south"], done.stderr
    env["COMP_WORDS"] = words.replace(pg_url, "postgresql://nobody@127.0.0.1:1/none")  # unreachable: nothing offered
    done = subprocess.run(
        [sys.executable, "-c", "from connector_core.cli import main; main()"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (done.stdout.strip(), done.returncode) == ("", 0) and "Traceback" not in done.stderr

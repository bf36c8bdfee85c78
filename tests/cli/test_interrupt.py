"""Ctrl-C during `sync`: a real SIGINT in a `connector-host` process stops at the next page boundary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bazaar_token import TOKEN

HERE = Path(__file__).resolve().parent


def cli(db: Path, *args: str, interrupt_at: int = 0) -> subprocess.CompletedProcess[str]:
    """Run `connector-host` in its own process with the paged Bazaar plugin."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent / "core")]),
        "CONNECTOR_HOST_EXTRA": "paged_market:plugin",
        "PAGED_MARKET_INTERRUPT_AT": str(interrupt_at),
    }
    return subprocess.run(
        [sys.executable, "-c", "from connector_core.cli import main; main()", "--db", str(db), *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_ctrl_c_keeps_the_pages_stored_and_the_next_sync_goes_on(tmp_path: Path) -> None:
    """SIGINT mid-sync: the page being stored is kept with its cursor, the sync says how far it got and exits 130."""
    db = tmp_path / "orders.sqlite3"
    assert cli(db, "stores", "add", "bazaar", "--name", "shop", "--set", f"token={TOKEN}").returncode == 0
    stopped = cli(db, "sync", interrupt_at=3)
    assert stopped.returncode == 130, stopped.stderr
    assert "Aborted!" not in stopped.stderr and "Traceback" not in stopped.stderr
    assert "stopping after the page being stored" in stopped.stderr
    assert stopped.stdout.strip() == (
        'shop: interrupted after 3 page(s): 6 orders stored, each page with its cursor (cursor {"seq": 6});'
        " run `connector-host sync` again to go on from there"
    )
    stores = json.loads(cli(db, "stores", "list", "--json").stdout)
    assert stores == [{**stores[0], "orders": 6, "cursor": {"seq": 6}}]
    [run] = json.loads(cli(db, "runs", "list", "--json").stdout)
    assert (run["state"], run["stored"], run["cursor"]) == ("interrupted", 6, {"seq": 6})
    again = cli(db, "sync")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("shop: 14 fetched, 14 new, 0 updated")

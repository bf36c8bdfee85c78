"""Secrets: a full CLI session never shows the partner ID; the order book is private; plain HTTP only on loopback."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import attrs
import pytest
from connector_spartoo.sandbox.server import SpartooSandbox
from reliability_kit import FAST

PARTNER = "S3CR3T+PARTNER/ID=42"  # characters that URL-encoding changes, so both forms can be looked for
CLI = [sys.executable, "-c", "from connector_core.cli import main; main()"]


@pytest.fixture
def sandbox() -> Iterator[SpartooSandbox]:
    with SpartooSandbox(orders=40, seed=9, sites=["com", "it"], partner_ids=[PARTNER]) as s:
        yield s


class Session:
    """Runs ``connector-host -vv`` commands on one order book and keeps every byte they print."""

    def __init__(self, db: Path) -> None:
        self.env = {
            **os.environ,
            "CONNECTOR_HOST_DB": str(db),
            "CONNECTOR_HOST_HTTP_POLICY": json.dumps(attrs.asdict(FAST)),
        }
        self.env.pop("CONNECTOR_HOST_EXTRA", None)
        self.transcript: list[str] = []

    def __call__(self, *args: str, code: int = 0) -> str:
        done = subprocess.run([*CLI, "-vv", *args], env=self.env, capture_output=True, text=True, timeout=120)
        self.transcript += [done.stdout, done.stderr]
        assert done.returncode == code, done.stderr[-2000:]
        return done.stdout


def test_full_cli_session_never_shows_the_partner_id(sandbox: SpartooSandbox, tmp_path: Path) -> None:
    """stores add, sync, orders, ship, push, rejected, stores show, plugins (all with -vv logs): zero hits."""
    db = tmp_path / "private" / "orders.sqlite3"
    run = Session(db)
    settings = sandbox.settings()
    run(
        "stores", "add", "spartoo", "--name", "sp",
        "--set", f"partner_id={PARTNER}",
        "--set", "sites=com,it",
        "--set", f"base_url={settings['base_url']}",
        "--set", "initial_lookback_days=40",
    )  # fmt: skip
    assert json.loads(run("sync", "--json"))[0]["inserted"] > 0
    orders = json.loads(run("orders", "list", "--json"))
    accepted = next(o for o in orders if o["marketplace_status"] == "2")
    run("orders", "show", accepted["order_key"], "--json")
    run("orders", "show", accepted["order_key"])
    run("ship", accepted["order_key"], "--tracking", "TRK-1", "--carrier", "Colissimo")
    assert json.loads(run("push", "--json"))[0]["pushed"] == 1
    rejected = json.loads(run("rejected", "list", "--json"))
    assert rejected  # the sandbox's orders without an address
    run("rejected", "list")
    run("rejected", "show", str(rejected[0]["id"]), "--json")
    run("rejected", "retry", str(rejected[0]["id"]))
    shown = json.loads(run("stores", "show", "sp", "--json"))
    run("stores", "show", "sp")
    run("stores", "list", "--json")
    run("plugins", "--json")
    run("plugins")
    run("stores", "add", "spartoo", "--name", "bad", "--set", f"partner_id={PARTNER}",
        "--set", "base_url=http://example.com/{site}/mp/", code=1)  # fmt: skip

    text = "\n".join(run.transcript)
    assert "xml_export_orders.php" in text and "xml_maj_orders.php" in text  # the logs did cover the HTTP calls
    for form in {PARTNER, quote(PARTNER, safe=""), quote_plus(PARTNER), PARTNER.lower()}:
        assert form not in text
    assert "***" in json.dumps(shown)


def test_order_book_is_private_and_plain_http_is_refused_off_loopback(tmp_path: Path) -> None:
    """The order book file is created 0600; a store whose base URL is plain HTTP to another host is refused."""
    db = tmp_path / "book.sqlite3"
    run = Session(db)
    out = run(
        "stores", "add", "spartoo", "--name", "remote", "--set", "partner_id=ABCDEF0123456789",
        "--set", "base_url=http://sws.example.com/{site}/mp/", code=1,
    )  # fmt: skip
    assert out == ""
    assert "https" in run.transcript[-1]
    assert stat.S_IMODE(db.stat().st_mode) == 0o600

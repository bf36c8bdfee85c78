"""The connector-host command line end to end, on a temporary order book, with the Bazaar plugin."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bazaar_plugin import TOKEN, Bazaar, make_order
from click.testing import CliRunner, Result

from connector_core.cli import App, build_cli, cli
from connector_core.plugins import PluginHost

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(host: PluginHost, db_path: Path) -> Invoke:
    """Run one command against the Bazaar host and this test's order book (in a folder that exists)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    build_cli(host)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Result:
        result = runner.invoke(cli, ["--db", str(db_path), *args], obj=App(host_factory=lambda: host))
        assert result.exit_code == code, (result.output, result.stderr if result.stderr_bytes else "")
        assert "Traceback" not in result.output
        return result

    return run


@pytest.fixture
def shop(invoke: Invoke) -> Iterator[None]:
    """A Bazaar store named ``shop``, added through the CLI."""
    invoke("stores", "add", "bazaar", "--name", "shop", "--set", f"token={TOKEN}")
    yield


def test_plugins_lists_versions_and_capabilities(invoke: Invoke) -> None:
    """`plugins --json` describes each marketplace; the table shows the capability rows."""
    data = json.loads(invoke("plugins", "--json").output)
    [entry] = [p for p in data if p["name"] == "bazaar"]
    assert entry["version"] == "1.2.3"
    assert {c["feature"]: c["support"] for c in entry["capabilities"]}["service"] == "not_offered"
    text = invoke("plugins").output
    assert "item_weight" in text
    assert "supplied_by_host" in text


def test_stores_add_types_settings_and_masks_secrets(invoke: Invoke, tmp_path: Path) -> None:
    """--set values are typed by the schema, --settings merges a file, and show masks the secret."""
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"token": TOKEN, "shop": "Lyon"}))
    out = invoke(
        "stores",
        "add",
        "bazaar",
        "--name",
        "lyon",
        "--settings",
        str(settings),
        "--set",
        "page_size=3",
        "--set",
        "auto_accept=yes",
        "--set",
        "regions=fr, be",
        "--set",
        "fee_rate=0.5",
    ).output
    assert "added store lyon (bazaar), connected as Lyon" in out
    shown = json.loads(invoke("stores", "show", "lyon", "--json").output)
    assert shown["settings"] == {
        "token": "***",
        "shop": "Lyon",
        "page_size": 3,
        "auto_accept": True,
        "regions": ["fr", "be"],
        "fee_rate": 0.5,
    }
    assert TOKEN not in invoke("stores", "show", "lyon").output
    assert [s["name"] for s in json.loads(invoke("stores", "list", "--json").output)] == ["lyon"]


def test_stores_add_refused_is_not_saved(invoke: Invoke) -> None:
    """Bad credentials exit 1 with the plugin's message on stderr and save nothing."""
    result = invoke("stores", "add", "bazaar", "--name", "bad", "--set", "token=nope-nope", code=1)
    # the first line warns that a secret was given with --set (see test_core_local_input)
    assert result.stderr.strip().splitlines()[-1] == "error: could not authorise with bazaar: the token may be wrong"
    assert json.loads(invoke("stores", "list", "--json").output) == []


def test_stores_add_bad_values(invoke: Invoke) -> None:
    """A mistyped or unknown setting is a one-line error, not a traceback."""
    result = invoke(
        "stores", "add", "bazaar", "--name", "x", "--set", f"token={TOKEN}", "--set", "page_size=ten", code=1
    )
    assert result.stderr.strip().splitlines()[-1].startswith("error: page_size takes a whole number")
    result = invoke("stores", "add", "bazaar", "--name", "x", "--set", f"token={TOKEN}", "--set", "colour=red", code=1)
    assert "colour" in result.stderr
    assert TOKEN not in result.stderr
    invoke("stores", "add", "nowhere", "--name", "x", code=1)
    invoke("stores", "add", "bazaar", "--name", "x", "--set", "token", code=1)


def test_sync_orders_status_map_and_show(invoke: Invoke, shop: None) -> None:
    """sync imports the orders; a custom status mapping applies; orders show --json prints the canonical JSON."""
    invoke("stores", "status-map", "shop", "new", "on_hold")
    out = invoke("sync").output
    assert "shop: 5 fetched, 5 new, 0 updated, 0 unchanged, 0 rejected" in out
    rows = json.loads(invoke("orders", "list", "--json").output)
    assert len(rows) == 5
    assert {r["status"] for r in rows} == {"on_hold"}
    assert json.loads(invoke("orders", "list", "--status", "shipped", "--json").output) == []
    order = json.loads(invoke("orders", "show", "BZ0002", "--json").output)
    assert (order["order_key"], order["total"], order["status"]) == ("BZ0002", "19.90", "on_hold")
    assert "Rue des Lilas" in invoke("orders", "show", "BZ0002").output
    assert invoke("orders", "show", "NOPE", code=1).stderr.startswith("error: no order 'NOPE'")
    again = invoke("sync", "--store", "shop", "--json").output
    assert json.loads(again)[0]["inserted"] == 0


def test_sync_and_push_many_at_once(invoke: Invoke, shop: None, bazaar: Bazaar) -> None:
    """sync --concurrency syncs the stores at once (also over --processes); push --concurrency pushes each once."""
    for name in ("shop2", "shop3"):
        invoke("stores", "add", "bazaar", "--name", name, "--set", f"token={TOKEN}")
    out = invoke("sync", "--concurrency", "3").output
    for name in ("shop", "shop2", "shop3"):
        assert f"{name}: 5 fetched, 5 new, 0 updated, 0 unchanged, 0 rejected" in out
    if hasattr(os, "fork"):  # the stores dealt to two forked processes, their reports printed here
        invoke("stores", "add", "bazaar", "--name", "shop4", "--set", f"token={TOKEN}")
        out = invoke("sync", "--concurrency", "2", "--processes", "2").output
        for name in ("shop", "shop2", "shop3"):  # nothing new since each store's cursor
            assert f"{name}: 0 fetched, 0 new, 0 updated, 0 unchanged, 0 rejected" in out
        assert "shop4: 5 fetched, 5 new, 0 updated, 0 unchanged, 0 rejected" in out
        assert len(json.loads(invoke("orders", "list", "--store", "shop4", "--json").output)) == 5
    for n in (1, 2, 3):
        invoke("orders", "accept", f"BZ000{n}", "--store", "shop")
        invoke("ship", f"BZ000{n}", "--store", "shop", "--tracking", f"MANY{n}")
    pushed = json.loads(invoke("push", "--store", "shop", "--concurrency", "3", "--json").output)
    assert sorted(o["state"] for o in pushed[0]["outcomes"]) == ["pushed"] * 3
    assert sorted(s.tracking_number for s in bazaar.pushed) == ["MANY1", "MANY2", "MANY3"]
    assert "--concurrency" in invoke("sync", "--concurrency", "0", code=2).stderr


def test_accept_ship_push(invoke: Invoke, shop: None, bazaar: Bazaar) -> None:
    """orders accept, ship and push carry a shipment to the marketplace and report each field."""
    invoke("sync")
    assert "BZ0001: accepted; marketplace status ok" in invoke("orders", "accept", "BZ0001").output
    out = invoke(
        "ship", "BZ0001", "--tracking", "TRK42", "--carrier", "DHL", "--service", "Express", "--cost", "5.10"
    ).output
    assert "in the outbox as #1" in out
    assert "#1" in invoke("ship", "BZ0001", "--tracking", "TRK42").output  # same shipment, same entry
    pushed = json.loads(invoke("push", "--json").output)
    [outcome] = pushed[0]["outcomes"]
    assert outcome["state"] == "pushed"
    assert {f["field"]: f["outcome"] for f in outcome["result"]["fields"]} == {
        "tracking_number": "sent",
        "carrier": "sent",
        "service": "unsupported",
    }
    assert [s.tracking_number for s in bazaar.pushed] == ["TRK42"]
    assert json.loads(invoke("orders", "show", "BZ0001", "--json").output)["status"] == "shipped"
    invoke("ship", "BZ0001", "--tracking", "T2", "--cost", "lots", code=1)


def test_refused_push_exits_non_zero(invoke: Invoke, shop: None, bazaar: Bazaar) -> None:
    """A shipment refused by the marketplace makes push exit 1 with the reason shown."""
    invoke("sync")
    invoke("ship", "BZ0002", "--tracking", "T9")
    bazaar.refuse_push = True
    result = invoke("push", code=1)
    assert "it cannot be shipped" in result.output
    assert result.stderr.strip() == "error: 1 shipment(s) refused by the marketplace: see above"


def test_cancel_and_illegal_cancel(invoke: Invoke, shop: None, bazaar: Bazaar) -> None:
    """orders cancel works, and an illegal cancel is a one-line error."""
    invoke("sync")
    assert "BZ0003: cancelled" in invoke("orders", "cancel", "BZ0003", "--reason", "no stock").output
    bazaar.orders[3]["status"] = "sent"
    result = invoke("orders", "cancel", "BZ0004", code=1)
    assert result.stderr.strip() == "error: order BZ0004 has shipped, it cannot be cancelled"


def test_rejected_list_and_show(invoke: Invoke, shop: None, bazaar: Bazaar) -> None:
    """Quarantined payloads are listed with their reason and shown with their payload."""
    bazaar.orders.append(make_order(6, address=False))
    invoke("sync")
    [row] = json.loads(invoke("rejected", "list", "--json").output)
    assert (row["order_key"], row["stage"], row["path"]) == ("BZ0006", "mapping", "$.address")
    shown = invoke("rejected", "show", str(row["id"])).output
    assert "the order has no shipping address" in shown
    assert '"id": "BZ0006"' in shown
    invoke("rejected", "show", "999", code=1)


def test_stores_remove(invoke: Invoke, shop: None) -> None:
    """stores remove --yes deletes the store; removing it again is an error."""
    invoke("sync")
    assert "removed store shop" in invoke("stores", "remove", "shop", "--yes").output
    assert json.loads(invoke("orders", "list", "--json").output) == []
    invoke("stores", "remove", "shop", "--yes", code=1)


def test_usage_error_exits_2(invoke: Invoke) -> None:
    """A usage error (bad option value) exits with status 2."""
    invoke("orders", "list", "--status", "lost", code=2)


def test_sync_without_stores_says_what_to_do(invoke: Invoke) -> None:
    """sync with no stores exits 1 telling the user to add one."""
    assert "stores add" in invoke("sync", code=1).stderr


def test_run_stops_cleanly_on_sigterm(invoke: Invoke, shop: None, bazaar: Bazaar) -> None:
    """run stops at the page boundary after SIGTERM arrives, keeps the pages stored, and exits 0."""
    bazaar.on_fetch = lambda: os.kill(os.getpid(), signal.SIGTERM)
    before = signal.getsignal(signal.SIGTERM)
    out = invoke("run", "--interval", "3600").output
    assert 'shop: interrupted after 1 page(s): 2 orders stored, each page with its cursor (cursor {"seq": 2})' in out
    assert "stopped after 1 cycle(s)" in out
    assert signal.getsignal(signal.SIGTERM) == before


def test_run_max_cycles(invoke: Invoke, shop: None) -> None:
    """run --max-cycles N runs N cycles of sync and push, then exits 0."""
    out = invoke("run", "--interval", "0", "--max-cycles", "2").output
    assert out.count("shop: ") == 4  # one sync line and one push line per cycle
    assert "stopped after 2 cycle(s)" in out


def test_sandbox_group_and_demo_without_sandbox(invoke: Invoke) -> None:
    """The sandbox group exists; demo of a marketplace with no sandbox is a one-line error."""
    assert "sandbox" in invoke("--help").output
    result = invoke("demo", "bazaar", code=1)
    assert result.stderr.strip() == "error: the bazaar plugin ships no sandbox, so there is nothing to demo"


def test_internal_notes_survive_a_changed_order(invoke: Invoke, shop: None, bazaar: Bazaar) -> None:
    """orders note keeps host-side notes on an order; a sync that updates the order keeps them; --clear removes."""
    invoke("sync")
    assert invoke("orders", "note", "BZ0003").output.strip() == "(no internal notes)"
    invoke("orders", "note", "BZ0003", "fragile: pack twice")
    bazaar.orders[2]["total"] = "29.90"
    bazaar.orders[2]["lines"][0]["price"] = "29.90"
    bazaar.orders[2]["seq"] = 100  # changed after the cursor: the next sync fetches it again
    assert "1 updated" in invoke("sync").output
    order = json.loads(invoke("orders", "show", "BZ0003", "--json").output)
    assert (order["total"], order["internal_notes"]) == ("29.90", "fragile: pack twice")
    assert "internal notes: fragile: pack twice" in invoke("orders", "show", "BZ0003").output
    invoke("orders", "note", "BZ0003", "   ", code=2)
    invoke("orders", "note", "BZ0003", "--clear")
    assert json.loads(invoke("orders", "show", "BZ0003", "--json").output)["internal_notes"] is None
    assert invoke("orders", "note", "NOPE", "x", code=1).stderr.startswith("error: no order 'NOPE'")

"""The shipments outbox from the command line, against the Spartoo sandbox: conflicts, refusals, retry, drop."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from cli_kit import Run, listed

from connector_core.db import OrderBook
from connector_core.db.history import OrderFilter
from connector_core.engine import Engine
from connector_core.errors import ConfigError
from connector_core.models import Shipment
from connector_core.plugins import PluginHost, get_plugin_manager


def accepted_keys(run: Run) -> list[str]:
    """Keys of the orders waiting to be shipped."""
    return [str(o["order_key"]) for o in listed(run, "orders", "list", "--status", "awaiting_shipment")]


def test_second_tracking_number_is_a_conflict_not_sent(run: Run, store: str, sandbox: object) -> None:
    """A second tracking number is refused at ship; forced, its push is a conflict: both numbers, no e-mail."""
    run(
        "stores", "settings", store,
        "--set", "notifications.shipment_confirmation=true",
        "--set", "branding.sender_email=shop@example.com",
    )  # fmt: skip
    key = accepted_keys(run)[0]
    run("ship", key, "--tracking", "FIRST1")
    assert "tracking_number=sent" in run("push").stdout
    refused = run("ship", key, "--tracking", "SECOND2", code=1)
    assert "already shipped with tracking number FIRST1" in refused.stderr
    assert "--force" in refused.stderr
    run("ship", key, "--tracking", "SECOND2", "--force")
    pushed = run("push", code=1)
    [line] = [ln for ln in pushed.stdout.splitlines() if ln.startswith("  #2 ")]
    assert line.startswith(f"  #2 {key}: conflict (")
    assert "sent" not in line
    assert "1 shipment(s) in conflict" in pushed.stderr
    [entry] = listed(run, "shipments", "list", "--state", "conflict")
    assert entry["conflict"] == {
        "tracking_number": "SECOND2",
        "marketplace_tracking_number": "FIRST1",
        "reason": entry["last_error"],
    }
    assert "ours SECOND2, marketplace FIRST1" in run("shipments", "show", str(entry["id"])).stdout
    assert [o["tracking_number"] for o in sandbox.orders() if o["order_key"] == key] == ["FIRST1"]  # type: ignore[attr-defined]
    mails = listed(run, "notifications", "list")
    assert [(m["order_key"], m["outbox_id"]) for m in mails] == [(key, 1)]


def test_cancelled_order_is_refused_at_ship(run: Run, store: str) -> None:
    """`ship` refuses an order the book knows is cancelled, and nothing enters the outbox."""
    key = accepted_keys(run)[0]
    run("orders", "cancel", key)
    refused = run("ship", key, "--tracking", "T1", code=1)
    assert refused.stderr.startswith(f"error: order {key} is cancelled (marketplace status 41")
    assert listed(run, "shipments", "list") == []


def test_failed_shipment_is_listed_retried_and_dropped(run: Run, store: str) -> None:
    """A shipment refused at push is listed as failed, can be put back (retry) and given up (drop)."""
    key = accepted_keys(run)[0]
    run("ship", key, "--tracking", "T2")
    run("orders", "cancel", key)  # cancelled on Spartoo while the shipment waits
    assert "failed" in run("push", code=1).stdout
    [failed] = listed(run, "shipments", "list", "--state", "failed")
    assert failed["order_key"] == key
    assert "status 41" in str(failed["last_error"])
    outbox_id = str(failed["id"])
    assert "back in the outbox (was failed)" in run("shipments", "retry", outbox_id).stdout
    assert [e["state"] for e in listed(run, "shipments", "list")] == ["pending"]
    assert "dropped" in run("shipments", "drop", outbox_id).stdout
    assert "0 pushed" in run("push").stdout  # a dropped shipment is never sent
    [dropped] = listed(run, "shipments", "list", "--state", "dropped")
    assert dropped["dropped_at"] is not None
    assert "(already dropped)" in run("shipments", "drop", outbox_id).stdout


def test_pushed_shipment_cannot_be_dropped_or_retried(run: Run, store: str) -> None:
    """A shipment the marketplace took is neither dropped nor retried; an identical `ship` says it was pushed."""
    key = accepted_keys(run)[0]
    run("ship", key, "--tracking", "T3")
    run("push")
    assert "already pushed" in run("shipments", "drop", "1", code=1).stderr
    assert "already pushed" in run("shipments", "retry", "1", code=1).stderr
    again = run("ship", key, "--tracking", "T3")
    assert again.stdout.strip() == f"shipment for {key} was already pushed (#1); nothing to do"
    assert run("shipments", "show", "99", code=1).stderr.strip() == (
        "error: no shipment with outbox id 99: see `shipments list`"
    )


def test_shipments_show_has_per_field_results(run: Run, store: str) -> None:
    """`shipments show` gives what was sent and Spartoo's answer field by field, in text and JSON."""
    key = accepted_keys(run)[0]
    run("ship", key, "--tracking", "T4", "--carrier", "Colissimo", "--cost", "6.90")
    run("push")
    text = run("shipments", "show", "1").stdout
    assert f"shipment #1 of order {key} (sp): pushed" in text
    assert "carrier_fee" in text and "6.90" in text and "unsupported" in text
    doc = listed(run, "shipments", "list")[0]
    assert doc["shipment"]["carrier_fee"] == "6.90"  # type: ignore[index]
    assert {f["field"]: f["outcome"] for f in doc["result"]["fields"]}["tracking_number"] == "sent"  # type: ignore[index]


@pytest.mark.parametrize("cost", ["-5", "-0.01", "lots", "NaN"])
def test_negative_or_non_numeric_cost_is_refused(run: Run, store: str, cost: str) -> None:
    """`ship --cost` refuses a negative or non-numeric amount with a one-line error; nothing is recorded."""
    key = accepted_keys(run)[0]
    result = run("ship", key, "--tracking", "T5", "--cost", cost, code=1)
    assert result.stderr.startswith("error: --cost ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert listed(run, "shipments", "list") == []


def test_engine_refuses_a_negative_carrier_fee(store: str, db: Path) -> None:
    """Below the CLI, the engine's `ship` (the web app's too) refuses a negative carrier fee."""
    with OrderBook(db) as book:
        engine = Engine(PluginHost(get_plugin_manager(disabled=())), book)
        rows = book.page_orders(OrderFilter(store="sp", status="awaiting_shipment"), limit=1).rows
        key = rows[0].order_key
        shipment = Shipment(store="sp", order_key=key, tracking_number="T6", ship_date=datetime.now(UTC),
                            carrier_fee=Decimal("-5"))  # fmt: skip
        with pytest.raises(ConfigError, match="cannot be negative"):
            engine.ship(shipment)
        assert book.list_outbox() == []


def test_cancel_reason_is_kept_and_cancelling_twice_says_so(run: Run, store: str) -> None:
    """`orders cancel --reason` keeps the reason with the order (across syncs); a second cancel says already."""
    key = accepted_keys(run)[0]
    first = run("orders", "cancel", key, "--reason", "out of stock")
    assert first.stdout.startswith(f"{key}: cancelled; marketplace status 41")
    second = run("orders", "cancel", key)
    assert second.stdout.startswith(f"{key}: cancelled (already cancelled)")
    run("sync")
    assert "cancel reason: out of stock" in run("orders", "show", key).stdout
    assert listed_show(run, key)["cancel_reason"] == "out of stock"


def listed_show(run: Run, key: str) -> dict[str, object]:
    """`orders show KEY --json`."""
    doc = json.loads(run("orders", "show", key, "--json").stdout)
    assert isinstance(doc, dict)
    return doc

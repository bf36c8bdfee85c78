"""Run history, store edits and checks, remap, export, the complete `orders show`, `run` lines, the sandbox line."""

from __future__ import annotations

import csv
import io
import json
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cli_kit import Run, listed

from connector_core import quota
from connector_core.db import OrderBook
from connector_core.plugins import PluginHost


def test_every_sync_and_push_is_recorded(run: Run, store: str, sandbox: object) -> None:
    """`runs list|show` give each sync and push: start, end, store, sites, counts; a failed sync keeps its error."""
    key = str(listed(run, "orders", "list", "--status", "awaiting_shipment")[0]["order_key"])
    run("ship", key, "--tracking", "RUN-1")
    run("push")
    runs = listed(run, "runs", "list")
    assert [(r["kind"], r["state"]) for r in runs] == [("push", "done"), ("sync", "done")]
    push, sync = runs
    assert (sync["store"], sync["sites"], sync["fetched"], sync["stored"], sync["rejected"]) == ("sp", "com", 30, 29, 1)
    assert sync["accepted"] == 22 and sync["ended_at"] >= sync["started_at"]
    assert (push["pushed"], push["errors"]) == (1, 0)
    shown = run("runs", "show", str(sync["id"])).stdout
    assert f"sync #{sync['id']} of sp (sites com): done" in shown and "fetched:  30" in shown
    sandbox.stop()  # type: ignore[attr-defined]
    run("sync", code=1)
    failed = listed(run, "runs", "list", "--kind", "sync")[0]
    assert failed["state"] == "failed" and failed["error"] and failed["ended_at"]
    assert json.loads(run("runs", "show", str(failed["id"]), "--json").stdout)["state"] == "failed"
    assert run("runs", "show", "999", code=1).stderr.strip() == "error: no run with id 999: see `runs list`"


def test_stores_update_validates_and_connects_before_saving(run: Run, store: str) -> None:
    """`stores update` saves a change only once it validates and connects; the orders stay; `stores check` connects."""
    before = json.loads(run("stores", "show", store, "--json").stdout)
    bad = run("stores", "update", store, "--set", "partner_id=0000000000000000", code=1)
    assert "partner ID may be wrong" in bad.stderr
    slow = run("stores", "update", store, "--set", "timeout=9999", code=1)
    assert "$.timeout: 9999 is greater than the maximum of 600" in slow.stderr
    assert json.loads(run("stores", "show", store, "--json").stdout)["settings"] == before["settings"]
    done = run("stores", "update", store, "--set", "timeout=12", "--set", "initial_lookback_days=40")
    assert done.stdout.startswith("updated store sp (initial_lookback_days, timeout), connected as Spartoo")
    after = json.loads(run("stores", "show", store, "--json").stdout)
    assert after["settings"]["timeout"] == 12 and after["settings"]["partner_id"] == "***"
    assert after["orders"] == before["orders"] == 29
    assert run("stores", "check", store).stdout.startswith("store sp (spartoo): connected as Spartoo")


def test_stores_check_fails_when_the_marketplace_is_unreachable(run: Run, store: str, sandbox: object) -> None:
    """`stores check` tries the connection now: with the sandbox gone it is a one-line error, exit 1."""
    sandbox.stop()  # type: ignore[attr-defined]
    result = run("stores", "check", store, code=1)
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_status_map_says_how_to_apply_it_and_remap_applies_it(run: Run, store: str, tmp_path: Path) -> None:
    """After `status-map`, `orders remap` re-applies mapping and catalogue to every stored order, host state kept."""
    every = listed(run, "orders", "list", "--limit", "1000")
    accepted = {o["order_key"] for o in every if o["marketplace_status"] == "2"}
    assert accepted
    said = run("stores", "status-map", store, "2", "on_hold").stdout
    assert "`connector-host orders remap --store sp` applies it to the orders already stored" in said
    on_hold = {o["order_key"] for o in listed(run, "orders", "list", "--status", "on_hold", "--limit", "1000")}
    assert not accepted & on_hold  # the new mapping has not reached the stored orders yet
    key = sorted(accepted)[0]
    sku = json.loads(run("orders", "show", key, "--json").stdout)["items"][0]["sku"]
    catalogue = tmp_path / "w.csv"
    catalogue.write_text(f"sku,weight,weight_unit,warehouse_location\n{sku},250,g,B-07-2\n", encoding="utf-8")
    run("products", "import", str(catalogue))
    report = json.loads(run("orders", "remap", "--store", store, "--json").stdout)
    assert report[0]["orders"] == 29 and report[0]["changed"] >= 1 and report[0]["failed"] == 0
    held = {o["order_key"] for o in listed(run, "orders", "list", "--status", "on_hold", "--limit", "1000")}
    assert accepted <= held  # accepted by the host (status 2 in its own columns): mapped again from that code
    item = json.loads(run("orders", "show", key, "--json").stdout)["items"][0]
    assert (item["weight"], item["warehouse_location"]) == ({"value": "250", "unit": "g"}, "B-07-2")
    run("stores", "status-map", store, "2", "default")
    run("orders", "remap")
    assert accepted <= {o["order_key"] for o in listed(run, "orders", "list", "--status", "awaiting_shipment")}


def test_orders_export_csv_and_jsonl(run: Run, store: str, tmp_path: Path) -> None:
    """`orders export` streams CSV (one row per item) and JSON Lines (one order per line), with the filters."""
    every = listed(run, "orders", "list", "--limit", "1000")
    text = run("orders", "export", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["order_key"] for r in rows} == {o["order_key"] for o in every}
    items = sum(len(json.loads(run("orders", "show", str(o["order_key"]), "--json").stdout)["items"]) for o in every)
    assert len(rows) == items
    out = tmp_path / "shipped.jsonl"
    run("orders", "export", "--format", "jsonl", "--status", "shipped", "-o", str(out))
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {d["order_key"] for d in lines} == {o["order_key"] for o in every if o["status"] == "shipped"}
    assert all(isinstance(d["total"], str) for d in lines)  # money as strings, never floats


def test_orders_show_is_complete(run: Run, store: str) -> None:
    """`orders show` gives payment method and fee, items with options and images, notes, shipments with results."""
    run("products", "import", "--from-store", store)
    key = str(listed(run, "orders", "list", "--status", "awaiting_shipment")[0]["order_key"])
    doc = json.loads(run("orders", "show", key, "--json").stdout)
    run("orders", "note", key, "leave at the back door")
    run("ship", key, "--tracking", "SHOW-1")
    run("push")
    text = run("orders", "show", key).stdout
    assert f"  payment:  {doc['payment_method']} (fee {doc['payment_fee']} EUR)" in text
    assert "internal notes: leave at the back door" in text
    assert "shipment #1: SHOW-1" in text and "tracking_number=sent" in text
    for item in doc["items"]:
        for option in item["options"]:
            assert f"{option['name']}={option['value']}" in text
    if any(i["image_url"] for i in doc["items"]):
        assert "image https://" in text
    assert json.loads(run("orders", "show", key, "--json").stdout)["shipments"][0]["state"] == "pushed"


def test_run_prints_a_timestamped_line_per_cycle(run: Run, store: str) -> None:
    """`run` prints one line per cycle, starting with its UTC time, saying what the cycle did."""
    out = run("run", "--interval", "0", "--max-cycles", "2").stdout
    cycles = [line for line in out.splitlines() if " cycle " in line]
    assert len(cycles) == 2
    for n, line in enumerate(cycles, 1):
        assert re.match(rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z cycle {n}: 1 of 1 store\(s\) synced, ", line), (
            line
        )


def test_sandbox_prints_a_store_line_that_works(run: Run, tmp_path: Path) -> None:
    """The `stores add` line `connector-host sandbox spartoo` prints works when pasted (its test ID is public)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from connector_core.cli import main; main()", "sandbox", "spartoo", "--orders", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        line = ""
        while "stores add" not in line:
            line = lines.get(timeout=60)
        assert "***" not in line, line
        args = shlex.split(line.strip())
        assert args[0] == "connector-host"
        assert run(*args[1:]).stdout.startswith("added store spartoo-sandbox (spartoo), connected as Spartoo")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        reader.join(10)
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


def test_remap_goes_on_past_a_store_that_fails(run: Run, store: str, db: Path) -> None:
    """`orders remap` over every store maps the good ones and names the one that failed (exit 1)."""
    with OrderBook(db) as book:
        book.add_store("ghost", "no-such-marketplace", {})
    result = run("orders", "remap", code=1)
    assert "sp: 29 orders mapped again" in result.stdout
    assert result.stderr.startswith("error: ghost: ")


def test_rejected_show_json_gives_the_payload_object(run: Run, store: str) -> None:
    """`rejected show --json` gives the quarantined payload as a JSON object, not a string of it."""
    [reject] = listed(run, "rejected", "list")
    doc = json.loads(run("rejected", "show", str(reject["id"]), "--json").stdout)
    assert isinstance(doc["payload"], dict)
    assert doc["payload"]["orders_id"] == str(reject["order_key"]).partition(":")[2]


def test_stores_list_shows_a_quota_block(run: Run, store: str, db: Path) -> None:
    """While the partner's quota is blocked, `stores list` says until when, in its table and its JSON."""
    assert json.loads(run("stores", "list", "--json").stdout)[0]["quota_blocked_until"] is None
    assert "blocked until" not in run("stores", "list").stdout
    until = (datetime.now(UTC) + timedelta(minutes=30)).replace(microsecond=0)
    with OrderBook(db) as book:
        record = book.get_store(store)
        scoped = quota.scope_of(PluginHost.create(), "spartoo", store, record.settings)
        book.block_quota(*scoped, until, "quota used up")
    [listed] = json.loads(run("stores", "list", "--json").stdout)
    assert datetime.fromisoformat(listed["quota_blocked_until"]) == until
    assert f"blocked until {quota.clock_time(until)}" in run("stores", "list").stdout

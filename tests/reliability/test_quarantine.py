"""Quarantine: broken payloads are kept with reason and path, the batch lands, `rejected retry` recovers them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from connector_spartoo.sandbox.server import SpartooSandbox
from reliability_kit import STORE, engine_on, spartoo_host

from connector_core.cli import App, cli
from connector_core.db import OrderBook


@pytest.fixture
def sandbox() -> Iterator[SpartooSandbox]:
    with SpartooSandbox(orders=60, seed=4, sites=["com", "it"]) as s:
        yield s


def _cli(db: Path, *args: str) -> dict | list:  # type: ignore[type-arg]
    host = spartoo_host()
    result = CliRunner().invoke(cli, ["--db", str(db), *args], obj=App(host_factory=lambda: host))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_broken_order_is_quarantined_with_reason_and_path_and_the_rest_lands(
    sandbox: SpartooSandbox, tmp_path: Path
) -> None:
    """An order broken in every export is stored in quarantine (payload, reason, JSON path); all others land."""
    db = tmp_path / "book.sqlite3"
    sandbox.set_faults(malformed_rate=1.0)
    with OrderBook(db) as book:
        report = engine_on(book, sandbox.settings()).sync(STORE)
        keys = {o.order_key for o in book.iter_orders(STORE)}
    broken = set(sandbox.counters()["malformed_orders"])
    valid = {r["order_key"] for r in sandbox.orders() if r["valid"]}
    invalid = {r["order_key"] for r in sandbox.orders() if not r["valid"]}
    assert len(broken) == 2  # one per site export
    assert keys == valid - broken
    assert report.rejected == len(broken) + len(invalid)
    rows = {r["order_key"]: r for r in _cli(db, "rejected", "list", "--json")}  # type: ignore[union-attr]
    assert set(rows) == broken | invalid
    for key in broken:
        assert rows[key]["stage"] == "validation"
        assert rows[key]["path"] and rows[key]["path"].startswith("$")
        assert rows[key]["retried_at"] is None  # the copy fetched again was broken too
        shown = _cli(db, "rejected", "show", str(rows[key]["id"]), "--json")
        payload = json.dumps(shown["payload"], ensure_ascii=False)  # type: ignore[call-overload]
        assert "N/A" in payload or "deux" in payload  # the payload is the object, not its text
    for key in invalid:
        assert "address" in rows[key]["reason"]


def test_rejected_retry_imports_once_the_order_passes(sandbox: SpartooSandbox, tmp_path: Path) -> None:
    """`rejected retry` re-validates a stored payload; when it still fails, fetch_order's fresh copy is imported."""
    db = tmp_path / "book.sqlite3"
    sandbox.set_faults(malformed_rate=1.0)
    with OrderBook(db) as book:
        engine_on(book, sandbox.settings()).sync(STORE)
    sandbox.set_faults()
    broken = sorted(set(sandbox.counters()["malformed_orders"]))
    rows = {r["order_key"]: r for r in _cli(db, "rejected", "list", "--json")}  # type: ignore[union-attr]
    ids = [str(rows[k]["id"]) for k in broken]
    outcomes = _cli(db, "rejected", "retry", *ids, "--json")
    assert [(o["order_key"], o["state"]) for o in outcomes] == [(k, "imported") for k in broken]  # type: ignore[index]
    invalid_id = next(str(r["id"]) for k, r in rows.items() if k not in broken)
    [still] = _cli(db, "rejected", "retry", invalid_id, "--json")  # type: ignore[misc]
    assert still["state"] == "rejected" and "address" in still["reason"]
    with OrderBook(db) as book:
        held = {o.order_key for o in book.iter_orders(STORE)}
        retried = {r.order_key: r.retried_at for r in book.list_rejected(store=STORE)}
    valid = {r["order_key"] for r in sandbox.orders() if r["valid"]}
    assert held == valid
    assert all(retried[k] is not None for k in broken)
    assert sum(v is None for v in retried.values()) == len(retried) - len(broken)
    again = _cli(db, "rejected", "retry", "--all", "--json")
    assert {o["state"] for o in again} == {"rejected"}  # type: ignore[index]


def test_mapping_rejects_are_not_fetched_again(sandbox: SpartooSandbox, tmp_path: Path) -> None:
    """Orders quarantined by mapping (no usable address) are not fetched again: only parse/raw rejects are."""
    with OrderBook(tmp_path / "book.sqlite3") as book:
        report = engine_on(book, sandbox.settings()).sync(STORE)
        stages = {r.stage for r in book.list_rejected(store=STORE)}
    invalid = [r for r in sandbox.orders() if not r["valid"]]
    assert invalid and report.rejected == len(invalid)
    assert stages == {"mapping"}
    # two sites: one connect check and one export each, and nothing more
    assert sandbox.counters()["requests_by_script"]["xml_export_orders.php"] == 4


def test_an_order_recovered_from_quarantine_is_accepted_by_the_next_sync(
    sandbox: SpartooSandbox, tmp_path: Path
) -> None:
    """`rejected retry` writes the accept intent a sync would have written; the next sync sends it."""
    db = tmp_path / "book.sqlite3"
    sandbox.set_faults(malformed_rate=1.0)
    with OrderBook(db) as book:
        engine_on(book, sandbox.settings()).sync(STORE)
    sandbox.set_faults()
    broken = sorted(set(sandbox.counters()["malformed_orders"]))
    status = {r["order_key"]: r["status"] for r in sandbox.orders()}
    assert broken and all(status[k] == "11" for k in broken)  # never accepted: they were never imported
    rows = {r["order_key"]: r for r in _cli(db, "rejected", "list", "--json")}  # type: ignore[union-attr]
    _cli(db, "rejected", "retry", *[str(rows[k]["id"]) for k in broken], "--json")
    with OrderBook(db) as book:
        assert sorted(a.order_key for a in book.pending_accepts(STORE)) == broken
        engine_on(book, sandbox.settings()).sync(STORE)
        assert book.pending_accepts(STORE) == []
    status = {r["order_key"]: r["status"] for r in sandbox.orders()}
    assert [status[k] for k in broken] == ["2"] * len(broken)

"""Many stores synced at once, and one outbox pushed by several workers, against the real Spartoo sandbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from connector_spartoo.sandbox.server import BAD_PARTNER_ID, SpartooSandbox

from connector_core.db import OrderBook
from connector_core.engine import Engine, SyncReport
from connector_core.errors import AuthError, ConfigError, ConnectorError
from connector_core.forking import can_fork
from connector_core.models import OrderStatus, Shipment
from connector_core.plugins import PluginHost
from connector_core.push import outbox
from connector_core.push.concurrent import push_concurrently
from connector_core.sync import many
from connector_core.sync.many import sync_all

PARTNERS = [f"{0xC0FFEE00 + i:016X}" for i in range(6)]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SpartooSandbox]:
    """A Spartoo sandbox on loopback with 60 orders on three sites and six partner IDs."""
    with SpartooSandbox(orders=60, seed=5, sites=["com", "it", "de"], partner_ids=PARTNERS, history_days=5) as sb:
        yield sb


@pytest.fixture
def host() -> PluginHost:
    """A host with the installed plugins (Spartoo among them)."""
    return PluginHost.create()


@pytest.fixture
def book(tmp_path: Path) -> Iterator[OrderBook]:
    """A fresh order book file."""
    with OrderBook(tmp_path / "orders.sqlite3") as b:
        yield b


def _settings(sandbox: SpartooSandbox, partner: str, sites: list[str], auto_accept: bool = False) -> dict[str, object]:
    return {**sandbox.settings(), "partner_id": partner, "sites": sites, "auto_accept": auto_accept}


def test_sync_all_imports_every_store_in_the_order_given(
    sandbox: SpartooSandbox, host: PluginHost, book: OrderBook
) -> None:
    """Six stores synced three at a time each import exactly their own sites' orders; reports keep the order."""
    site_sets = [["com"], ["it"], ["de"], ["com", "it"], ["it", "de"], ["com", "it", "de"]]
    names = []
    for i, sites in enumerate(site_sets):
        book.add_store(f"s{i}", "spartoo", _settings(sandbox, PARTNERS[i], sites))
        names.append(f"s{i}")
    reports = sync_all(Engine(host, book), names, concurrency=3)
    per_site = {s: sum(1 for o in sandbox.orders() if o["site"] == s) for s in ("com", "it", "de")}
    assert [r.store for r in reports if isinstance(r, SyncReport)] == names
    for name, sites, report in zip(names, site_sets, reports, strict=True):
        assert isinstance(report, SyncReport)
        assert report.fetched == sum(per_site[s] for s in sites)
        assert book.count_orders(name) == report.inserted
        assert {o.site for o in book.iter_orders(name)} <= set(sites)


def test_a_failing_store_does_not_stop_the_others(sandbox: SpartooSandbox, host: PluginHost, book: OrderBook) -> None:
    """A store with a refused partner ID gets its AuthError back; the other stores are synced."""
    book.add_store("good", "spartoo", _settings(sandbox, PARTNERS[0], ["com"]))
    book.add_store("bad", "spartoo", _settings(sandbox, BAD_PARTNER_ID, ["com"]))
    good, bad = sync_all(Engine(host, book), ["good", "bad"], concurrency=2)
    assert isinstance(good, SyncReport) and good.inserted == book.count_orders("good") > 0
    assert isinstance(bad, AuthError)
    assert BAD_PARTNER_ID not in str(bad)


@pytest.mark.skipif(not can_fork(), reason="processes are forked")
def test_sync_all_over_processes_reports_like_threads(
    sandbox: SpartooSandbox, host: PluginHost, book: OrderBook
) -> None:
    """Stores shared out among two processes are each synced into the same book; reports and errors come back."""
    site_sets = [["com"], ["it"], ["de"], ["com", "it"], ["it", "de"]]
    names = []
    for i, sites in enumerate(site_sets):
        book.add_store(f"p{i}", "spartoo", _settings(sandbox, PARTNERS[i], sites))
        names.append(f"p{i}")
    book.add_store("refused", "spartoo", _settings(sandbox, BAD_PARTNER_ID, ["com"]))
    reports = sync_all(Engine(host, book), [*names, "refused"], concurrency=4, processes=2)
    per_site = {s: sum(1 for o in sandbox.orders() if o["site"] == s) for s in ("com", "it", "de")}
    for name, sites, report in zip(names, site_sets, reports, strict=False):
        assert isinstance(report, SyncReport) and report.store == name
        assert report.fetched == sum(per_site[s] for s in sites)
        assert book.count_orders(name) == report.inserted > 0
    assert isinstance(reports[-1], AuthError)  # the same error, of the same type, as a thread would give
    assert BAD_PARTNER_ID not in str(reports[-1])
    assert book.get_cursor("p0") is not None  # written by the child, seen by the parent's connection


@pytest.mark.skipif(not can_fork(), reason="processes are forked")
def test_a_process_that_dies_leaves_an_error_for_its_stores(
    sandbox: SpartooSandbox, host: PluginHost, book: OrderBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If one sync process dies, its stores get a ConnectorError; the other process's stores are synced."""
    for i in range(4):
        book.add_store(f"d{i}", "spartoo", _settings(sandbox, PARTNERS[i], ["com"]))
    real = many.sync_store

    def sync(runtime: Engine, name: str, progress: object = None) -> SyncReport:
        if name == "d1":
            os._exit(9)  # the process syncing d1 (and d3: stores are dealt round robin) is gone
        return real(runtime, name)

    monkeypatch.setattr(many, "sync_store", sync)
    reports = sync_all(Engine(host, book), ["d0", "d1", "d2", "d3"], concurrency=2, processes=2)
    assert isinstance(reports[0], SyncReport) and isinstance(reports[2], SyncReport)
    for lost in (reports[1], reports[3]):
        assert isinstance(lost, ConnectorError) and "ended before reporting (exit code 9)" in str(lost)
    assert {lost.store for lost in (reports[1], reports[3]) if isinstance(lost, ConnectorError)} == {"d1", "d3"}


def test_process_count_is_checked(host: PluginHost, book: OrderBook) -> None:
    """processes must be a whole number from 1 up."""
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="processes"):
            sync_all(Engine(host, book), ["x"], processes=bad)  # type: ignore[arg-type]


def test_concurrent_push_sends_each_shipment_once(sandbox: SpartooSandbox, host: PluginHost, book: OrderBook) -> None:
    """Shipments drained by four workers reach the sandbox exactly once each and end up shipped."""
    book.add_store("ship", "spartoo", _settings(sandbox, PARTNERS[1], ["com", "it", "de"], auto_accept=True))
    engine = Engine(host, book)
    engine.sync("ship")
    keys = [o.order_key for o in book.iter_orders("ship") if o.status is OrderStatus.AWAITING_SHIPMENT][:12]
    assert len(keys) >= 8
    for i, key in enumerate(keys):
        engine.record_shipment(
            Shipment(store="ship", order_key=key, tracking_number=f"PAR{i:05d}", ship_date=datetime.now(UTC))
        )
    before = {o["order_key"]: o["update_requests"] for o in sandbox.orders()}
    report = push_concurrently(engine, "ship", concurrency=4)
    after = {o["order_key"]: o for o in sandbox.orders()}
    assert (report.pushed, report.failed, report.retry) == (len(keys), 0, 0)
    assert sorted(o.order_key for o in report.outcomes) == sorted(keys)
    assert {k: after[k]["update_requests"] - before[k] for k in keys} == dict.fromkeys(keys, 1)
    assert {after[k]["status"] for k in keys} == {"3"}
    assert {book.get_order("ship", k).status for k in keys} == {OrderStatus.SHIPPED}
    assert push_concurrently(engine, "ship", concurrency=4).pushed == 0  # nothing left pending


def _ship_all(engine: Engine, book: OrderBook, store: str, prefix: str, count: int) -> list[str]:
    engine.sync(store)
    keys = [o.order_key for o in book.iter_orders(store) if o.status is OrderStatus.AWAITING_SHIPMENT][:count]
    for i, key in enumerate(keys):
        engine.record_shipment(
            Shipment(store=store, order_key=key, tracking_number=f"{prefix}{i:05d}", ship_date=datetime.now(UTC))
        )
    return keys


@pytest.mark.skipif(not can_fork(), reason="processes are forked")
def test_push_over_processes_sends_each_shipment_once(
    sandbox: SpartooSandbox, host: PluginHost, book: OrderBook
) -> None:
    """Pushes made by two processes' threads reach the sandbox once each; this process records them all."""
    book.add_store("pp", "spartoo", _settings(sandbox, PARTNERS[3], ["com", "it", "de"], auto_accept=True))
    engine = Engine(host, book)
    keys = _ship_all(engine, book, "pp", "PRC", 10)
    assert len(keys) >= 8
    before = {o["order_key"]: o["update_requests"] for o in sandbox.orders()}
    report = push_concurrently(engine, "pp", concurrency=4, processes=2)
    after = {o["order_key"]: o for o in sandbox.orders()}
    assert (report.pushed, report.failed, report.retry) == (len(keys), 0, 0)
    assert sorted(o.order_key for o in report.outcomes) == sorted(keys)
    assert {k: after[k]["update_requests"] - before[k] for k in keys} == dict.fromkeys(keys, 1)
    assert {book.get_order("pp", k).status for k in keys} == {OrderStatus.SHIPPED}
    assert book.pending_shipments("pp") == []


@pytest.mark.skipif(not can_fork(), reason="processes are forked")
def test_a_push_process_that_dies_leaves_its_rest_pending(
    sandbox: SpartooSandbox, host: PluginHost, book: OrderBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push process that dies stops the run with an error; the next push sends what is left, none twice."""
    book.add_store("pd", "spartoo", _settings(sandbox, PARTNERS[4], ["com", "it", "de"], auto_accept=True))
    engine = Engine(host, book)
    keys = _ship_all(engine, book, "pd", "DIE", 8)
    assert len(keys) >= 6
    doomed = book.pending_shipments("pd")[1].order_key  # dealt to the second process
    before = {o["order_key"]: o["update_requests"] for o in sandbox.orders()}
    real = outbox.attempt_push

    def attempt(runtime: Engine, store: object, outbox_id: int, order_key: str, shipment: Shipment) -> object:
        if order_key == doomed:
            os._exit(9)
        return real(runtime, store, outbox_id, order_key, shipment)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "attempt_push", attempt)
    with pytest.raises(ConnectorError, match="push process ended"):
        push_concurrently(engine, "pd", concurrency=2, processes=2)
    monkeypatch.undo()
    assert doomed in {e.order_key for e in book.pending_shipments("pd")}
    report = push_concurrently(engine, "pd", concurrency=2, processes=2)
    after = {o["order_key"]: o for o in sandbox.orders()}
    assert book.pending_shipments("pd") == [] and report.failed == 0
    assert {k: after[k]["update_requests"] - before[k] for k in keys} == dict.fromkeys(keys, 1)
    assert {after[k]["status"] for k in keys} == {"3"}


def test_concurrency_must_be_a_positive_whole_number(host: PluginHost, book: OrderBook) -> None:
    """A concurrency below 1 is refused with a ConfigError."""
    with pytest.raises(ConfigError, match="concurrency"):
        sync_all(Engine(host, book), ["x"], concurrency=0)


def test_engine_wrappers_sync_all_and_push_with_concurrency(
    sandbox: SpartooSandbox, host: PluginHost, book: OrderBook
) -> None:
    """Engine.sync_all and Engine.push(concurrency=3) do what the parallel functions do: every shipment once."""
    book.add_store("w", "spartoo", _settings(sandbox, PARTNERS[2], ["com", "it"], auto_accept=True))
    engine = Engine(host, book)
    [report] = engine.sync_all(["w"], concurrency=2)
    assert isinstance(report, SyncReport) and report.inserted == book.count_orders("w") > 0
    keys = [o.order_key for o in book.iter_orders("w") if o.status is OrderStatus.AWAITING_SHIPMENT][:6]
    assert len(keys) >= 4
    for i, key in enumerate(keys):
        engine.record_shipment(
            Shipment(store="w", order_key=key, tracking_number=f"WRP{i:05d}", ship_date=datetime.now(UTC))
        )
    before = {o["order_key"]: o["update_requests"] for o in sandbox.orders()}
    pushed = engine.push("w", concurrency=3)
    after = {o["order_key"]: o for o in sandbox.orders()}
    assert (pushed.pushed, pushed.failed) == (len(keys), 0)
    assert {k: after[k]["update_requests"] - before[k] for k in keys} == dict.fromkeys(keys, 1)
    assert engine.push("w", concurrency=3).pushed == 0

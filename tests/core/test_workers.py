"""A sync that maps its pages in worker processes stores exactly what an in-process sync stores."""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from connector_spartoo.sandbox.server import SpartooSandbox

from connector_core import catalogue
from connector_core import forking as workers
from connector_core.cli import cli
from connector_core.db import OrderBook
from connector_core.engine import Engine, SyncReport
from connector_core.errors import ConfigError
from connector_core.models import CatalogueEntry, Weight
from connector_core.sync.pipeline import Pipeline
from tests.reliability.reliability_kit import FAST, settings_for, spartoo_host

pytestmark = pytest.mark.skipif(not workers.can_fork(), reason="map workers need fork")

ANCHOR = 1_717_200_000  # the same orders, byte for byte, in every sandbox built with it
SITES = ["com", "it", "de"]


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    # the workers start at the first page of MIN_PAGE orders: make every page big enough
    monkeypatch.setattr("connector_core.sync.runner.MIN_PAGE", 1)
    monkeypatch.setattr("connector_spartoo.plugin.PAGE_SIZE", 40)


def _sandbox() -> SpartooSandbox:
    return SpartooSandbox(orders=240, seed=5, anchor=ANCHOR, sites=SITES)


def _sync(db: Path, sandbox: SpartooSandbox, count: int, **settings: Any) -> SyncReport:
    with OrderBook(db) as book:
        book.add_store("sp", "spartoo", {**settings_for(sandbox.settings()), "initial_lookback_days": 3650, **settings})
        skus = {
            line["products_size_reference"]
            for i in range(0, len(sandbox.book), 3)
            for line in sandbox.book.order(i)["products"]["product"]
            if line.get("products_size_reference")
        }
        catalogue.upsert_entries(
            book.conn,
            [CatalogueEntry(sku=s, weight=Weight(Decimal("0.450"), "kg"), warehouse_location="A-1") for s in skus],
            source="test",
        )
        return Engine(spartoo_host(), book, http_policy=FAST, workers=count).sync("sp")


def _contents(db: Path) -> dict[str, Any]:
    with OrderBook(db) as book:
        c = book.conn
        return {
            "orders": c.execute(
                "SELECT order_key, order_number, status, marketplace_status, order_date, modified_date,"
                " canonical, raw, hash, skus FROM orders ORDER BY order_key"
            ).fetchall(),
            "rejected": c.execute(
                "SELECT order_key, stage, reason, path, payload FROM rejected ORDER BY order_key"
            ).fetchall(),
            "cursor_sites": sorted(book.get_cursor("sp")),
        }


def _same(a: Any, b: Any) -> bool:
    return [tuple(r) for r in a] == [tuple(r) for r in b]


def _same_import(tmp_path: Path, ref: SyncReport, got: SyncReport) -> dict[str, Any]:
    """Assert the sync into ``parallel.sqlite3`` reported and stored what the one into ``alone.sqlite3`` did."""

    def figures(r: SyncReport) -> tuple[int, ...]:
        return (r.pages, r.fetched, r.inserted, r.rejected, r.accepted)

    assert figures(got) == figures(ref)
    a, b = _contents(tmp_path / "alone.sqlite3"), _contents(tmp_path / "parallel.sqlite3")
    assert a["cursor_sites"] == b["cursor_sites"] == sorted(SITES)
    for table in ("orders", "rejected"):
        assert _same(a[table], b[table]), table
    return b


@pytest.mark.parametrize("count", [1, 2])
def test_workers_store_what_an_in_process_sync_stores(
    tmp_path: Path, count: int, caplog: pytest.LogCaptureFixture
) -> None:
    with _sandbox() as alone, _sandbox() as parallel:
        ref = _sync(tmp_path / "alone.sqlite3", alone, 0, auto_accept=True)
        with caplog.at_level(logging.DEBUG, logger="connector_core.sync.workers"):
            got = _sync(tmp_path / "parallel.sqlite3", parallel, count, auto_accept=True)
        assert alone.state.counters() == parallel.state.counters()  # the same requests, accepts included
    assert f"{count} map worker(s) started" in caplog.text
    assert ref.pages > 5 and ref.accepted > 0 and ref.rejected > 0  # the comparison covers all three
    b = _same_import(tmp_path, ref, got)
    enriched = [r for r in b["orders"] if '"warehouse_location":"A-1"' in r["canonical"]]
    assert enriched, "the workers enrich from the catalogue snapshot"


def test_a_worker_that_dies_hands_its_pages_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import connector_spartoo.plugin as plugin

    host_pid = os.getpid()
    real = plugin.map_order_document

    def dies_in_a_worker(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() != host_pid:
            os._exit(3)  # the worker process vanishes mid-page
        return real(*args, **kwargs)

    with _sandbox() as alone, _sandbox() as parallel:
        ref = _sync(tmp_path / "alone.sqlite3", alone, 0)
        monkeypatch.setattr(plugin, "map_order_document", dies_in_a_worker)
        with caplog.at_level(logging.WARNING, logger="connector_core"):
            got = _sync(tmp_path / "parallel.sqlite3", parallel, 1)
    assert "mapping the rest of this sync in process" in caplog.text
    assert (got.fetched, got.inserted, got.rejected) == (ref.fetched, ref.inserted, ref.rejected)
    a, b = _contents(tmp_path / "alone.sqlite3"), _contents(tmp_path / "parallel.sqlite3")
    assert _same(a["orders"], b["orders"]) and _same(a["rejected"], b["rejected"])


def _slow_in_a_worker(monkeypatch: pytest.MonkeyPatch, *, dies_after: int | None = None) -> dict[str, int]:
    """Make the worker map each order 5 ms slower (and exit after ``dies_after`` orders); count the host's calls."""
    import time

    import connector_spartoo.plugin as plugin

    host_pid = os.getpid()
    real = plugin.map_order_document
    calls = {"host": 0, "worker": 0}  # the worker counts in its own copy; the host's count is the one read here

    def slow(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() == host_pid:
            calls["host"] += 1
        else:
            calls["worker"] += 1
            if dies_after is not None and calls["worker"] > dies_after:
                os._exit(3)
            time.sleep(0.005)
        return real(*args, **kwargs)

    monkeypatch.setattr(plugin, "map_order_document", slow)
    return calls


def test_the_host_maps_pages_itself_while_its_worker_is_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker slower than fetching: the syncing process maps pages too; what is stored, and in which order, holds."""
    with _sandbox() as alone, _sandbox() as parallel:
        ref = _sync(tmp_path / "alone.sqlite3", alone, 0, auto_accept=True)
        calls = _slow_in_a_worker(monkeypatch)
        with caplog.at_level(logging.DEBUG, logger="connector_core.sync"):
            got = _sync(tmp_path / "parallel.sqlite3", parallel, 1, auto_accept=True)
        assert alone.state.counters() == parallel.state.counters()
    assert "mapped in this process: the workers are behind" in caplog.text
    assert 0 < calls["host"] < got.fetched  # some pages here, the others in the worker
    assert ref.accepted > 0
    _same_import(tmp_path, ref, got)
    pages = [int(m.split("page ")[1].split(":")[0]) for m in caplog.messages if ": page " in m and " new, " in m]
    assert pages == list(range(1, got.pages + 1))  # stored one by one, in the order fetched


def test_a_worker_that_dies_while_the_host_holds_pages_it_mapped_loses_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with _sandbox() as alone, _sandbox() as parallel:
        ref = _sync(tmp_path / "alone.sqlite3", alone, 0)
        calls = _slow_in_a_worker(monkeypatch, dies_after=100)
        with caplog.at_level(logging.DEBUG, logger="connector_core.sync"):
            got = _sync(tmp_path / "parallel.sqlite3", parallel, 1)
    assert "mapped in this process: the workers are behind" in caplog.text
    assert "mapping the rest of this sync in process" in caplog.text
    assert calls["host"] > 0
    _same_import(tmp_path, ref, got)


def test_a_page_the_worker_cannot_map_is_mapped_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    host_pid = os.getpid()
    real = Pipeline.map_page

    def fails_in_a_worker(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        if os.getpid() != host_pid:
            raise RuntimeError("worker-side failure")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "map_page", fails_in_a_worker)
    with _sandbox() as alone, _sandbox() as parallel:
        ref = _sync(tmp_path / "alone.sqlite3", alone, 0)
        with caplog.at_level(logging.WARNING, logger="connector_core"):
            got = _sync(tmp_path / "parallel.sqlite3", parallel, 1)
    assert "worker-side failure" in caplog.text
    assert (got.fetched, got.inserted, got.rejected) == (ref.fetched, ref.inserted, ref.rejected)


def test_a_worker_that_stops_halfway_through_its_page_is_given_up_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that writes part of its rows and then hangs costs RECEIVE_TIMEOUT, not the sync."""
    import time

    from connector_core.sync import workers as pool

    host_pid = os.getpid()
    real = pool._send

    def stalls_in_a_worker(sock: Any, data: bytes) -> None:
        if os.getpid() == host_pid or len(data) < 64:
            real(sock, data)
            return
        sock.sendall(pool._LENGTH.pack(len(data)) + data[: len(data) // 2])
        time.sleep(60)  # the worker hangs with half its page written

    monkeypatch.setattr(pool, "_send", stalls_in_a_worker)
    monkeypatch.setattr(pool, "RECEIVE_TIMEOUT", 3.0)  # room for the worker's first answer on a slow machine
    with _sandbox() as alone, _sandbox() as parallel:
        ref = _sync(tmp_path / "alone.sqlite3", alone, 0)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="connector_core"):
            got = _sync(tmp_path / "parallel.sqlite3", parallel, 1)
        took = time.monotonic() - started
    assert "stopped sending its page for 3 s" in caplog.text
    assert took < 40  # one timeout, then the rest in process (the hung worker is stopped, not waited for)
    assert (got.fetched, got.inserted, got.rejected) == (ref.fetched, ref.inserted, ref.rejected)


def test_the_collector_skips_what_the_host_held_while_its_workers_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from connector_core.sync.workers import YOUNG_THRESHOLD, MapWorkers

    real = MapWorkers.receive
    frozen: list[int] = []
    thresholds: list[int] = []

    def receive(self: MapWorkers) -> Any:
        frozen.append(gc.get_freeze_count())
        thresholds.append(gc.get_threshold()[0])
        return real(self)

    monkeypatch.setattr(MapWorkers, "receive", receive)
    before = gc.get_freeze_count()
    threshold = gc.get_threshold()
    with _sandbox() as sandbox:
        report = _sync(tmp_path / "book.sqlite3", sandbox, 1)
    assert report.inserted > 0 and frozen  # the pages went through the worker
    assert min(frozen) > before  # frozen while the worker ran
    assert gc.get_freeze_count() == 0  # and given back to the collector when it stopped
    # young passes only every YOUNG_THRESHOLD allocations while the worker ran; Python's own again after
    assert set(thresholds) == {max(YOUNG_THRESHOLD, threshold[0])}
    assert gc.get_threshold() == threshold


def test_a_worker_runs_its_young_passes_at_the_higher_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from connector_core.sync import workers as map_workers

    host = os.getpid()
    seen = tmp_path / "thresholds"
    real = Pipeline.map_page

    def map_page(self: Pipeline, raws: Any, **kw: Any) -> Any:
        if os.getpid() != host:  # in the worker, a fork of this process
            with seen.open("a") as out:
                out.write(f"{gc.get_threshold()[0]}\n")
        return real(self, raws, **kw)

    monkeypatch.setattr(Pipeline, "map_page", map_page)
    with _sandbox() as sandbox:
        report = _sync(tmp_path / "book.sqlite3", sandbox, 1)
    assert report.inserted > 0
    assert set(seen.read_text().split()) == {str(map_workers.YOUNG_THRESHOLD)}


def test_worker_count_from_the_environment_and_arguments() -> None:
    assert workers.auto_workers({"CONNECTOR_HOST_WORKERS": "3"}) == 3
    assert workers.auto_workers({"CONNECTOR_HOST_WORKERS": " 0 "}) == 0
    expected = 1 if (os.cpu_count() or 1) >= 2 else 0
    assert workers.auto_workers({}) == expected
    with pytest.raises(ConfigError, match="whole number"):
        workers.auto_workers({"CONNECTOR_HOST_WORKERS": "many"})
    with pytest.raises(ConfigError, match="between 0 and 16"):
        Engine(spartoo_host(), None, workers=-1)  # type: ignore[arg-type]


def test_cli_sync_takes_workers(tmp_path: Path) -> None:
    db = tmp_path / "cli.sqlite3"
    bad = CliRunner().invoke(cli, ["--db", str(db), "sync", "--workers", "99"])
    assert bad.exit_code == 2 and "0<=x<=16" in bad.output
    with _sandbox() as sandbox:
        settings = settings_for(sandbox.settings())
        added = CliRunner().invoke(
            cli,
            [
                *("--db", str(db), "stores", "add", "spartoo", "--name", "sp"),
                *("--set", f"partner_id={settings['partner_id']}", "--set", f"sites={','.join(SITES)}"),
                *("--set", f"base_url={settings['base_url']}", "--set", "initial_lookback_days=3650"),
                *("--set", "auto_accept=false"),
            ],
        )
        assert added.exit_code == 0, added.output
        done = CliRunner().invoke(cli, ["--db", str(db), "sync", "--workers", "1", "--json"])
    assert done.exit_code == 0, done.output
    with OrderBook(db) as book:
        assert book.count_orders("sp") > 200


def test_a_worker_pipe_keeps_each_message_whole() -> None:
    """Messages keep their bounds on the pipe, an empty one too; a large one crosses whole from the sender thread."""
    from connector_core.sync import workers as pool

    mine, theirs = pool._pipe()
    try:
        big = os.urandom(3 * 1024 * 1024)
        pool._send(mine, b"")
        pool._send(mine, b"page")
        assert (pool._receive(theirs), pool._receive(theirs)) == (b"", b"page")
        pool._send(mine, b"")
        theirs.setblocking(False)
        assert theirs.recv(64) == pool._LENGTH.pack(0)  # nothing follows the length of an empty message
        theirs.setblocking(True)
        sender = pool._Sender(mine, "test-sender")
        sender.send(big)
        assert pool._receive(theirs) == big
        sender.close()
    finally:
        mine.close()
        theirs.close()

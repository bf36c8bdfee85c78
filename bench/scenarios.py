"""The measured scenarios, each meant to run in its own child process.

* :func:`import_orders`: one Spartoo store synced end to end through
  :meth:`Engine.sync` against a sandbox over loopback HTTP, into a fresh
  SQLite file.
* :func:`floor_orders`: the same export documents fetched once to files,
  then parsed and inserted raw (:mod:`floor`), plus the floor straight off
  the HTTP stream.
* :func:`many_stores`: many stores synced at once (:meth:`Engine.sync_all`).
* :func:`push_shipments`: shipments drained from the outbox.
* :func:`default_sync`: a first sync with the store's default settings
  (auto-accept on) against a sandbox answering every request after a delay.

The sandbox always runs in another process (:func:`sandbox_process`) so its
memory and CPU are not counted in the client's figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from common import BENCH_DIR, Timer, emit, peak_rss_mb

SANDBOX_PREFIX = "BENCH-SANDBOX "
ALL_SITES = ("com", "co.uk", "it", "es", "de", "eu", "se", "pl", "com.hr", "ch")
EPOCH_DATE = "2000-01-01:00:00:00"


@contextmanager
def sandbox_process(
    *, orders: int, latency_ms: float = 0, partners: int = 1, seed: int = 7, sites: Sequence[str] = ALL_SITES
) -> Iterator[dict[str, Any]]:
    """A Spartoo sandbox in its own interpreter; yields ``{"url", "partner_ids", "pid"}``."""
    cmd = [
        sys.executable, str(BENCH_DIR / "run.py"), "--child", "sandbox",
        "--orders", str(orders), "--latency", str(latency_ms), "--partners", str(partners),
        "--seed", str(seed), "--sites", ",".join(sites),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(SANDBOX_PREFIX):
                info: dict[str, Any] = json.loads(line[len(SANDBOX_PREFIX) :])
                info["pid"] = proc.pid
                break
        else:
            raise RuntimeError("the sandbox process did not start")
        yield info
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def core() -> Any:
    """The host's parts the scenarios use, wherever this checkout keeps them.

    The order book moved from ``connector_core.store`` to ``connector_core.db``
    (and the worker and concurrency helpers with it): the scenarios run on an
    older checkout too, so ``bench/compare.py`` can measure both in one run.
    """
    import types

    try:
        from connector_core.db import OrderBook
        from connector_core.forking import auto_workers
        from connector_core.push.concurrent import push_concurrently
        from connector_core.sync.many import sync_all
    except ImportError:  # an older checkout
        from connector_core.parallel import push_concurrently, sync_all  # type: ignore[import-not-found,no-redef]
        from connector_core.store import OrderBook  # type: ignore[import-not-found,no-redef]
        from connector_core.workers import auto_workers  # type: ignore[import-not-found,no-redef]
    return types.SimpleNamespace(
        OrderBook=OrderBook, auto_workers=auto_workers, push_concurrently=push_concurrently, sync_all=sync_all
    )


def serve_sandbox(orders: int, latency_ms: float, partners: int, seed: int, sites: Sequence[str]) -> None:
    """Child body: run a sandbox until stdin closes."""
    from connector_spartoo.sandbox.server import SpartooSandbox

    partner_ids = [f"{0xB0000000 + i:016X}" for i in range(partners)]
    options: dict[str, Any] = {"latency": latency_ms} if latency_ms else {}
    # every order's XML is kept once rendered (xml_cache): the sandbox stands in for Spartoo's servers, and
    # rendering 100,000 orders again on each export would take CPU from the client on this 2-core machine
    with SpartooSandbox(
        orders=orders, seed=seed, sites=list(sites), partner_ids=partner_ids,
        history_days=20.0, xml_cache=orders + 1024, **options,
    ) as sandbox:  # fmt: skip
        print(SANDBOX_PREFIX + json.dumps({"url": sandbox.url, "partner_ids": partner_ids}), flush=True)
        sys.stdin.read()


def admin(url: str, path: str) -> Any:
    """GET one of the sandbox's ``/_admin/`` JSON endpoints."""
    return httpx.get(f"{url}/_admin/{path}", timeout=120).json()


def store_settings(url: str, partner_id: str, sites: Sequence[str]) -> dict[str, Any]:
    """Spartoo store settings reaching the sandbox at ``url`` (no auto-accept: import only)."""
    return {
        "partner_id": partner_id,
        "sites": list(sites),
        "base_url": f"{url}/{{site}}/mp/",
        "timezone": "Europe/Paris",
        "auto_accept": False,
        "timeout": 600,
    }


def import_orders(url: str, partner_id: str, sites: Sequence[str], db: Path) -> dict[str, Any]:
    """Child body: one store's full first sync through the real engine; returns figures."""
    import resource

    from connector_core.engine import Engine
    from connector_core.plugins import PluginHost

    parts = core()
    OrderBook, auto_workers = parts.OrderBook, parts.auto_workers

    host = PluginHost.create()
    settings = store_settings(url, partner_id, sites)
    host.validate_settings("spartoo", settings)
    with OrderBook(db) as book:
        book.add_store("bench", "spartoo", settings)
        engine = Engine(host, book)  # workers: the default (auto_workers, $CONNECTOR_HOST_WORKERS)
        with Timer() as t:
            report = engine.sync("bench")
        stored = book.count_orders("bench")
    # the map workers have been joined: their CPU and peak RSS are this process's children's
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    main_rss = peak_rss_mb()
    worker_rss = children.ru_maxrss / 1024
    return {
        "workers": auto_workers(),
        "main_cpu_seconds": round(t.cpu, 3),
        "worker_cpu_seconds": round(children.ru_utime + children.ru_stime, 3),
        "main_rss_mb": round(main_rss, 1),
        "worker_rss_mb": round(worker_rss, 1),
        "peak_rss_mb": round(main_rss + worker_rss, 1),  # both at their peaks at once: an upper bound
        "orders_per_s": round(report.fetched / t.wall, 1),
        "seconds": round(t.wall, 3),
        "cpu_seconds": round(t.cpu + children.ru_utime + children.ru_stime, 3),
        "fetched": report.fetched,
        "stored": stored,
        "rejected": report.rejected,
        "pages": report.pages,
        "backend": host.schemas.backend_for("spartoo/raw"),
    }


def _file_chunks(path: Path, size: int = 65536) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk


def floor_orders(url: str, partner_id: str, sites: Sequence[str], db: Path) -> dict[str, Any]:
    """Child body: fetch each site's export once to a file, then the floor on the files and on HTTP."""
    from floor import http_chunks, run_floor

    forms = [
        (f"{url}/{site}/mp/xml_export_orders.php", {"partenaire": partner_id, "date": EPOCH_DATE}) for site in sites
    ]
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        files = []
        with Timer() as fetch:
            for i, (u, form) in enumerate(forms):
                path = Path(tmp) / f"{i}.xml"
                with path.open("wb") as f:
                    for chunk in http_chunks(u, form):
                        f.write(chunk)
                files.append(path)
        size = sum(p.stat().st_size for p in files)
        on_files = run_floor((_file_chunks(p) for p in files), db)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    on_http = run_floor((http_chunks(u, form) for u, form in forms), db)
    return {
        "orders": on_files.orders,
        "bytes": size,
        "fetch_seconds": round(fetch.wall, 3),
        "file_seconds": round(on_files.seconds, 3),
        "file_orders_per_s": round(on_files.orders_per_s, 1),
        "http_seconds": round(on_http.seconds, 3),
        "http_orders_per_s": round(on_http.orders_per_s, 1),
        "http_orders": on_http.orders,
    }


def many_stores(
    url: str, partner_ids: Sequence[str], sites_per_store: int, concurrency: int, db: Path, processes: int = 1
) -> dict[str, Any]:
    """Child body: one full sync of every store, ``concurrency`` at a time over ``processes`` processes."""
    from connector_core.engine import Engine
    from connector_core.plugins import PluginHost

    parts = core()
    OrderBook, sync_all = parts.OrderBook, parts.sync_all

    host = PluginHost.create()
    names = []
    with OrderBook(db) as book:
        for i, partner in enumerate(partner_ids):
            sites = [ALL_SITES[(i + k) % len(ALL_SITES)] for k in range(sites_per_store)]
            name = f"store-{i:04d}"
            book.add_store(name, "spartoo", store_settings(url, partner, sites))
            names.append(name)
        engine = Engine(host, book)
        before = admin(url, "counters")["requests"]
        with Timer() as t:
            reports = sync_all(engine, names, concurrency=concurrency, processes=processes)
        requests = admin(url, "counters")["requests"] - before
    failed = [r for r in reports if isinstance(r, BaseException)]
    return {
        "stores": len(names),
        "sites_per_store": sites_per_store,
        "concurrency": concurrency,
        "processes": processes,
        "seconds": round(t.wall, 3),
        "requests": requests,
        "orders": sum(getattr(r, "fetched", 0) for r in reports),
        "failed": len(failed),
        "first_error": repr(failed[0]) if failed else None,
    }


def push_shipments(
    url: str, partner_id: str, shipments: int, concurrency: int, latency_ms: float, db: Path, processes: int = 1
) -> dict[str, Any]:
    """Child body: import and auto-accept orders, record shipments, then time one push at ``latency_ms``."""
    from datetime import UTC, datetime

    from connector_core.engine import Engine
    from connector_core.models import OrderStatus, Shipment
    from connector_core.plugins import PluginHost

    parts = core()
    OrderBook, push_concurrently = parts.OrderBook, parts.push_concurrently

    host = PluginHost.create()
    with OrderBook(db) as book:
        settings = {**store_settings(url, partner_id, ALL_SITES), "auto_accept": True}
        book.add_store("bench", "spartoo", settings)
        engine = Engine(host, book)
        engine.sync("bench")  # accepts the new orders (Spartoo ships only accepted orders)
        keys = [o.order_key for o in book.iter_orders("bench") if o.status is OrderStatus.AWAITING_SHIPMENT]
        keys = keys[:shipments]
        now = datetime.now(UTC)
        for i, key in enumerate(keys):
            engine.record_shipment(
                Shipment(store="bench", order_key=key, tracking_number=f"BENCH{i:08d}", ship_date=now)
            )
        before = {r["order_key"]: r["update_requests"] for r in admin(url, "orders")}
        httpx.post(f"{url}/_admin/faults", json={"latency": latency_ms}, timeout=30).raise_for_status()
        requests_before = admin(url, "counters")["requests"]
        with Timer() as t:
            report = push_concurrently(engine, "bench", concurrency=concurrency, processes=processes)
        all_requests = admin(url, "counters")["requests"] - requests_before  # admin calls are not counted
        httpx.post(f"{url}/_admin/faults", json={"latency": 0}, timeout=30).raise_for_status()
    after = {r["order_key"]: r for r in admin(url, "orders")}
    sent = {k: after[k]["update_requests"] - before[k] for k in keys}
    return {
        "shipments": len(keys),
        "concurrency": concurrency,
        "processes": processes,
        "latency_ms": latency_ms,
        "seconds": round(t.wall, 3),
        "cpu_seconds": round(t.cpu, 3),  # this process only: the sandbox runs in another
        "requests": sum(sent.values()),
        "all_requests": all_requests,
        "pushed": report.pushed,
        "already_applied": report.already_applied,
        "failed": report.failed,
        "retry": report.retry,
        "duplicates": sum(1 for n in sent.values() if n > 1),
        "not_shipped": sum(1 for k in keys if after[k]["status"] != "3"),
    }


def default_sync(url: str, partner_id: str, sites: Sequence[str], latency_ms: float, db: Path) -> dict[str, Any]:
    """Child body: one store with Spartoo's default settings (auto-accept on), synced at ``latency_ms``.

    Runs on an older checkout too (:func:`core`).
    """
    from connector_core.engine import Engine
    from connector_core.models import OrderStatus
    from connector_core.plugins import PluginHost

    OrderBook = core().OrderBook
    host = PluginHost.create()
    settings = {"partner_id": partner_id, "sites": list(sites), "base_url": f"{url}/{{site}}/mp/", "timeout": 600}
    host.validate_settings("spartoo", settings)
    with OrderBook(db) as book:
        book.add_store("bench", "spartoo", settings)
        engine = Engine(host, book, workers=0)  # the host's own CPU, every order mapped in this process
        httpx.post(f"{url}/_admin/faults", json={"latency": latency_ms}, timeout=30).raise_for_status()
        before = admin(url, "counters")["requests"]
        with Timer() as t:
            report = engine.sync("bench")
        requests = admin(url, "counters")["requests"] - before
        httpx.post(f"{url}/_admin/faults", json={"latency": 0}, timeout=30).raise_for_status()
        awaiting = sum(1 for o in book.iter_orders("bench") if o.status is OrderStatus.AWAITING_SHIPMENT)
    return {
        "seconds": round(t.wall, 3),
        "cpu_seconds": round(t.cpu, 3),
        "fetched": report.fetched,
        "accepted": report.accepted,
        "accept_errors": report.accept_errors,
        "requests": requests,
        "awaiting_shipment": awaiting,
        "latency_ms": latency_ms,
        "accept_concurrency": getattr(engine, "accept_concurrency", 1),  # older checkouts accept one at a time
    }


def child_main(kind: str, args: Any) -> None:
    """Dispatch ``--child KIND``: run one scenario and print its result line."""
    if kind == "sandbox":
        serve_sandbox(args.orders, args.latency, args.partners, args.seed, args.sites.split(","))
        return
    db = Path(args.db)
    sites = args.sites.split(",")
    if kind == "import":
        emit(import_orders(args.url, args.partner, sites, db))
    elif kind == "floor":
        emit(floor_orders(args.url, args.partner, sites, db))
    elif kind == "stores":
        stores = args.partner.split(",")
        emit(many_stores(args.url, stores, args.sites_per_store, args.concurrency, db, int(args.processes)))
    elif kind == "defaults":
        emit(default_sync(args.url, args.partner, sites, args.latency, db))
    elif kind == "push":
        emit(
            push_shipments(
                args.url, args.partner, args.shipments, args.concurrency, args.latency, db, int(args.processes)
            )
        )
    else:
        raise SystemExit(f"unknown child {kind!r}")
    time.sleep(0)

"""Draining the accept outbox: N accepts at a given marketplace latency, sequential and concurrent, beside the ideal.

    .venv/bin/python bench/accepts.py [--accepts 2000] [--latency 20] [--concurrency 1,8,16]

A Spartoo sandbox runs in its own process (``--latency`` ms on every
request). The orders are imported once without auto-accept; then, for each
concurrency, the status-11 orders are queued as accept intents and
:func:`connector_core.sync.accepts.drain_accepts` sends them. The ideal is
``accepts x latency / concurrency`` (the marketplace's latency alone, no host
time); the ratio is measured / ideal. The sandbox's orders are reset to
status 11 between runs through a fresh sandbox, so each run accepts the same
number of orders. Prints one JSON object per run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenarios import sandbox_process, store_settings

from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.plugins import PluginHost
from connector_core.sync.accepts import drain_accepts


def one_run(accepts: int, latency: float, concurrency: int, seed: int) -> dict[str, object]:
    """Import, queue the status-11 orders (at most ``accepts``) and drain them at ``concurrency``."""
    orders = int(accepts * 1.6) + 50  # the sandbox's mix: well over ``accepts`` orders wait in status 11
    with (
        sandbox_process(orders=orders, latency_ms=latency, seed=seed, sites=("com",)) as sb,
        tempfile.TemporaryDirectory() as tmp,
    ):
        host = PluginHost.create()
        with OrderBook(Path(tmp) / "bench.sqlite3") as book:
            book.add_store("bench", "spartoo", store_settings(sb["url"], sb["partner_ids"][0], ("com",)))
            engine = Engine(host, book, accept_concurrency=concurrency)
            engine.sync("bench")
            keys = [o.order_key for o in book.iter_orders("bench") if o.marketplace_status.code == "11"][:accepts]
            book.queue_accepts("bench", keys)
            store = engine.store_context("bench")
            started = time.perf_counter()
            report = drain_accepts(engine, store)
            seconds = time.perf_counter() - started
            store.http.close()
    ideal = len(keys) * latency / 1000 / concurrency
    return {
        "scenario": "accepts",
        "accepts": len(keys),
        "accepted": report.accepted,
        "latency_ms": latency,
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "ideal_seconds": round(ideal, 2),
        "ratio_to_ideal": round(seconds / ideal, 2) if ideal else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: one run per concurrency; exit 1 if any run left an accept unsent."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accepts", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=20.0, help="ms per request at the sandbox")
    parser.add_argument("--concurrency", default="1,8,16", help="comma-separated thread counts")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    ok = True
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        figures = one_run(args.accepts, args.latency, concurrency, args.seed)
        print(json.dumps(figures), flush=True)
        ok = ok and figures["accepted"] == figures["accepts"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

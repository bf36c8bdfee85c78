"""Server time of the web app's pages on a large order book.

    .venv/bin/python bench/web.py [--orders 10000] [--repeats 30]

Imports ``--orders`` orders from a Spartoo sandbox into a fresh order book
(the real import), then asks the app for its pages through Starlette's test
client, logged in as an operator. The time measured is the server's: from the
moment the app receives a request to the last byte of its answer (an ASGI
wrapper around the app), so the client's own work is left out. Prints the
median and the 95th percentile per page and the median's ratio to the target
(200 ms for the orders list): under 1.0 meets it.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MS = 200.0
PASSWORD = "bench password"


class Timed:
    """ASGI wrapper recording each request's server time in milliseconds."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.times.append((time.perf_counter() - started) * 1000)


def build_book(path: Path, orders: int) -> dict[str, Any]:
    """Import ``orders`` sandbox orders into the book at ``path``; add the operator ``bench``."""
    from connector_spartoo.sandbox.server import SpartooSandbox

    from connector_core.db import OrderBook
    from connector_core.engine import Engine
    from connector_core.plugins import PluginHost, get_plugin_manager
    from connector_core.web import records

    host = PluginHost(get_plugin_manager())
    with SpartooSandbox(orders=orders) as sandbox, OrderBook(path) as book:
        book.add_store("bench", "spartoo", {**sandbox.settings(), "initial_lookback_days": 90})
        started = time.perf_counter()
        report = Engine(host, book, workers=0).sync("bench")
        seconds = time.perf_counter() - started
        records.add_user(book.conn, "bench", PASSWORD, replace=True)
        count = book.count_orders("bench")
        sample = book.list_orders(store="bench", limit=1)[0].order_key
        sku = book.conn.execute("SELECT skus FROM orders WHERE skus IS NOT NULL LIMIT 1").fetchone()[0].split("\n")[0]
    return {"orders": count, "import_s": round(seconds, 2), "rejected": report.rejected, "key": sample, "sku": sku}


def measure(path: Path, repeats: int, key: str, sku: str) -> dict[str, dict[str, float]]:
    """Median and p95 server time (ms) of each page, ``repeats`` requests each after one warm-up."""
    from starlette.testclient import TestClient

    from connector_core.plugins import PluginHost, get_plugin_manager
    from connector_core.web.app import WebConfig, create_app

    host = PluginHost(get_plugin_manager())
    timed = Timed(create_app(WebConfig(db=path, host_factory=lambda: host)))
    pages = {
        "orders list (page 1 of all)": "/orders",
        "orders list, JSON": "/orders?size=50",
        "orders: status filter": "/orders?status=awaiting_shipment",
        "orders: search by SKU": f"/orders?q={sku}",
        "orders: last page, sorted by total": "/orders?sort=total&page=150",
        "one order": f"/orders/{key}",
        "stores": "/stores",
    }
    results: dict[str, dict[str, float]] = {}
    with TestClient(timed) as client:
        login = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token is not None
        client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token.group(1)})
        for name, url in pages.items():
            headers = {"accept": "application/json"} if "JSON" in name else {}
            client.get(url, headers=headers)  # warm-up: templates compiled, pages cached
            timed.times.clear()
            for _ in range(repeats):
                answer = client.get(url, headers=headers)
                assert answer.status_code == 200, (url, answer.status_code)
            times = sorted(timed.times)
            results[name] = {
                "median_ms": round(statistics.median(times), 2),
                "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 2),
                "ratio_to_target": round(statistics.median(times) / TARGET_MS, 3),
            }
    return results


def main(argv: list[str] | None = None) -> int:
    """Build the book, measure, print the table (and JSON with --json)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--json", action="store_true", help="print the results as one JSON document")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "web-bench.sqlite3"
        book = build_book(path, args.orders)
        results = measure(path, args.repeats, book["key"], book["sku"])
    if args.json:
        print(json.dumps({"book": book, "pages": results, "target_ms": TARGET_MS}))
        return 0
    print(f"order book: {book['orders']} orders imported in {book['import_s']} s ({book['rejected']} rejected)")
    print(f"server time over {args.repeats} requests each (target: the orders list under {TARGET_MS:.0f} ms)")
    print(f"{'page':40} {'median ms':>10} {'p95 ms':>10} {'median/target':>14}")
    for name, r in results.items():
        print(f"{name:40} {r['median_ms']:>10} {r['p95_ms']:>10} {r['ratio_to_target']:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What storing a page costs the host, per order: ``OrderBook.save_rows`` on a fresh SQLite book.

    .venv/bin/python bench/store_cost.py [--orders 30000] [--rounds 3]

Rows are mapped once from sandbox orders (through the same pipeline as a
sync), then written in pages of 300 inside ``bulk_writes``, as an import
writes them, to a new file each time. Each round runs every variant once,
in turn, so the machine's drift falls on all of them:

* ``as is``: the book as it is;
* ``index on order_key (to v14)``: with the index on ``order_key`` alone
  that books up to version 14 kept (dropped in v15);
* ``JSON columns as str``: the rows' two JSON columns handed over as
  Python strings, as rows carried them before round 13 (fresh strings each
  time, as unpickled from a worker: the driver encodes each to UTF-8);
* ``foreign_keys off`` and ``synchronous off``: for reference only. The book
  needs both as they are: foreign keys for its cascades, and
  ``synchronous = NORMAL`` so that a power cut cannot corrupt the file.

Prints the CPU and wall microseconds per order of each variant in each round,
after one warm-up save (the first book a process writes is slower).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

PAGE = 300
AS_TEXT = "JSON columns as str"
"""The variant whose rows carry their JSON columns as ``str`` (its statements: none)."""
VARIANTS: dict[str, tuple[str, ...]] = {
    "as is": (),
    "index on order_key (to v14)": ("CREATE INDEX orders_key ON orders(order_key)",),
    AS_TEXT: (),
    "foreign_keys off": ("PRAGMA foreign_keys = OFF",),
    "synchronous off": ("PRAGMA synchronous = OFF",),
}


def mapped_rows(count: int) -> list[Any]:
    """The rows of ``count`` sandbox orders (fewer: the sandbox's broken orders are left out)."""
    from common import spartoo_document
    from connector_spartoo.xmlstream import OrderStream

    from connector_core.host_settings import ProductSettings
    from connector_core.models import RawOrder
    from connector_core.plugins import PluginHost
    from connector_core.store_context import StoreContext
    from connector_core.sync.pipeline import Pipeline, raw_schema_of

    host = PluginHost.create()
    settings = {"partner_id": "BENCH", "sites": ["com"], "base_url": "http://127.0.0.1:9/{site}/mp/"}
    store = StoreContext(name="bench", marketplace="spartoo", settings=settings)
    pipeline = Pipeline(host, store, raw_schema_of(host, "spartoo"), ProductSettings(), None)
    docs = [d for d in OrderStream([spartoo_document(count, site="com")], site="com") if isinstance(d, dict)]
    raws = [RawOrder(order_key=f"com:{d['orders_id']}", payload=d, site="com") for d in docs]
    return list(pipeline.map_page(raws).rows)


def store_once(rows: Sequence[Any], statements: Sequence[str]) -> tuple[float, float]:
    """CPU and wall microseconds per order to save ``rows`` page by page into a fresh book."""
    from connector_core.db.book import OrderBook

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp, OrderBook(Path(tmp) / "book.sqlite3") as book:
        book.add_store("bench", "spartoo", {"partner_id": "BENCH", "sites": ["com"]})
        for statement in statements:
            book.conn.execute(statement)
        cpu, wall = time.process_time(), time.perf_counter()
        with book.bulk_writes():
            for start in range(0, len(rows), PAGE):
                book.save_rows("bench", rows[start : start + PAGE], (), {"com": str(start)})
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if book.count_orders("bench") != len({r.order_key for r in rows}):
            raise SystemExit("error: the book does not hold every row saved")
    return cpu / len(rows) * 1e6, wall / len(rows) * 1e6


def main(argv: list[str] | None = None) -> int:
    """Map the rows, then save them under each variant, round after round."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=30_000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    rows = mapped_rows(args.orders)
    print(f"{len(rows):,} rows in pages of {PAGE}; microseconds per order (CPU / wall)")
    cpu, wall = store_once(rows, ())  # the first book written in a process runs slower: not counted
    print(f"  warm-up  {'as is':28s} {cpu:6.1f} / {wall:6.1f}", flush=True)
    for round_ in range(1, args.rounds + 1):
        for name, statements in VARIANTS.items():
            given = (
                [r._replace(canonical=r.canonical.decode(), raw=r.raw.decode()) for r in rows]
                if name == AS_TEXT
                else rows
            )
            cpu, wall = store_once(given, statements)
            print(f"  round {round_}  {name:28s} {cpu:6.1f} / {wall:6.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

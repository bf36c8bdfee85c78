"""Importing N orders into the SQLite book and into the PostgreSQL book: orders/s each, and their ratio.

    .venv/bin/python bench/pg.py [--orders 2000] [--pg postgresql://...]

The same Spartoo sandbox (its own process, no latency) is synced into a new
SQLite file, then into a new PostgreSQL database: the server at ``--pg``
(``$CONNECTOR_HOST_TEST_PG``), else a throwaway local cluster as the tests
start one, but with ``fsync`` on. Each figure is the whole sync (the
sandbox's answers included). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pgcluster import ENV, cluster, new_database
from scenarios import sandbox_process, store_settings

from connector_core.db import open_book
from connector_core.engine import Engine
from connector_core.plugins import PluginHost


def _import(target: str, url: str, partner: str) -> tuple[int, float]:
    with open_book(target) as book:
        book.add_store("bench", "spartoo", store_settings(url, partner, ("com",)))
        started = time.perf_counter()
        Engine(PluginHost.create(), book).sync("bench")
        seconds = time.perf_counter() - started
        return book.count_orders(store="bench"), seconds


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--pg", default=None, help="a PostgreSQL server URL (default: a throwaway cluster)")
    args = parser.parse_args(argv)
    if args.pg:
        os.environ[ENV] = args.pg
    with (
        sandbox_process(orders=args.orders, sites=("com",)) as sb,
        tempfile.TemporaryDirectory() as tmp,
        cluster(durable=True) as server,
    ):
        n_sqlite, s_sqlite = _import(str(Path(tmp) / "bench.sqlite3"), sb["url"], sb["partner_ids"][0])
        n_pg, s_pg = _import(new_database(server), sb["url"], sb["partner_ids"][0])
    rate_sqlite, rate_pg = n_sqlite / s_sqlite, n_pg / s_pg
    print(
        json.dumps(
            {
                "scenario": "import-sqlite-vs-postgresql",
                "orders": n_sqlite,
                "sqlite_orders_per_s": round(rate_sqlite),
                "postgresql_orders_per_s": round(rate_pg),
                "postgresql_to_sqlite": round(rate_pg / rate_sqlite, 2),
            }
        )
    )
    return 0 if n_sqlite == n_pg else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Importing N orders into the SQLite book, into the PostgreSQL book, and PostgreSQL's floor for the same rows.

    .venv/bin/python bench/pg.py [--orders 100000] [--pg postgresql://...]

The same Spartoo sandbox (its own process, no latency, one site) is synced
into a new SQLite file, then into a new PostgreSQL database: the server at
``--pg`` (``$CONNECTOR_HOST_TEST_PG``), else a throwaway local cluster as the
tests start one, but with ``fsync`` on. Each figure is the whole sync (the
sandbox's answers included).

The floor is what PostgreSQL itself needs to store what that sync stored:
the rows the book wrote for the store (``orders`` and the quarantined
``rejected`` rows, read back with ``COPY ... TO``) are copied with psycopg's
``cursor.copy`` into empty tables of the same shape (``LIKE ... INCLUDING
ALL``: the same columns, keys and indexes) in one transaction. No fetching, parsing,
mapping or per-page commits: the book can come near it, never under it.
Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pgcluster import ENV, cluster, new_database
from scenarios import sandbox_process, store_settings
from workers import pg_server_cpu

from connector_core.db import open_book
from connector_core.engine import Engine
from connector_core.plugins import PluginHost

STORE = "bench"
TABLES = ("orders", "rejected")
"""The tables a sync writes a row in per order (or per refused order)."""
CHUNK = 1 << 20


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _import(target: str, url: str, partner: str, server: str | None = None) -> tuple[int, float, dict[str, float]]:
    """One store's first sync into ``target``: orders stored, seconds, CPU seconds by process.

    The host's CPU counts its map worker (a child, joined when the sync
    ends); ``server`` names the PostgreSQL server whose CPU to count.
    """
    with open_book(target) as book:
        book.add_store(STORE, "spartoo", store_settings(url, partner, ("com",)))
        cpu0, children0, pg0 = time.process_time(), _children_cpu(), pg_server_cpu(server) if server else 0.0
        started = time.perf_counter()
        Engine(PluginHost.create(), book).sync(STORE)
        seconds = time.perf_counter() - started
        cpu = {
            "host": time.process_time() - cpu0 + _children_cpu() - children0,
            "postgresql": pg_server_cpu(server) - pg0 if server else 0.0,
        }
        return book.count_orders(store=STORE), seconds, cpu


def _floor(db: str, folder: Path) -> dict[str, Any]:
    """COPY the store's rows out to files, then time COPYing them into same-shaped empty tables."""
    import psycopg

    files: dict[str, Path] = {}
    rows: dict[str, int] = {}
    with psycopg.connect(db, connect_timeout=10) as conn, conn.cursor() as cur:
        for table in TABLES:
            files[table] = folder / f"{table}.copy"
            with files[table].open("wb") as out, cur.copy(f"COPY (SELECT * FROM {table} WHERE store = %s) TO STDOUT",
                                                          (STORE,)) as copy:  # fmt: skip
                for block in copy:
                    out.write(block)
            rows[table] = cur.execute(f"SELECT count(*) FROM {table} WHERE store = %s", (STORE,)).fetchone()[0]
            cur.execute(f"CREATE TABLE floor_{table} (LIKE {table} INCLUDING ALL)")
        conn.commit()
        cur.execute("CHECKPOINT")  # the book's writes are not left for the floor's transaction to flush
        started = time.perf_counter()
        for table in TABLES:
            with files[table].open("rb") as src, cur.copy(f"COPY floor_{table} FROM STDIN") as copy:
                while chunk := src.read(CHUNK):
                    copy.write(chunk)
        conn.commit()
        seconds = time.perf_counter() - started
        for table in TABLES:
            copied = cur.execute(f"SELECT count(*) FROM floor_{table}").fetchone()[0]
            if copied != rows[table]:
                raise SystemExit(f"the floor copied {copied} {table} rows of {rows[table]}")
    return {"seconds": seconds, "rows": rows, "mb": sum(f.stat().st_size for f in files.values()) / 2**20}


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--pg", default=None, help="a PostgreSQL server URL (default: a throwaway cluster)")
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be a whole number >= 1")
    if args.pg:
        os.environ[ENV] = args.pg
    with (
        sandbox_process(orders=args.orders, sites=("com",)) as sb,
        tempfile.TemporaryDirectory() as tmp,
        cluster(durable=True) as server,
    ):
        n_sqlite, s_sqlite, c_sqlite = _import(str(Path(tmp) / "bench.sqlite3"), sb["url"], sb["partner_ids"][0])
        pg_book = new_database(server)
        n_pg, s_pg, c_pg = _import(pg_book, sb["url"], sb["partner_ids"][0], server)
        pg0 = pg_server_cpu(server)
        floor = _floor(pg_book, Path(tmp))
        floor["postgresql_cpu"] = pg_server_cpu(server) - pg0  # the COPY out and the table set-up included
    if n_sqlite != n_pg or floor["rows"]["orders"] != n_pg:
        print(f"the books differ: SQLite {n_sqlite} orders, PostgreSQL {n_pg}, floor {floor['rows']['orders']}")
        return 1
    rate_sqlite, rate_pg, rate_floor = n_sqlite / s_sqlite, n_pg / s_pg, n_pg / floor["seconds"]
    rows = ", ".join(f"{n} {t}" for t, n in floor["rows"].items())
    print(f"{n_pg} orders from a sandbox of {args.orders} (one site); the floor's rows: {rows} ({floor['mb']:.0f} MB)")
    print("book | seconds | orders/s | ratio | host CPU s | PostgreSQL CPU s")
    print(f"SQLite (sync) | {s_sqlite:.1f} | {rate_sqlite:.0f} | 1 | {c_sqlite['host']:.1f} | -")
    print(
        f"PostgreSQL (sync) | {s_pg:.1f} | {rate_pg:.0f} | PG/SQLite {rate_pg / rate_sqlite:.2f}"
        f" | {c_pg['host']:.1f} | {c_pg['postgresql']:.1f}"
    )
    print(
        f"PostgreSQL floor (COPY) | {floor['seconds']:.1f} | {rate_floor:.0f} | PG/floor {rate_pg / rate_floor:.2f}"
        f" | - | {floor['postgresql_cpu']:.1f} (with the COPY out)"
    )
    print(
        json.dumps(
            {
                "scenario": "import-sqlite-vs-postgresql",
                "orders": n_sqlite,
                "sqlite_orders_per_s": round(rate_sqlite),
                "postgresql_orders_per_s": round(rate_pg),
                "postgresql_floor_orders_per_s": round(rate_floor),
                "postgresql_to_sqlite": round(rate_pg / rate_sqlite, 2),
                "postgresql_to_floor": round(rate_pg / rate_floor, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

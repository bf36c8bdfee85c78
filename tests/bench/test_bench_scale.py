"""The scale-out benchmarks' building blocks on a real PostgreSQL server and sandbox (no timing asserted).

``bench/workers.py`` must refuse to report a run whose book is wrong, and
``bench/pg.py``'s floor must copy exactly the rows the book wrote, or their
figures mean nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgcluster import cluster, new_database

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module", autouse=True)
def bench_on_path() -> Iterator[None]:
    """The bench scripts import each other as top-level modules (for the module: its fixtures import them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCH))
        yield


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL server for this module (:mod:`pgcluster`)."""
    with cluster() as url:
        yield url


@pytest.fixture(scope="module")
def sandbox() -> Iterator[dict[str, Any]]:
    """A one-site Spartoo sandbox process serving three partners."""
    from scenarios import sandbox_process

    with sandbox_process(orders=30, partners=3, sites=("com",)) as info:
        yield info


def _valid_keys(sandbox: dict[str, Any]) -> set[str]:
    from scenarios import admin

    return {o["order_key"] for o in admin(sandbox["url"], "orders?site=com") if o["valid"]}


def test_a_workers_run_syncs_every_store_once_through_the_queue(pg_server: str, sandbox: dict[str, Any]) -> None:
    """Two real worker processes sync three stores; the run's figures come from the queue and the sandbox."""
    import workers

    run = workers.one_run(pg_server, sandbox, stores=3, workers=2, concurrency=1)
    # one job a store at least; the workers' own schedule (each minute) may queue a second sync of a store
    # whose first is still running, which the bench counts as an extra job: one_run checks every job succeeded
    # and every store was synced
    assert run["workers"] == 2 and run["jobs"] >= 3
    assert run["requests"] >= 3  # each store's export was asked for at least once
    assert run["wall"] >= run["first_start"] >= 0 and run["worker_cpu"] > 0


def test_the_workers_bench_refuses_a_book_missing_an_order(pg_server: str, sandbox: dict[str, Any]) -> None:
    """A store short of one of the sandbox's orders stops the bench with a line saying so."""
    import workers
    from scenarios import store_settings

    from connector_core.db import open_book
    from connector_core.engine import Engine
    from connector_core.plugins import PluginHost

    db = new_database(pg_server)
    with open_book(db) as book:
        for i, partner in enumerate(sandbox["partner_ids"][:2]):
            book.add_store(f"store-{i:04d}", "spartoo", store_settings(sandbox["url"], partner, ("com",)))
            Engine(PluginHost.create(), book).sync(f"store-{i:04d}")
    workers._check_book(db, sandbox, 2, 1)  # whole: no complaint
    victim = sorted(_valid_keys(sandbox))[0]
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DELETE FROM orders WHERE store = 'store-0001' AND order_key = %s", (victim,))
    with pytest.raises(SystemExit, match=r"the book is wrong .*; 1 without exactly"):
        workers._check_book(db, sandbox, 2, 1)


def test_the_pg_floor_copies_exactly_the_rows_the_book_wrote(
    pg_server: str, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    """Every table the floor fills holds the same rows as the book's table, for the one store."""
    import pg

    db = new_database(pg_server)
    count, _seconds, _cpu = pg._import(db, sandbox["url"], sandbox["partner_ids"][0])
    assert count == len(_valid_keys(sandbox))
    floor = pg._floor(db, tmp_path)
    assert floor["rows"]["orders"] == count
    with psycopg.connect(db) as conn:
        for table in pg.TABLES:
            mine = conn.execute(f"SELECT * FROM {table} WHERE store = 'bench' EXCEPT SELECT * FROM floor_{table}")
            theirs = conn.execute(f"SELECT * FROM floor_{table} EXCEPT SELECT * FROM {table} WHERE store = 'bench'")
            assert mine.fetchall() == [] and theirs.fetchall() == [], table

"""Several worker processes on one PostgreSQL book and queue, and workers killed in the middle of their jobs.

Everything is real: a PostgreSQL cluster (tests/pgcluster.py), ``connector-host
worker`` subprocesses, the Spartoo sandbox over HTTP on loopback. What the
tests conclude comes from the data left behind: order rows, ``runs`` rows,
procrastinate's job rows, ``pg_locks`` and the sandbox's own per-order
update counters, never from the host's report of itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pgcluster import new_database
from workerkit import (
    Worker,
    add_store,
    book_orders,
    jobs,
    overlaps,
    query,
    retry_dead,
    runs,
    ship_all,
    store_lock_of,
    store_locks,
    wait_for,
)

from connector_core.jobs import defer_push, defer_sync, make_app

sandbox_server = pytest.importorskip("connector_spartoo.sandbox.server")
pytestmark = pytest.mark.slow

STORES = 50
SYNCS_PER_STORE = 2


def _partner(i: int) -> str:
    return f"{0xC0FFEE0000000000 + i:016X}"


def _busiest_moment(history: list[tuple[str, datetime, datetime | None, str]]) -> int:
    """The most runs (of any stores) open at one instant: proof that the workers really ran side by side."""
    edges = []
    for _, start, end, _ in history:
        edges += [(start, 1), (end or datetime.max.replace(tzinfo=UTC), -1)]
    most = open_now = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        open_now += step
        most = max(most, open_now)
    return most


def test_fifty_stores_over_three_workers_each_synced_alone_and_stored_once(
    pg_server: str, queue_url: str, tmp_path: Path
) -> None:
    book = new_database(pg_server)
    names = [f"shop{i:02d}" for i in range(STORES)]
    partners = [_partner(i) for i in range(STORES)]
    with sandbox_server.SpartooSandbox(
        orders=16, sites=["com"], seed=21, partner_ids=partners, latency=15, history_days=20
    ) as sb:
        for name, partner in zip(names, partners, strict=True):
            add_store(book, name, {**sb.settings(), "partner_id": partner}, tmp_path)
        expected = sorted(sb.expected_orders())
        app = make_app(queue_url)
        with app.open():
            queued = {name: [defer_sync(app, name)] for name in names}
        workers = [Worker(book, queue_url, tmp_path / f"worker{i}.log", concurrency=2) for i in range(3)]
        seen_workers: set[int] = set()
        try:
            # Ask for each store's sync again once its first one is running or done (a waiting one would make the
            # request a no-op): the second waits for the first (the job lock), which the runs rows must show.
            def asked_twice() -> bool:
                state = jobs(queue_url)
                seen_workers.update(w for *_, status, _, w in state if status == "doing" and w is not None)
                waiting = {store for _, _, store, status, _, _ in state if status == "todo"}
                with app.open():
                    for name in names:
                        if len(queued[name]) < SYNCS_PER_STORE and name not in waiting:
                            job = defer_sync(app, name)  # None: the workers' schedule queued one meanwhile
                            if job is not None:
                                queued[name].append(job)
                return all(len(ids) == SYNCS_PER_STORE for ids in queued.values())

            wait_for("a second sync of every store queued", asked_twice, 120)

            def drained() -> bool:
                state = jobs(queue_url)
                seen_workers.update(w for *_, status, _, w in state if status == "doing" and w is not None)
                return all(status not in ("todo", "doing") for *_, status, _, _ in state)

            wait_for("the workers to drain the queue", drained, 150)
        finally:
            for worker in workers:
                worker.stop()
        logs = "\n".join(w.tail(800) for w in workers)

        final = jobs(queue_url)
        # the workers' periodic task may have queued a few more syncs itself (stores due): they count too
        assert {i for ids in queued.values() for i in ids} <= {i for i, *_ in final}
        assert {status for *_, status, _, _ in final} == {"succeeded"}, logs
        assert len(seen_workers) == 3, f"only workers {seen_workers} took jobs"

        stored = book_orders(book)
        assert sorted(stored) == names
        for name in names:
            assert stored[name] == expected, name  # every sandbox order, each once (the list keeps doubles)

        history = runs(book)
        assert sorted(store for store, *_ in history) == sorted(store for _, _, store, *_ in final)  # a run a job
        assert {state for *_, state in history} == {"done"}
        assert overlaps(history) == []  # no store's two syncs ever ran at the same time ...
        assert _busiest_moment(history) >= 3  # ... while different stores' syncs did
        assert store_locks(pg_server) == []  # every lease freed


def _kill_mid_job(book: str, queue: str, store: str, kind: str, progress: object, log: Path) -> tuple[int | None, str]:
    """Start a worker, wait for its ``kind`` job to run and make progress, SIGKILL it; the job killed, if any.

    ``progress`` is a callable giving a number that grows as the job works
    (orders stored, orders shipped ...). Returns (job id or None, worker log tail).
    """
    before = progress()
    worker = Worker(book, queue, log)
    try:

        def running() -> int | None:
            doing = [i for i, k, s, status, _, _ in jobs(queue) if k == kind and s == store and status == "doing"]
            return doing[0] if doing and progress() > before else None

        job = wait_for(f"the {kind} job of {store} running and moving on", running, 90, poll=0.05)
    finally:
        worker.kill()
    still = [i for i, _, _, status, _, _ in jobs(queue) if status == "doing"]
    return (job if job in still else None), worker.tail()


def test_ten_workers_killed_mid_sync_and_mid_push_lose_and_double_nothing(
    pg_server: str, queue_url: str, tmp_path: Path
) -> None:
    book = new_database(pg_server)
    store = "sp"
    app = make_app(queue_url)
    with sandbox_server.SpartooSandbox(orders=150, sites=["com"], seed=23, latency=40, history_days=20) as sb:
        add_store(book, store, sb.settings(), tmp_path)

        def stored() -> int:
            return len(book_orders(book).get(store, []))

        def accepted_in_sandbox() -> int:
            return sum(int(o["update_count"]) for o in sb.orders())

        killed: list[tuple[str, int]] = []

        def kill_loop(kind: str, times: int, progress: Callable[[], int], more_work: Callable[[], None]) -> None:
            n = 0
            while n < times:
                if not any(s in ("todo", "doing") for _, k, _, s, _, _ in jobs(queue_url) if k == kind):
                    more_work()
                job, tail = _kill_mid_job(book, queue_url, store, kind, progress, tmp_path / f"{kind}{n}.log")
                if job is None:
                    continue  # it finished just before the kill: not a kill mid-job, go again
                # the server sees the killed connections end: the lease goes with them, nothing waits for an expiry
                wait_for(f"{store}'s lease freed after the kill", lambda: not store_lock_of(book, store), 30)
                assert job in retry_dead(queue_url), tail
                assert [s for i, *_, s, _, _ in jobs(queue_url) if i == job] == ["todo"]
                killed.append((kind, job))
                n += 1

        def more_orders() -> None:
            sb.add_orders(60)
            with app.open():
                assert defer_sync(app, store) is not None

        with app.open():
            defer_sync(app, store)
        kill_loop("sync", 5, lambda: stored() + accepted_in_sandbox(), more_orders)

        # Let one worker finish the sync, then fill the outbox and kill the pushes.
        finisher = Worker(book, queue_url, tmp_path / "finish-sync.log")
        try:
            wait_for(
                "the sync to finish",
                lambda: all(s == "succeeded" for _, k, _, s, _, _ in jobs(queue_url) if k == "sync"),
                120,
            )
        finally:
            finisher.stop()
        shipped_before = {o["order_key"]: o for o in sb.orders()}
        # the syncs killed while accepting sent no accept twice: one request per change, at most one per order
        accepts = [(int(o["update_requests"]), int(o["update_count"])) for o in shipped_before.values()]
        assert all(sent == changed <= 1 for sent, changed in accepts), accepts
        assert sum(changed for _, changed in accepts) > 0
        planned: dict[str, str] = {}

        def more_shipments() -> None:
            fresh = {k: v for k, v in ship_all(book, store, f"T{len(killed)}").items() if k not in planned}
            assert fresh, "no accepted order left to ship"
            planned.update(fresh)
            with app.open():
                assert defer_push(app, store) is not None

        def shipped_in_sandbox() -> int:
            return sum(1 for o in sb.orders() if o["order_key"] in planned and o["status"] == "3")

        kill_loop("push", 5, shipped_in_sandbox, more_shipments)

        last = Worker(book, queue_url, tmp_path / "last.log")
        try:
            wait_for(
                "every job to finish",
                lambda: all(s not in ("todo", "doing") for *_, s, _, _ in jobs(queue_url)),
                150,
            )
        finally:
            last.stop()

        assert len(killed) == 10 and [k for k, _ in killed].count("sync") == 5
        final = jobs(queue_url)
        assert {s for *_, s, _, _ in final} == {"succeeded"}, last.tail()
        by_id = {i: (status, attempts) for i, _, _, status, attempts, _ in final}
        assert all(by_id[job][0] == "succeeded" and by_id[job][1] >= 2 for _, job in killed), by_id  # retried, done
        assert store_locks(pg_server) == []  # no lease held by anyone once the workers are gone
        assert query(pg_server, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
        assert query(queue_url, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'") == [(0,)]

        # nothing lost, nothing doubled: the book holds each sandbox order once
        assert book_orders(book)[store] == sorted(sb.expected_orders())
        # each planned shipment reached the sandbox once: one update request and one change per shipped order
        after = {o["order_key"]: o for o in sb.orders()}
        for key, number in planned.items():
            was, now = shipped_before.get(key), after[key]
            assert (now["status"], now["tracking_number"]) == ("3", number), key
            requests_before = int(was["update_requests"]) if was else 0
            changes_before = int(was["update_count"]) if was else 0
            assert int(now["update_requests"]) - requests_before == 1, (key, now)
            assert int(now["update_count"]) - changes_before == 1, (key, now)
        outbox = query(book, "SELECT state, count(*) FROM outbox WHERE store = %s GROUP BY state", (store,))
        assert outbox == [("pushed", len(planned))]

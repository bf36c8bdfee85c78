"""Syncs as background jobs: N one-site stores worked by 1, 2 and 4 ``connector-host worker`` processes.

    .venv/bin/python bench/workers.py [--stores 1000] [--workers 1,2,4] [--orders 20] [--latency 50]

One Spartoo sandbox (its own process, ``--latency`` ms on every request)
serves every store: it knows one partner ID per store, so the stores are
separate accounts of one server rather than a thousand servers. The book and
the job queue share one PostgreSQL database (a throwaway cluster with
``fsync`` on, or the server at ``--pg``); each worker count gets a fresh
database. The workers are started and idle before ``sync --enqueue`` queues
one job per store; the wall time runs from the first job's ``deferred`` event
to the last store's first ``succeeded`` event, as procrastinate records them
(the workers' own schedule may queue a store a second time: the extra jobs are
counted, and not waited for).

Each worker runs ``--concurrency 1`` (the default): one job at a time, so
1 -> 4 workers shows how far processes scale on this machine, and a run's
wall time against its ideal shows what the queue and a job's own work add to
the sandbox's latency. More threads per worker would not help on 2 cores:
four single-job workers already keep both busy, and threads of one worker
share its GIL. The ideal is the latency a store sync cannot avoid (its
requests, counted by the sandbox, times ``--latency``), times the stores,
over the workers.

CPU: each worker's, the PostgreSQL server's (its backends included) and the
sandbox's, over the window from the stores' creation to the last job; the
whole machine's from ``/proc/stat`` beside it (the machine is shared). Before
the runs, ``--inline`` stores are synced in this process the way a job does
(``jobs.work.run_sync``), for the CPU a sync costs without the queue.

A run only counts if every store holds exactly the sandbox's valid orders of
its site, each once; otherwise the script says which and exits 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import process_cpu
from pgcluster import ENV, cluster, new_database
from scenarios import admin, sandbox_process, store_settings

SITE = "com"
CLI = [sys.executable, "-c", "from connector_core.cli import main; main()"]
WAIT_LIMIT = 3600.0
"""Seconds a run may take before the bench gives up on it (every wait is bounded)."""


def _cli(db: str, *args: str) -> None:
    proc = subprocess.run([*CLI, "--db", db, *args], capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode:
        raise SystemExit(f"connector-host {' '.join(args[:2])} failed: {proc.stderr.strip()[-500:]}")


def pg_server_cpu(server: str) -> float:
    """CPU seconds of the PostgreSQL server at ``server``: its postmaster, the backends it reaped, those alive.

    Backends end with their connection (a job's book connection lives one
    job), so their time is read back from the postmaster's reaped children.
    """
    port, procs = server.rsplit(":", 1)[1].split("/")[0].encode(), {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit():
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                procs[int(proc.name)] = (argv, (proc / "stat").read_text().rpartition(")")[2].split())
        except OSError:
            continue
    for pid, (argv, stat) in procs.items():
        if argv[0].endswith(b"/postgres") and port in argv:  # the postmaster (backends are "postgres: ...")
            alive = sum(int(s[11]) + int(s[12]) for _, s in procs.values() if int(s[1]) == pid)
            return (sum(int(v) for v in stat[11:15]) + alive) / os.sysconf("SC_CLK_TCK")  # utime .. cstime
    return 0.0


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (``/proc/stat``: every process, other users' too)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
        return list(conn.execute(sql).fetchall())


def _wait(what: str, done: Any, limit: float = WAIT_LIMIT, every: float = 0.25) -> None:
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {limit:.0f} s waiting for {what}")
        time.sleep(every)


SYNC = "'connector_core.sync_store'"
SETTLE = 3.0
"""Seconds given to workers once registered: a worker registers before it listens for new jobs, and a job
queued in between waits for its next poll (seconds), which would be charged to the run."""


def one_run(server: str, sandbox: dict[str, Any], stores: int, workers: int, concurrency: int) -> dict[str, Any]:
    """Queue a sync of every store for ``workers`` idle workers; figures of the run, or SystemExit."""
    from connector_core.db import open_book

    db = new_database(server)
    open_book(db).close()  # the book's tables, before the workers read them
    _cli(db, "jobs", "init")
    env = {**os.environ, "CONNECTOR_HOST_WORKERS": "0"}  # small syncs map in process anyway; say so
    log = tempfile.TemporaryFile()  # noqa: SIM115 - the workers' stderr, shown if a job fails; closed below
    procs = [
        subprocess.Popen(
            [*CLI, "--db", db, "worker", "--concurrency", str(concurrency)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for _ in range(workers)
    ]
    try:
        _wait(f"{workers} workers to start", lambda: _query(db, "SELECT count(*) FROM procrastinate_workers")[0][0]
              >= workers, limit=120)  # fmt: skip
        time.sleep(SETTLE)
        cpu0 = {p.pid: process_cpu(p.pid) for p in procs}
        pg0, sb0, busy0 = pg_server_cpu(server), process_cpu(sandbox["pid"]), _machine_busy()
        window = time.perf_counter()
        requests0 = admin(sandbox["url"], "counters")["requests"]
        # the stores come once the workers run: the workers' own schedule (a periodic task each minute) may
        # queue some of them first, which is as good as ``sync --enqueue`` (a store never has two waiting)
        with open_book(db) as book:
            for i, partner in enumerate(sandbox["partner_ids"][:stores]):
                # a day between syncs: the workers' own schedule queues no second sync during the run
                book.add_store(
                    f"store-{i:04d}",
                    "spartoo",
                    store_settings(sandbox["url"], partner, (SITE,)),
                    store_settings={"schedule": {"sync_interval": 86400}},
                )
        enqueue = time.perf_counter()
        _cli(db, "sync", "--enqueue")
        enqueue = time.perf_counter() - enqueue
        remaining = f"SELECT count(*) FROM procrastinate_jobs WHERE task_name = {SYNC} AND status IN ('todo', 'doing')"
        _wait("the sync jobs", lambda: _query(db, remaining)[0][0] == 0)
        worker_cpu = sum(process_cpu(p.pid) - cpu0[p.pid] for p in procs)
        pg_cpu, sandbox_cpu = pg_server_cpu(server) - pg0, process_cpu(sandbox["pid"]) - sb0
        machine, window = _machine_busy() - busy0, time.perf_counter() - window
        requests = admin(sandbox["url"], "counters")["requests"] - requests0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.seek(0)
        errors = log.read().decode(errors="replace").strip()
        log.close()
    # the run's span as procrastinate's events record it: first job queued -> the last store's first job
    # succeeded (a second sync the workers' schedule may queue for a store is not waited for)
    ((jobs, ok, first, started),) = _query(
        db,
        "SELECT count(DISTINCT j.id), count(DISTINCT j.id) FILTER (WHERE j.status = 'succeeded'),"
        " min(e.at) FILTER (WHERE e.type = 'deferred'), min(e.at) FILTER (WHERE e.type = 'started')"
        f" FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id WHERE j.task_name = {SYNC}",
    )
    ((last, synced),) = _query(
        db,
        "SELECT max(done), count(*) FROM (SELECT j.args ->> 'store', min(e.at) AS done FROM procrastinate_jobs j"
        " JOIN procrastinate_events e ON e.job_id = j.id"
        f" WHERE j.task_name = {SYNC} AND e.type = 'succeeded' GROUP BY 1) AS firsts",
    )
    if ok != jobs or synced != stores:
        raise SystemExit(
            f"{workers} workers: {jobs - ok} of {jobs} sync jobs did not succeed (or too few jobs)\n{errors[-2000:]}"
        )
    _check_book(db, sandbox, stores, workers)
    return {
        "workers": workers,
        "jobs": jobs,
        "wall": (last - first).total_seconds(),
        "enqueue": enqueue,
        "first_start": (started - first).total_seconds(),
        "requests": requests,
        "worker_cpu": worker_cpu,
        "pg_cpu": pg_cpu,
        "sandbox_cpu": sandbox_cpu,
        "machine_cpu": machine,
        "window": window,
    }


def _check_book(db: str, sandbox: dict[str, Any], stores: int, workers: int) -> None:
    """Every store holds each of the sandbox's valid orders of the site exactly once (or SystemExit)."""
    expected = sorted(o["order_key"] for o in admin(sandbox["url"], f"orders?site={SITE}") if o["valid"])
    rows = _query(db, "SELECT s.name, count(o.order_key), count(DISTINCT o.order_key) FROM stores s"
                      " LEFT JOIN orders o ON o.store = s.name GROUP BY s.name")  # fmt: skip
    bad = [r for r in rows if not r[1] == r[2] == len(expected)]
    if len(rows) != stores or bad:
        raise SystemExit(
            f"{workers} workers: the book is wrong ({len(rows)} stores; {len(bad)} without exactly the"
            f" {len(expected)} orders once each, e.g. {bad[:3]})"
        )


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, comma-separated")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs each worker runs at once")
    parser.add_argument("--orders", type=int, default=20, help="orders in the sandbox (every store sees them all)")
    parser.add_argument("--latency", type=float, default=50.0, help="sandbox latency per request, ms")
    parser.add_argument("--inline", type=int, default=50, help="stores synced inline first, for their CPU")
    parser.add_argument("--pg", default=None, help="a PostgreSQL server URL (default: a throwaway cluster)")
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    if min(args.stores, args.inline, args.concurrency, *counts) < 1 or args.latency <= 0:
        parser.error("--stores, --inline, --concurrency and --workers need whole numbers >= 1, --latency > 0 ms")
    if args.pg:
        os.environ[ENV] = args.pg
    runs = []
    with (
        sandbox_process(orders=args.orders, latency_ms=args.latency, partners=args.stores, sites=(SITE,)) as sb,
        cluster(durable=True) as server,
    ):
        inline = inline_cpu(server, sb, min(args.stores, args.inline))
        for workers in counts:
            runs.append(one_run(server, sb, args.stores, workers, args.concurrency))
            print(f"  {workers} workers: {runs[-1]['wall']:.1f} s", file=sys.stderr, flush=True)
    _report(runs, args, inline)
    return 0


def inline_cpu(server: str, sandbox: dict[str, Any], count: int) -> tuple[float, float]:
    """CPU seconds of one store's first sync run in this process, no queue (``jobs.work.run_sync``, as a job
    does, on the worker's one plugin host), and of building a plugin host (which a worker does once)."""
    from connector_core.db import open_book
    from connector_core.jobs.work import run_sync
    from connector_core.plugins import PluginHost, get_plugin_manager

    db = new_database(server)
    with open_book(db) as book:
        for i, partner in enumerate(sandbox["partner_ids"][:count]):
            book.add_store(f"store-{i:04d}", "spartoo", store_settings(sandbox["url"], partner, (SITE,)))
    started = time.process_time()
    for i in range(count):
        run_sync(db, f"store-{i:04d}")
    sync = (time.process_time() - started) / count
    started = time.process_time()
    for _ in range(count):
        PluginHost(get_plugin_manager())
    return sync, (time.process_time() - started) / count


def _report(runs: list[dict[str, Any]], args: argparse.Namespace, inline: tuple[float, float]) -> None:
    """The table, the 1 -> 4 scaling, and what bounds the runs: the cores or the latency."""
    cores = os.cpu_count() or 1
    print(
        f"{args.stores} stores x 1 site ({SITE}), {args.orders} orders each, sandbox latency {args.latency:g} ms,"
        f" --concurrency {args.concurrency} per worker, {cores} cores"
    )
    head = ("workers", "jobs", "requests", "enqueue s", "1st start s", "wall s", "ideal s", "wall/ideal", "stores/s",
            "worker CPU s", "PG CPU s", "sandbox CPU s", "cores ours", "cores machine")  # fmt: skip
    print(" | ".join(head))
    for r in runs:
        # the latency no run can avoid: each store's requests (the sandbox's count over the jobs run) in turn
        ideal = r["requests"] / r["jobs"] * args.stores * args.latency / 1000 / (r["workers"] * args.concurrency)
        cpu = r["worker_cpu"] + r["pg_cpu"] + r["sandbox_cpu"]
        cells = [r["workers"], r["jobs"], r["requests"], f"{r['enqueue']:.1f}", f"{r['first_start']:.2f}"]
        cells += [f"{r['wall']:.1f}", f"{ideal:.1f}", f"{r['wall'] / ideal:.2f}", f"{args.stores / r['wall']:.1f}"]
        cells += [f"{r[k]:.1f}" for k in ("worker_cpu", "pg_cpu", "sandbox_cpu")]
        cells += [f"{cpu / r['window']:.2f}", f"{r['machine_cpu'] / r['window']:.2f}"]
        print(" | ".join(str(c) for c in cells))
    by = {r["workers"]: r for r in runs}
    if 1 in by and 4 in by:
        print(f"scaling 1 -> 4 workers: t1/t4 = {by[1]['wall'] / by[4]['wall']:.2f} (linear: 4)")
    extra = sum(r["jobs"] - args.stores for r in runs)
    if extra:
        print(f"{extra} extra job(s): the workers' own schedule queued a store again while its first job was starting")
    last = runs[-1]
    worker_job, pg_job = last["worker_cpu"] / last["jobs"], last["pg_cpu"] / last["jobs"]
    cpu_job = (last["worker_cpu"] + last["pg_cpu"] + last["sandbox_cpu"]) / last["jobs"]
    latency_job = last["requests"] / last["jobs"] * args.latency / 1000
    cpu_cap, serial_cap = cores / cpu_job, last["workers"] * args.concurrency / (latency_job + cpu_job)
    print(
        f"per job ({last['workers']} workers): {worker_job * 1000:.0f} ms CPU in the worker (the same sync run inline,"
        f" no queue: {inline[0] * 1000:.0f} ms; a PluginHost, built once per worker, {inline[1] * 1000:.0f} ms),"
        f" {pg_job * 1000:.0f} ms in PostgreSQL, {cpu_job * 1000:.0f} ms in all;"
        f" {latency_job * 1000:.0f} ms of sandbox latency"
    )
    print(
        f"bound: {cores} cores / {cpu_job * 1000:.0f} ms = {cpu_cap:.1f} jobs/s at most; {last['workers']} worker(s)"
        f" one job at a time / ({latency_job * 1000:.0f} + {cpu_job * 1000:.0f} ms) = {serial_cap:.1f} jobs/s:"
        f" {'the cores' if cpu_cap < serial_cap else 'one job at a time per worker'} bound(s) it; measured"
        f" {last['jobs'] / last['wall']:.1f} jobs/s with the machine busy"
        f" {last['machine_cpu'] / last['window']:.2f} of {cores} cores"
        f" (ours: {cpu_job * last['jobs'] / last['window']:.2f})"
    )


if __name__ == "__main__":
    raise SystemExit(main())

"""An experiment, not the host's design: the import with whole sites fetched and mapped in workers.

    .venv/bin/python bench/partitioned.py [--orders 100000] [--runs import,sites,floor,sites,import]

Today a sync's host process fetches, parses and converts every page and a
map worker maps it (:mod:`connector_core.sync.workers`). This measures the
other split one could build: ``--workers`` forked processes (default 2) each
take the next Spartoo site, fetch its export, parse, convert and map it with
the same :class:`~connector_core.sync.pipeline.Pipeline`, and send the rows;
the host only stores them. It skips what a real sync would add (leases,
cursors, the quota ledger, progress, a dead worker's fallback), so it is an
upper bound of what that split can gain.

Each run is a fresh interpreter on a fresh order book, against one sandbox:
``import`` is the real engine (``bench/run.py``'s import), ``sites`` the
split above, ``floor`` the floor of ``bench/floor.py``. Prints one JSON line
per run: wall seconds, CPU of the host and of its workers, peak RSS.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Timer, peak_rss_mb
from scenarios import ALL_SITES, floor_orders, import_orders, sandbox_process, store_settings

RESULT = "RESULT "
WAIT = 600.0
"""Seconds the host waits for a site worker's next message before giving the run up."""


def _site_worker(conn: Any, host: Any, store: Any, pipeline: Any) -> None:
    """Child body: map each site the host names until it names none; one message per page, then ``done``."""
    import attrs

    from connector_core.http import HttpPolicy, RetryingClient
    from connector_core.sync.workers import _receive, _send

    gc.freeze()
    while site := bytes(_receive(conn)).decode():
        context = attrs.evolve(
            store, settings={**store.settings, "sites": [site]}, http=RetryingClient(HttpPolicy.from_environ())
        )
        for page in host.fetch_orders(context, None):
            mapped = pipeline.map_page(page.orders)
            fetched = len(page.orders) + len(page.rejects)
            _send(conn, pickle.dumps(("page", mapped.rows, mapped.rejects, fetched), pickle.HIGHEST_PROTOCOL))
        _send(conn, pickle.dumps(("done",), pickle.HIGHEST_PROTOCOL))


def by_sites(url: str, partner_id: str, db: Path, workers: int) -> dict[str, Any]:
    """Child body: the site-partitioned import; returns figures."""
    from multiprocessing.connection import wait

    from connector_core.db.book import OrderBook
    from connector_core.plugins import PluginHost
    from connector_core.runtime import Runtime
    from connector_core.sync.pipeline import pipeline_for
    from connector_core.sync.workers import _pipe, _receive, _send

    host = PluginHost.create()
    with OrderBook(db) as book:
        book.add_store("bench", "spartoo", store_settings(url, partner_id, ALL_SITES))
        runtime = Runtime(host, book)
        store = runtime.store_context("bench")
        pipeline = pipeline_for(runtime, store).with_catalogue({})
        fetched = 0
        with Timer() as t:
            todo = list(ALL_SITES)
            children: dict[Any, int] = {}
            for _ in range(workers):
                mine, theirs = _pipe()
                pid = os.fork()
                if pid == 0:
                    mine.close()
                    code = 0
                    try:
                        _site_worker(theirs, host, store, pipeline)
                    except BaseException:
                        import traceback

                        traceback.print_exc()
                        code = 1
                    finally:
                        sys.stderr.flush()
                        os._exit(code)
                theirs.close()
                children[mine] = pid
                _send(mine, todo.pop(0).encode() if todo else b"")
            live = set(children)
            while live:
                ready = wait(list(live), WAIT)
                if not ready:
                    raise SystemExit(f"error: no site worker sent anything for {WAIT:.0f} s")
                for conn in ready:
                    message = pickle.loads(_receive(conn))
                    if message[0] == "done":  # the worker's site is stored: hand it the next, or let it end
                        if todo:
                            _send(conn, todo.pop(0).encode())
                        else:
                            _send(conn, b"")
                            live.discard(conn)
                        continue
                    _, rows, rejects, count = message
                    fetched += count
                    book.save_rows("bench", rows, list(rejects), None)
            for conn, pid in children.items():
                os.waitpid(pid, 0)
                conn.close()
        stored = book.count_orders("bench")
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "run": "sites",
        "workers": workers,
        "seconds": round(t.wall, 3),
        "host_cpu_seconds": round(t.cpu, 3),
        "worker_cpu_seconds": round(used.ru_utime + used.ru_stime, 3),
        "fetched": fetched,
        "stored": stored,
        "host_rss_mb": round(peak_rss_mb(), 1),
        "worker_rss_mb": round(used.ru_maxrss / 1024, 1),
    }


def _child(run: str, url: str, partner_id: str, db: Path, workers: int) -> dict[str, Any]:
    if run == "import":
        return {"run": run, **import_orders(url, partner_id, ALL_SITES, db)}
    if run == "floor":
        return {"run": run, **floor_orders(url, partner_id, ALL_SITES, db)}
    return by_sites(url, partner_id, db, workers)


def main(argv: list[str] | None = None) -> int:
    """Run each of ``--runs`` in its own interpreter against one sandbox; print a JSON line per run."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--runs", default="import,sites,floor,sites,import", help="comma-separated: import, sites, floor")
    p.add_argument("--workers", type=int, default=2, help="site workers of the 'sites' run")
    p.add_argument("--child", nargs=4, metavar=("RUN", "URL", "PARTNER", "DB"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        run, url, partner_id, db = args.child
        print(RESULT + json.dumps(_child(run, url, partner_id, Path(db), args.workers)), flush=True)
        return 0
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = sorted(set(runs) - {"import", "sites", "floor"})
    if unknown:
        p.error(f"unknown run(s) {', '.join(unknown)}: choose among import, sites, floor")
    with sandbox_process(orders=args.orders) as sandbox:
        for run in runs:
            with tempfile.TemporaryDirectory(prefix="bench-sites-") as tmp:
                cmd = [
                    sys.executable, __file__, "--workers", str(args.workers),
                    "--child", run, sandbox["url"], sandbox["partner_ids"][0], str(Path(tmp) / "book.sqlite3"),
                ]  # fmt: skip
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
            lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
            if done.returncode != 0 or not lines:
                print(f"error: the {run} run failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                return 1
            print(lines[-1][len(RESULT) :], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

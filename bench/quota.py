"""The quota held exactly under load: requests let through beside the quota, on both backends.

    .venv/bin/python bench/quota.py [--processes 4] [--quota 150] [--takes 5000] [--pg postgresql://...]

Two measurements, each on a SQLite file and on PostgreSQL (``--pg``, else a
throwaway local cluster with ``fsync`` on), in one run:

* **ledger**: ``--processes`` processes race for one partner's ledger, each
  trying ``--takes`` requests against a window of ``takes x processes / 2``:
  requests given beside the limit (must be 1.00), and ledger statements per
  second across the processes (what one request costs the book);
* **sync**: the Spartoo sandbox (its own quota set far above) and
  ``--processes`` host processes, each syncing its own store of the *same*
  partner at once, with ``requests_per_hour`` = ``--quota``: the requests the
  sandbox counted beside the quota (must be 1.00, with every sync stopped
  by the ledger rather than by a -429).

Prints one JSON object; exits 1 if any ratio is not exactly 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ledger_kit import race
from pgcluster import ENV, cluster, new_database

from connector_core.db import open_book

SYNC = """
import json, sys
from connector_core.db import open_book
from connector_core.engine import Engine
from connector_core.plugins import PluginHost
with open_book(sys.argv[1]) as book:
    report = Engine(PluginHost.create(), book).sync(sys.argv[2])
print(json.dumps({"quota_until": report.quota_until, "inserted": report.inserted}))
"""


def ledger(target: str, processes: int, takes: int) -> dict[str, object]:
    """Processes racing for one window: given vs limit, statements per second."""
    limit = takes * processes // 2
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        given = race(target, Path(tmp), processes=processes, attempts=takes, limit=limit, now=time.time())
        seconds = time.perf_counter() - started
    return {
        "limit": limit,
        "given": sum(given),
        "given_to_limit": round(sum(given) / limit, 4),
        "statements_per_s": round(takes * processes / seconds),
    }


def synced(target: str, processes: int, quota: int) -> dict[str, object]:
    """``processes`` syncs of stores sharing one partner, at once: requests seen by the sandbox vs the quota."""
    from connector_spartoo.sandbox.server import SpartooSandbox

    with SpartooSandbox(orders=400, sites=["com", "it", "es"], seed=11) as sandbox:
        settings = {**sandbox.settings(), "initial_lookback_days": 40, "requests_per_hour": quota}
        with open_book(target) as book:
            for n in range(processes):
                book.add_store(f"shop{n}", "spartoo", settings)
        syncs = [
            subprocess.Popen(
                [sys.executable, "-c", SYNC, target, f"shop{n}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,  # each sync's "quota used up" warning: expected, not shown
                text=True,
            )
            for n in range(processes)
        ]
        reports = []
        for sync in syncs:
            out, err = sync.communicate(timeout=600)
            if sync.returncode != 0:
                raise SystemExit(f"a sync failed: {err.strip().splitlines()[-1:]}")
            reports.append(json.loads(out))
        seen = int(sandbox.counters()["requests"])
    return {
        "quota": quota,
        "requests_seen": seen,
        "seen_to_quota": round(seen / quota, 4),
        "syncs_stopped_by_the_ledger": sum(r["quota_until"] is not None for r in reports),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--quota", type=int, default=150)
    parser.add_argument("--takes", type=int, default=5000)
    parser.add_argument("--pg", default=None, help="a PostgreSQL server URL (default: a throwaway cluster)")
    args = parser.parse_args(argv)
    if args.pg:
        os.environ[ENV] = args.pg
    out: dict[str, object] = {"scenario": "quota-held-under-load", "processes": args.processes}
    with tempfile.TemporaryDirectory() as tmp, cluster(durable=True) as server:
        for backend, make in (
            ("sqlite", lambda name: str(Path(tmp) / f"{name}.sqlite3")),
            ("postgresql", lambda name: new_database(server)),
        ):
            out[f"{backend}_ledger"] = ledger(make("ledger"), args.processes, args.takes)
            out[f"{backend}_sync"] = synced(make("sync"), args.processes, args.quota)
    print(json.dumps(out))
    exact = [
        v
        for k, part in out.items()
        if isinstance(part, dict)
        for k, v in part.items()
        if k.endswith("_to_limit") or k.endswith("_to_quota")
    ]
    return 0 if exact and all(v == 1 for v in exact) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Crash proof: kill ``connector-host sync`` and ``push`` with SIGKILL at random moments, restart, reconcile.

    python tests/soak/crash.py [--kills 20] [--orders 2000] [--shipments 200] [--seed 3] [--time-limit 900]

A Spartoo sandbox runs on loopback (a thread of this process) with a small
latency per request, so that a host run takes a few seconds and a kill can
land anywhere in it: mid-export, between a page and its cursor, between an
auto-accept and its local status, between a shipment's push and its
acknowledgement. Half the kills hit ``connector-host sync`` runs (new orders
keep arriving on the sandbox between runs), half hit ``connector-host push``
runs. Each killed run is followed by the next one on the same order book.
At the end, uncut runs finish the work and the order book is reconciled
with the sandbox: every valid order once, with the sandbox's status, every
shipment on the sandbox exactly once (no update request that changed
nothing), every invalid order in quarantine. Prints the figures as JSON;
exit status 0 when every disagreement count is zero.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from connector_spartoo.sandbox.server import SpartooSandbox
from soakkit import STORE, policy_env, reconcile, spartoo_host, store_settings

from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.models import Shipment

CLI = [sys.executable, "-c", "from connector_core.cli import main; main()"]


class Host:
    """Runs ``connector-host`` subprocesses on one order book and kills them on demand."""

    def __init__(self, db: Path, rng: random.Random, say: Any) -> None:
        self.db = db
        self.rng = rng
        self.say = say
        self.env = {**os.environ, "CONNECTOR_HOST_HTTP_POLICY": policy_env(), "CONNECTOR_HOST_DB": str(db)}
        self.env.pop("CONNECTOR_HOST_EXTRA", None)
        self.killed = {"sync": 0, "push": 0}
        self.completed = {"sync": 0, "push": 0}
        self.already_applied = 0
        self.durations: dict[str, float] = {"sync": 4.0, "push": 4.0}
        self.startup = self._startup()

    def _startup(self) -> float:
        """How long a host process takes to start (a cheap command), so kills land in the work itself."""
        best = 10.0
        for _ in range(2):
            started = time.monotonic()
            subprocess.run([*CLI, "stores", "list", "--json"], env=self.env, capture_output=True, check=True)
            best = min(best, time.monotonic() - started)
        return best

    def _start(self, command: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLI, command, "--store", STORE, "--json"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _finished(self, command: str, proc: subprocess.Popen[str], took: float) -> None:
        out, err = proc.communicate()
        self.completed[command] += 1
        self.durations[command] = max(self.startup + 0.3, took)
        if proc.returncode != 0:
            raise RuntimeError(f"connector-host {command} failed ({proc.returncode}): {err.strip()[-2000:]}")
        if command == "push":
            self.already_applied += sum(r["already_applied"] for r in json.loads(out))

    def run(self, command: str, timeout: float = 300.0) -> None:
        """One uncut run that must succeed."""
        started = time.monotonic()
        proc = self._start(command)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        self._finished(command, proc, time.monotonic() - started)

    def kill_one(self, command: str) -> bool:
        """Start a run and SIGKILL it at a random moment of its expected span; ``True`` if it was killed."""
        delay = self.rng.uniform(self.startup * 0.8, self.durations[command])
        started = time.monotonic()
        proc = self._start(command)
        try:
            proc.wait(delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            self.killed[command] += 1
            self.say(f"killed {command} after {delay:.2f}s")
            return True
        self._finished(command, proc, time.monotonic() - started)
        self.say(f"{command} finished before its kill at {delay:.2f}s")
        return False


def _record_shipments(book: OrderBook, engine: Engine, count: int, shipped: set[str]) -> int:
    rows = book.conn.execute(
        "SELECT order_key FROM orders WHERE store = ? AND marketplace_status IN ('11', '2') ORDER BY order_key",
        (STORE,),
    ).fetchall()
    added = 0
    for (key,) in rows:
        if added >= count:
            break
        if key in shipped:
            continue
        engine.record_shipment(
            Shipment(store=STORE, order_key=key, tracking_number=f"CR{len(shipped):06d}", ship_date=datetime.now(UTC))
        )
        shipped.add(key)
        added += 1
    return added


def run(
    *,
    orders: int = 2000,
    shipments: int = 200,
    kills: int = 20,
    seed: int = 3,
    latency_ms: float = 15.0,
    time_limit: float = 900.0,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run the crash proof; return its figures (see the module docstring)."""
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    rng = random.Random(seed)
    started = time.monotonic()
    sync_kills = kills // 2
    push_kills = kills - sync_kills
    with tempfile.TemporaryDirectory(prefix="crash-") as tmp:
        db = Path(tmp) / "orders.sqlite3"
        sandbox = SpartooSandbox(orders=orders, seed=seed, sites=["com", "it", "de"], latency=latency_ms)
        with sandbox:
            with OrderBook(db) as book:
                book.add_store(STORE, "spartoo", store_settings(sandbox.settings()))
            host = Host(db, rng, say)
            arriving = max(1, orders // 10)
            while host.killed["sync"] < sync_kills and time.monotonic() - started < time_limit:
                sandbox.add_orders(arriving)  # new work for every sync run
                host.kill_one("sync")
            host.run("sync")  # an uncut sync: the book is complete before shipping
            shipped: set[str] = set()
            per_round = max(1, shipments // max(1, push_kills))
            with OrderBook(db) as book:
                engine = Engine(spartoo_host(), book)
                while host.killed["push"] < push_kills and time.monotonic() - started < time_limit:
                    if len(shipped) < shipments:
                        _record_shipments(book, engine, min(per_round, shipments - len(shipped)), shipped)
                    host.kill_one("push")
                if len(shipped) < shipments:
                    _record_shipments(book, engine, shipments - len(shipped), shipped)
            host.run("push")  # uncut runs finish the work
            host.run("sync")  # and bring the marketplace's statuses of shipped orders home
            rec = reconcile(db, sandbox.orders(), list(sandbox.state.malformed_orders))
            counters = sandbox.counters()
    return {
        "runs_killed": host.killed["sync"] + host.killed["push"],
        "sync_runs_killed": host.killed["sync"],
        "push_runs_killed": host.killed["push"],
        "runs_completed": host.completed["sync"] + host.completed["push"],
        "host_startup_seconds": round(host.startup, 2),
        "orders_on_sandbox": rec.sandbox_orders,
        "valid_orders": rec.valid_orders,
        "orders_in_book": rec.book_orders,
        "orders_checked": rec.valid_orders,
        "shipments_checked": rec.shipments,
        "shipments_pushed": rec.shipments_pushed,
        "re_pushes_already_applied": host.already_applied,
        "invalid_orders_quarantined": rec.invalid_quarantined,
        "requests": counters["requests"],
        "losses": len(rec.missing),
        "duplicates": rec.duplicated_rows + rec.duplicate_updates,
        "seconds": round(time.monotonic() - started, 1),
        "problems": rec.problems,
        "sound": not any(rec.problems.values()) and host.killed == {"sync": sync_kills, "push": push_kills},
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: run the crash proof, print the figures as JSON; exit 1 on any disagreement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--shipments", type=int, default=200)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=15.0, help="sandbox latency per request")
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds (default 900)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    figures = run(
        orders=args.orders,
        shipments=args.shipments,
        kills=args.kills,
        seed=args.seed,
        latency_ms=args.latency_ms,
        time_limit=args.time_limit,
        quiet=args.quiet,
    )
    print(json.dumps(figures, indent=2))
    return 0 if figures["sound"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Fault-injection soak: import thousands of orders and push hundreds of shipments through a faulty Spartoo.

    python tests/soak/soak.py --orders 3000 --shipments 300 [--seed 7] [--time-limit 900]

A Spartoo sandbox runs on loopback (in a thread of this process) with
faults on: 20 % HTTP 5xx, 5 % dropped connections, 5 % ``-429`` quota
answers and 2 % exports carrying one broken order. Half the orders exist at
the start, the rest arrive while the host works. The host (an
:class:`~connector_core.engine.Engine` with a short-wait HTTP policy) then
cycles: sync, retry what is in quarantine, record shipments for accepted
orders, push. It stops when the order book reconciles with the sandbox (or
at the time limit) and prints the counts: orders imported, shipments
pushed, faults injected (from the sandbox's counters) and every kind of
disagreement (lost, unexpected, duplicated, duplicate updates on the
sandbox, malformed or invalid orders missing from quarantine). Exit status
0 when every disagreement count is zero.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from connector_spartoo.sandbox.server import SpartooSandbox
from soakkit import FAST_POLICY, SOAK_FAULTS, STORE, reconcile, spartoo_host, store_settings

from connector_core import quota
from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.errors import ConnectorError
from connector_core.models import Shipment

SITES = ["com", "it", "co.uk", "de"]


def _ship_some(engine: Engine, book: OrderBook, want: int, shipped: set[str], batch: int) -> int:
    """Record up to ``batch`` new shipments (orders Spartoo has in status 11 or 2), up to ``want`` in all."""
    added = 0
    rows = book.conn.execute(
        "SELECT order_key FROM orders WHERE store = ? AND marketplace_status IN ('11', '2') ORDER BY order_key",
        (STORE,),
    ).fetchall()
    for (key,) in rows:
        if len(shipped) >= want or added >= batch:
            break
        if key in shipped:
            continue
        engine.record_shipment(
            Shipment(
                store=STORE,
                order_key=key,
                tracking_number=f"SOAK{len(shipped):06d}",
                ship_date=datetime.now(UTC),
                carrier="Colissimo",
            )
        )
        shipped.add(key)
        added += 1
    return added


def _retry_quarantine(engine: Engine, book: OrderBook) -> int:
    """Retry every unretried reject whose order is not in the book; return how many were imported."""
    held = {r[0] for r in book.conn.execute("SELECT order_key FROM orders WHERE store = ?", (STORE,))}
    imported = 0
    for row in book.list_rejected(store=STORE):
        if row.retried_at is None and row.order_key and row.order_key not in held:
            try:
                outcome = engine.retry_rejected(row.id)
            except ConnectorError:
                continue  # a fault on the way: next cycle
            if outcome.state == "imported":
                imported += 1
                held.add(row.order_key)
    return imported


def _pass_quota_window(engine: Engine) -> int:
    """Let the quota window pass (the soak's clock runs fast): lift the store's block; 1 if there was one.

    A -429 blocks the partner until the next clock hour; the soak does not
    wait an hour between cycles, it lifts the block as the hour would.
    """
    store = engine.store_context(STORE)
    try:
        marketplace, partner = quota.scope(engine, store)
        blocked = engine.book.quota_blocked_until(marketplace, partner) is not None
        engine.book.clear_quota(marketplace, partner)
    finally:
        store.http.close()
    return int(blocked)


def run(
    orders: int,
    shipments: int,
    *,
    seed: int = 7,
    time_limit: float = 900.0,
    db: Path | None = None,
    quiet: bool = False,
    malformed_rate: float = SOAK_FAULTS["malformed_rate"],
    arrivals: int = 20,
) -> dict[str, Any]:
    """Run the soak; return its figures (see the module docstring).

    Half the orders exist at the start; the rest arrive in ``arrivals``
    batches, one per cycle, so that there are many exports (each has a
    ``malformed_rate`` chance of carrying a broken order).
    """
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    workdir = tempfile.TemporaryDirectory(prefix="soak-") if db is None else None
    path = db or Path(workdir.name) / "orders.sqlite3"  # type: ignore[union-attr]
    started = time.monotonic()
    faults = {**SOAK_FAULTS, "malformed_rate": malformed_rate}
    initial = orders - orders // 2 if arrivals > 0 else orders
    pending = orders - initial
    batch_size = -(-pending // arrivals) if arrivals > 0 else 0
    sandbox = SpartooSandbox(orders=initial, seed=seed, sites=SITES, **faults)
    cycles = sync_errors = push_errors = quota_blocks = 0
    sync_seconds: list[float] = []
    try:
        with sandbox, OrderBook(path) as book:
            book.add_store(STORE, "spartoo", store_settings(sandbox.settings()))
            engine = Engine(spartoo_host(), book, http_policy=FAST_POLICY, max_push_attempts=1000)
            shipped: set[str] = set()
            batch = max(1, shipments // 3)
            rec = None
            while time.monotonic() - started < time_limit:
                cycles += 1
                if pending > 0:
                    sandbox.add_orders(min(batch_size, pending))
                    pending -= min(batch_size, pending)
                began = time.monotonic()
                try:
                    report = engine.sync(STORE)
                    sync_line = f"{report.fetched} fetched, {report.inserted} new, {report.rejected} rejected"
                    if report.quota_until is not None:
                        sync_line += f", quota used up ({report.deferred} accepts deferred)"
                except ConnectorError as err:  # retries exhausted on one export: the next cycle resumes
                    sync_errors += 1
                    sync_line = f"sync stopped: {err}"
                sync_seconds.append(time.monotonic() - began)
                recovered = _retry_quarantine(engine, book)
                _ship_some(engine, book, shipments, shipped, batch)
                try:
                    pushed = engine.push(STORE)
                    push_line = f"{pushed.pushed} pushed, {pushed.retry} to retry, {pushed.failed} failed"
                except ConnectorError as err:
                    push_errors += 1
                    push_line = f"push stopped: {err}"
                quota_blocks += _pass_quota_window(engine)
                rec = reconcile(path, sandbox.orders(), list(sandbox.state.malformed_orders))
                say(
                    f"cycle {cycles}: {sync_line}; {recovered} recovered from quarantine; {push_line}; "
                    f"book {rec.book_orders}/{rec.valid_orders}, shipments {rec.shipments_pushed}/{shipments}"
                )
                if pending == 0 and len(shipped) >= shipments and not any(rec.problems.values()):
                    break
            counters = sandbox.counters()
            sandbox.set_faults()
    finally:
        if workdir is not None:
            workdir.cleanup()
    assert rec is not None
    return {
        "orders_on_sandbox": rec.sandbox_orders,
        "valid_orders": rec.valid_orders,
        "orders_in_book": rec.book_orders,
        "shipments_recorded": rec.shipments,
        "shipments_pushed": rec.shipments_pushed,
        "invalid_orders_quarantined": rec.invalid_quarantined,
        "malformed_orders_in_imports": rec.malformed,
        "malformed_quarantined": rec.malformed_quarantined,
        "rejected_rows": rec.rejected_rows,
        "requests": counters["requests"],
        "faults_injected": counters["faults"],
        "cycles": cycles,
        "sync_runs_stopped_by_faults": sync_errors,
        "push_runs_stopped_by_faults": push_errors,
        "quota_blocks": quota_blocks,
        "sync_seconds_max": round(max(sync_seconds, default=0.0), 2),
        "sync_deadline": FAST_POLICY.sync_deadline,
        "seconds": round(time.monotonic() - started, 1),
        "problems": rec.problems,
        "sound": not any(rec.problems.values()) and len(shipped) >= shipments,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: run the soak, print the figures as JSON; exit 1 on any disagreement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--shipments", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--malformed-rate", type=float, default=SOAK_FAULTS["malformed_rate"])
    parser.add_argument("--arrivals", type=int, default=20, help="batches in which half the orders arrive")
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds (default 900)")
    parser.add_argument("--quiet", action="store_true", help="print only the final figures")
    args = parser.parse_args(argv)
    figures = run(
        args.orders,
        args.shipments,
        seed=args.seed,
        time_limit=args.time_limit,
        quiet=args.quiet,
        malformed_rate=args.malformed_rate,
        arrivals=args.arrivals,
    )
    print(json.dumps(figures, indent=2))
    return 0 if figures["sound"] else 1


if __name__ == "__main__":
    sys.exit(main())

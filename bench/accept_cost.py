"""The host's CPU per auto-accepted order, and what reading one order back costs, on two checkouts.

    .venv/bin/python bench/accept_cost.py [--before /path/to/old/.venv/bin/python] [--orders 10000] [--rounds 2]
        [--accept-concurrency 1] [--latency 0]

Each interpreter runs this script as a child with its own ``connector_core``;
rounds alternate before/after. A child imports ``--orders`` sandbox orders
twice, each time into a fresh book from a fresh sandbox (every order mapped
in the host: ``workers=0``): once with auto-accept off, once
with it on. The difference of the two syncs' CPU, over the orders accepted,
is what the host spends per auto-accepted order beyond importing it: the
accept request, its bookkeeping and the status change in the book. Beside it,
the CPU per order of reading the whole book back (``iter_orders``: a row read
and decoded into an ``Order``), the round trip a status change no longer
makes. Prints one JSON object per child, a table of every round, and the
difference of the medians.

``--accept-concurrency`` is how many accepts the host has in flight at once
(its default is 8; the checkout before the accept outbox always sent one at
a time and ignores it). At 1 both checkouts make the same calls in the same
order, so the difference is the host's own work per accept. Above 1 the
threads add CPU of their own while the sandbox answers at once (here, with
no latency, 240 to 420 µs more per accept at 2 to 8 threads on 2 cores); against a
marketplace that takes its time they mostly wait: ``--latency 20`` has the
sandbox take 20 ms per request, as ``bench/run.py``'s defaults scenario does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Timer, child_result, emit
from scenarios import ALL_SITES, core, sandbox_process, store_settings


def one_sync(orders: int, auto_accept: bool, db: Path, concurrency: int, latency: float) -> dict[str, Any]:
    """A first sync of ``orders`` sandbox orders into a fresh book at ``db``; its CPU and counts."""
    from connector_core.engine import Engine
    from connector_core.plugins import PluginHost

    with sandbox_process(orders=orders, latency_ms=latency) as sb:
        host = PluginHost.create()
        settings = {**store_settings(sb["url"], sb["partner_ids"][0], ALL_SITES), "auto_accept": auto_accept}
        with core().OrderBook(db) as book:
            book.add_store("bench", "spartoo", settings)
            engine = Engine(host, book, workers=0)
            engine.accept_concurrency = concurrency
            with Timer() as sync:
                report = engine.sync("bench")
            with Timer() as read:
                stored = sum(1 for _ in book.iter_orders("bench"))
    return {
        "cpu_seconds": sync.cpu,
        "fetched": report.fetched,
        "accepted": report.accepted,
        "stored": stored,
        "read_back_us_per_order": read.cpu / max(stored, 1) * 1e6,
    }


def child(orders: int, concurrency: int, latency: float) -> dict[str, Any]:
    """Both syncs, auto-accept off then on; the figures the table compares."""
    with tempfile.TemporaryDirectory(prefix="accept-cost-") as tmp:
        off = one_sync(orders, False, Path(tmp) / "off.sqlite3", concurrency, latency)
        on = one_sync(orders, True, Path(tmp) / "on.sqlite3", concurrency, latency)
    extra = on["cpu_seconds"] - off["cpu_seconds"]
    return {
        "orders": orders,
        "accepted": on["accepted"],
        "import_us_per_order": round(off["cpu_seconds"] / max(off["fetched"], 1) * 1e6, 1),
        "defaults_us_per_order": round(on["cpu_seconds"] / max(on["fetched"], 1) * 1e6, 1),
        "us_per_accepted_order": round(extra / max(on["accepted"], 1) * 1e6, 1),
        "read_back_us_per_order": round(off["read_back_us_per_order"], 1),
    }


FIGURES = (
    ("host CPU µs per order, auto-accept off", "import_us_per_order"),
    ("host CPU µs per order, auto-accept on", "defaults_us_per_order"),
    ("host CPU µs per auto-accepted order, beyond importing it", "us_per_accepted_order"),
    ("reading one order back (row read and decoded), CPU µs", "read_back_us_per_order"),
    ("orders accepted", "accepted"),
)


def run_child(python: str, orders: int, concurrency: int, latency: float) -> dict[str, Any]:
    """This script as a child under ``python``; its result."""
    cmd = [python, __file__, "--child", "--orders", str(orders), "--accept-concurrency", str(concurrency)]
    cmd += ["--latency", str(latency)]
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    except OSError as err:
        raise SystemExit(f"accept_cost.py: cannot run {python}: {err.strerror}") from None
    result = child_result(done.stdout)
    if done.returncode != 0 or result is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"accept_cost.py: the child under {python} failed (exit {done.returncode}): {last}")
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the table (or, with ``--child``, one child's figures)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", help="python of an older checkout's environment (default: this one alone)")
    p.add_argument("--after", default=sys.executable, help="python of this checkout's environment")
    p.add_argument("--orders", type=int, default=10_000, help="sandbox orders per sync (default 10000)")
    p.add_argument("--rounds", type=int, default=2, help="children per interpreter, alternating (default 2)")
    p.add_argument(
        "--accept-concurrency", type=int, default=1, help="accepts in flight at once in the host (default 1)"
    )
    p.add_argument("--latency", type=float, default=0.0, help="the sandbox's latency per request in ms (default 0)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.orders < 1 or args.rounds < 1 or args.accept_concurrency < 1:
        p.error("--orders, --rounds and --accept-concurrency must be 1 or more")
    if args.latency < 0:
        p.error("--latency must be 0 or more")
    if args.child:
        emit(child(args.orders, args.accept_concurrency, args.latency))
        return 0
    sides = {"before": args.before, "after": args.after} if args.before else {"after": args.after}
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for n in range(args.rounds):
        order = list(sides) if n % 2 == 0 else list(reversed(sides))
        for side in order:
            result = run_child(sides[side], args.orders, args.accept_concurrency, args.latency)
            print(f"# round {n + 1}, {side}: {json.dumps(result)}", flush=True)
            runs[side].append(result)
    print()
    print("| figure | " + " | ".join(f"{side} (per round)" for side in sides) + " |")
    print("|---|" + "---|" * len(sides))
    for label, key in FIGURES:
        cells = [", ".join(f"{r[key]:g}" for r in runs[side]) for side in sides]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if args.before:
        drop = statistics.median(r["us_per_accepted_order"] for r in runs["before"]) - statistics.median(
            r["us_per_accepted_order"] for r in runs["after"]
        )
        read_back = statistics.median(r["read_back_us_per_order"] for r in runs["before"])
        print()
        change = f"{drop:.1f} µs less" if drop >= 0 else f"{-drop:.1f} µs more"
        print(
            f"per auto-accepted order the host spends {change} (medians, {args.accept_concurrency} in flight,"
            f" {args.latency:g} ms latency);"
            f" reading one order back cost {read_back:.1f} µs before"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The benchmark suite in one command.

    .venv/bin/python bench/run.py [--orders N] [--quick] [--only NAMES] [--markdown FILE]

Runs, each in its own child process (peak RSS per measurement) against a
Spartoo sandbox in yet another process: validation cost, import throughput
and its floor, memory at N/10 and N orders, many stores at once, and
shipments pushed through the outbox. Prints every figure and the ratio it is
judged by; ``--markdown`` also writes them as a Markdown table.
``--quick``: 10,000 orders, 20 stores, 1,000 shipments (a smoke check).
Many stores and shipments run once per ``--processes`` count (default 1 and
2): the same total concurrency in one process, then shared out over two.
The import and its floor run ``--import-rounds`` times each, in turns (default
3, 1 with ``--quick``); the ratio judged is the median round's, and every
round is printed.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import process_cpu, run_child
from scenarios import ALL_SITES, child_main, sandbox_process

TARGETS = {
    "orders_per_s": 5000,
    "pipeline_over_floor": 2.0,
    "peak_rss_mb": 250,
    "rss_growth": 1.5,
    "over_ideal": 1.5,
}
BENCHMARKS = ("validation", "import", "memory", "stores", "push", "defaults")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the suite (and of its child processes)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=None, help="orders in the import sandbox (default 100000)")
    p.add_argument("--stores", type=int, default=None, help="stores in the many-stores run (default 200)")
    p.add_argument("--shipments", type=int, default=None, help="shipments pushed (default 10000)")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent stores / pushes (default 16)")
    p.add_argument(
        "--processes",
        default="1,2",
        help="many stores and shipments: the runs' process counts, comma-separated (default 1,2: the same"
        " concurrency in one process, then shared out over two)",
    )
    p.add_argument("--default-orders", type=int, default=10_000, help="orders of the default-settings sync")
    p.add_argument(
        "--import-rounds",
        type=int,
        default=None,
        help="import: floor and pipeline this many times each, in turns; judged on the median round (default 3,"
        " 1 with --quick)",
    )
    p.add_argument("--quick", action="store_true", help="10,000 orders, 20 stores, 1,000 shipments")
    p.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    p.add_argument("--markdown", type=Path, help="also write the results as Markdown to this file")
    p.add_argument("--json", dest="json_out", type=Path, help="also write every figure as JSON to this file")
    # child-process options
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--partner", help=argparse.SUPPRESS)
    p.add_argument("--sites", default=",".join(ALL_SITES), help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--latency", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--partners", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=7, help=argparse.SUPPRESS)
    p.add_argument("--sites-per-store", type=int, default=5, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is None:
        args.orders = args.orders or (10_000 if args.quick else 100_000)
        args.stores = args.stores or (20 if args.quick else 200)
        args.shipments = args.shipments or (1_000 if args.quick else 10_000)
        if args.import_rounds is None:
            args.import_rounds = 1 if args.quick else 3
        if args.import_rounds < 1:
            p.error("--import-rounds must be 1 or more")
    return args


def _process_counts(args: argparse.Namespace) -> list[int]:
    return [int(p) for p in str(args.processes).split(",") if p.strip()]


def verdict(ok: bool) -> str:
    """PASS / MISS marker for a target."""
    return "PASS" if ok else "MISS"


def bench_validation(quick: bool) -> list[dict[str, Any]]:
    """Validation per-record cost (in this process: no RSS figure needed)."""
    import validation

    return validation.run(500 if quick else 2000, quick=quick)


def bench_import(orders: int, tmp: Path, rounds: int = 1) -> dict[str, Any]:
    """Import throughput and the floor, side by side against one sandbox of ``orders`` orders.

    With ``rounds`` > 1 the floor and the pipeline run ``rounds`` times each,
    in turns (floor first in odd rounds, the pipeline first in even ones), so
    that the machine's drift falls on both alike; the ratio judged is the
    median of the rounds' ratios, and the figures given are that round's.
    """
    done: list[dict[str, Any]] = []
    with sandbox_process(orders=orders) as sb:
        common = ["--url", sb["url"], "--partner", sb["partner_ids"][0]]
        for n in range(max(rounds, 1)):
            floor_db, import_db = tmp / f"floor-{n}.sqlite3", tmp / f"import-{n}.sqlite3"
            measured: dict[str, Any] = {}
            for kind in ("floor", "import") if n % 2 == 0 else ("import", "floor"):
                if kind == "floor":
                    measured["floor"] = run_child("floor", *common, "--db", str(floor_db))
                else:
                    before = process_cpu(sb["pid"])
                    measured["pipeline"] = run_child("import", *common, "--db", str(import_db))
                    measured["sandbox_cpu_seconds"] = round(process_cpu(sb["pid"]) - before, 3)
            for path in tmp.glob(f"*-{n}.sqlite3*"):
                path.unlink()
            pipeline, floor = measured["pipeline"], measured["floor"]
            done.append(
                {
                    "sandbox_cpu_seconds": measured["sandbox_cpu_seconds"],
                    "orders": orders,
                    "pipeline": pipeline,
                    "floor": floor,
                    "pipeline_over_floor_file": round(pipeline["seconds"] / floor["file_seconds"], 2),
                    "pipeline_over_floor_http": round(pipeline["seconds"] / floor["http_seconds"], 2),
                }
            )
    # the median round by its ratio; with an even count the higher of the two middle ones
    median = sorted(done, key=lambda r: r["pipeline_over_floor_file"])[len(done) // 2]
    per_round = [
        {
            "pipeline_seconds": r["pipeline"]["seconds"],
            "floor_file_seconds": r["floor"]["file_seconds"],
            "pipeline_over_floor_file": r["pipeline_over_floor_file"],
        }
        for r in done
    ]
    return {**median, "rounds": per_round}


def bench_memory(orders: int, big: dict[str, Any] | None, tmp: Path) -> dict[str, Any]:
    """Peak RSS of the import at ``orders // 10`` and ``orders``."""
    small_n = max(orders // 10, 100)
    with sandbox_process(orders=small_n) as sb:
        small = run_child(
            "import", "--url", sb["url"], "--partner", sb["partner_ids"][0], "--db", str(tmp / "m.sqlite3")
        )
    if big is None:
        big = bench_import(orders, tmp)["pipeline"]
    return {
        "small_orders": small_n,
        "small_rss_mb": small["peak_rss_mb"],
        "big_orders": orders,
        "big_rss_mb": big["peak_rss_mb"],
        "growth": round(big["peak_rss_mb"] / small["peak_rss_mb"], 2),
    }


def bench_stores(stores: int, concurrency: int, tmp: Path, processes: int = 1) -> dict[str, Any]:
    """Many stores of 5 sites each against a sandbox with 50 ms latency, ``concurrency`` over ``processes``."""
    latency = 50.0
    db = tmp / f"stores-{processes}.sqlite3"
    with sandbox_process(orders=stores // 4 or 1, latency_ms=latency, partners=stores) as sb:
        result = run_child(
            "stores", "--url", sb["url"], "--partner", ",".join(sb["partner_ids"]), "--sites-per-store", "5",
            "--concurrency", str(concurrency), "--processes", str(processes), "--db", str(db),
        )  # fmt: skip
    ideal = result["requests"] / concurrency * latency / 1000
    result.update(latency_ms=latency, ideal_seconds=round(ideal, 3), over_ideal=round(result["seconds"] / ideal, 2))
    return result


def bench_push(shipments: int, concurrency: int, tmp: Path, processes: int = 1) -> dict[str, Any]:
    """Shipments through the outbox against a sandbox with 20 ms latency, ``concurrency`` over ``processes``."""
    latency = 20.0
    orders = int(shipments / 0.6) + 100  # about 70% of sandbox orders are new (status 11) and get accepted
    with sandbox_process(orders=orders) as sb:
        result = run_child(
            "push", "--url", sb["url"], "--partner", sb["partner_ids"][0], "--shipments", str(shipments),
            "--concurrency", str(concurrency), "--latency", str(latency), "--processes", str(processes),
            "--db", str(tmp / f"push-{processes}.sqlite3"),
        )  # fmt: skip
    # every request of the push waits the latency: the updates, and the reads that make a re-push safe
    ideal = result["all_requests"] / concurrency * latency / 1000
    updates_only = result["requests"] / concurrency * latency / 1000
    result.update(
        ideal_seconds=round(ideal, 3),
        over_ideal=round(result["seconds"] / ideal, 2) if ideal else None,
        updates_ideal_seconds=round(updates_only, 3),
        over_updates_ideal=round(result["seconds"] / updates_only, 2) if updates_only else None,
    )
    return result


def bench_defaults(orders: int, tmp: Path, latency: float = 20.0) -> dict[str, Any]:
    """A first sync with the default settings (auto-accept on) at ``latency`` ms per request, beside its ideal.

    The ideal: every request takes only the latency; the exports one after
    another, the accepts ``accept_concurrency`` at a time (what the default
    settings send at once).
    """
    with sandbox_process(orders=orders) as sb:
        result = run_child(
            "defaults", "--url", sb["url"], "--partner", sb["partner_ids"][0], "--latency", str(latency),
            "--db", str(tmp / "defaults.sqlite3"),
        )  # fmt: skip
    accepts = result["accepted"] + result["accept_errors"]
    others = result["requests"] - accepts
    ideal = (others + accepts / result["accept_concurrency"]) * latency / 1000
    result.update(
        ideal_seconds=round(ideal, 3),
        over_ideal=round(result["seconds"] / ideal, 2) if ideal else None,
        cpu_us_per_order=round(result["cpu_seconds"] / max(result["fetched"], 1) * 1e6, 1),
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and print (and optionally write) the results."""
    args = parse_args(argv)
    if args.child:
        child_main(args.child, args)
        return 0
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    started = datetime.now(UTC)
    wall = time.perf_counter()
    lines = [
        f"connector-host benchmarks, {started:%Y-%m-%d %H:%M} UTC, Python {platform.python_version()},"
        f" {platform.machine()}, {_cpus()} CPUs",
        f"command: .venv/bin/python bench/run.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip(),
        "",
    ]

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    figures: dict[str, Any] = {}
    for line in lines:
        print(line)
    with tempfile.TemporaryDirectory(prefix="connector-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if "validation" in only:
            say("## Validation: µs per record (engine's validator vs jsonschema, same records)")
            import validation

            say(validation.report(bench_validation(args.quick)))
            say("")
        imported = None
        if "import" in only:
            say(f"## Import throughput: {args.orders:,} orders, one store of {len(ALL_SITES)} sites, Engine.sync")
            r = bench_import(args.orders, tmp, args.import_rounds)
            figures["import"] = r
            imported, p, f = r, r["pipeline"], r["floor"]
            say(
                f"  pipeline : {p['fetched']:,} orders in {p['seconds']:.2f} s = {p['orders_per_s']:,.0f} orders/s"
                f" (cpu {p['cpu_seconds']:.2f} s = host {p['main_cpu_seconds']:.2f} + {p['workers']} map worker(s)"
                f" {p['worker_cpu_seconds']:.2f}, sandbox {r['sandbox_cpu_seconds']:.2f};"
                f" peak RSS {p['peak_rss_mb']:.0f} MB = {p['main_rss_mb']:.0f} + {p['worker_rss_mb']:.0f};"
                f" {p['stored']:,} stored,"
                f" {p['rejected']:,} quarantined, validator {p['backend']})"
                f"  [{verdict(p['orders_per_s'] >= TARGETS['orders_per_s'])} >= {TARGETS['orders_per_s']:,}/s]"
            )
            say(
                f"  floor    : {f['orders']:,} orders, {f['bytes'] / 1e6:.0f} MB of XML; from files"
                f" {f['file_seconds']:.2f} s = {f['file_orders_per_s']:,.0f}/s; straight off HTTP"
                f" {f['http_seconds']:.2f} s = {f['http_orders_per_s']:,.0f}/s; fetch alone {f['fetch_seconds']:.2f} s"
            )
            if len(r["rounds"]) > 1:
                shown = ", ".join(
                    f"{x['pipeline_seconds']:.2f} / {x['floor_file_seconds']:.2f} s = {x['pipeline_over_floor_file']}"
                    for x in r["rounds"]
                )
                say(f"  rounds   : pipeline / floor from files, in turns: {shown}; the figures above: the median round")
            say(
                f"  ratio pipeline/floor: {r['pipeline_over_floor_file']} (floor from files),"
                f" {r['pipeline_over_floor_http']} (floor off HTTP)"
                f"  [{verdict(r['pipeline_over_floor_file'] <= TARGETS['pipeline_over_floor'])} <= 2 on files]"
            )
            say("")
        if "memory" in only:
            say("## Memory: peak RSS of the import child")
            m = bench_memory(args.orders, imported["pipeline"] if imported else None, tmp)
            say(
                f"  {m['small_orders']:,} orders: {m['small_rss_mb']:.0f} MB; {m['big_orders']:,} orders:"
                f" {m['big_rss_mb']:.0f} MB; growth {m['growth']}x"
                f"  [{verdict(m['big_rss_mb'] <= TARGETS['peak_rss_mb'])} <= 250 MB,"
                f" {verdict(m['growth'] <= TARGETS['rss_growth'])} <= 1.5x]"
            )
            say("")
        if "stores" in only:
            say(f"## Many stores: {args.stores} stores x 5 sites, 50 ms latency, concurrency {args.concurrency}")
            for processes in _process_counts(args):
                s = bench_stores(args.stores, args.concurrency, tmp, processes)
                say(
                    f"  {processes} process(es): {s['requests']:,} requests, {s['orders']:,} orders in"
                    f" {s['seconds']:.2f} s; ideal {s['ideal_seconds']:.2f} s; {s['over_ideal']}x ideal,"
                    f" {s['failed']} failed"
                    f"  [{verdict(s['over_ideal'] <= TARGETS['over_ideal'] and not s['failed'])} <= 1.5x]"
                )
                if s["first_error"]:
                    say(f"  first error: {s['first_error']}")
            say("")
        if "push" in only:
            say(f"## Shipments: {args.shipments:,} through the outbox, 20 ms latency, concurrency {args.concurrency}")
            for processes in _process_counts(args):
                s = bench_push(args.shipments, args.concurrency, tmp, processes)
                figures[f"push_{processes}"] = s
                say(
                    f"  {processes} process(es): {s['shipments']:,} shipments, {s['all_requests']:,} requests"
                    f" ({s['requests']:,} updates, the rest order reads) in {s['seconds']:.2f} s; ideal"
                    f" {s['ideal_seconds']:.2f} s; {s['over_ideal']}x ideal ({s['over_updates_ideal']}x the updates"
                    f" alone); pushed {s['pushed']:,}, failed {s['failed']}, duplicates {s['duplicates']},"
                    f" not shipped {s['not_shipped']}"
                    f"  [{verdict((s['over_ideal'] or 99) <= TARGETS['over_ideal'] and not s['duplicates'])}"
                    " <= 1.5x, zero duplicates]"
                )
            say("")
        if "defaults" in only:
            n = args.default_orders
            say(f"## Default settings: a first sync of {n:,} orders, auto-accept on, 20 ms latency per request")
            d = bench_defaults(n, tmp)
            figures["defaults"] = d
            say(
                f"  {d['fetched']:,} orders, {d['accepted']:,} accepted, {d['requests']:,} requests in"
                f" {d['seconds']:.2f} s; ideal {d['ideal_seconds']:.2f} s"
                f" (accepts {d['accept_concurrency']} at a time); {d['over_ideal']}x ideal;"
                f" host CPU {d['cpu_seconds']:.2f} s = {d['cpu_us_per_order']} µs per order"
            )
            say("")
    say(f"total wall time {time.perf_counter() - wall:.0f} s")
    if args.json_out:
        import json

        args.json_out.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    if args.markdown:
        args.markdown.write_text("```\n" + "\n".join(lines) + "\n```\n", encoding="utf-8")
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    raise SystemExit(main())

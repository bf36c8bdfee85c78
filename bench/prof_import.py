"""Profile one import (or one push) under pyinstrument: where the time of the pipeline goes.

    .venv/bin/python bench/prof_import.py [--orders 10000] [--push 0] [--interval 0.001] [--plain]

The sandbox runs in another process (its CPU is not in the profile). Needs
the ``bench`` extra (``pip install -e '.[bench]'``). pyinstrument follows the
host only; ``--plain`` runs the scenario without it, for py-spy to see the
host, its map worker and the sandbox apart (``bench/pyspy_top.py``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenarios import ALL_SITES, import_orders, push_shipments, sandbox_process


def main() -> int:
    """Run the profiled scenario and print pyinstrument's text report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=10_000)
    p.add_argument("--push", type=int, default=0, help="profile pushing this many shipments instead")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--interval", type=float, default=0.001)
    p.add_argument("--show-all", action="store_true")
    p.add_argument("--plain", action="store_true", help="no pyinstrument: for an outside profiler such as py-spy")
    args = p.parse_args()

    orders = int(args.push / 0.6) + 100 if args.push else args.orders
    with sandbox_process(orders=orders) as sb, tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp:
        db = Path(tmp) / "prof.sqlite3"

        def scenario() -> dict[str, object]:
            if args.push:
                return push_shipments(sb["url"], sb["partner_ids"][0], args.push, args.concurrency, 20.0, db)
            return import_orders(sb["url"], sb["partner_ids"][0], ALL_SITES, db)

        if args.plain:
            print(scenario())
            return 0
        from pyinstrument import Profiler

        profiler = Profiler(interval=args.interval)
        with profiler:
            result = scenario()
    print(result)
    print(profiler.output_text(unicode=False, color=False, show_all=args.show_all))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Two checkouts side by side in one run: the same benchmarks under each, alternating.

    .venv/bin/python bench/compare.py --before /path/to/old/.venv/bin/python [--rounds 2] [--only import,push,defaults]

Each interpreter runs ``bench/run.py`` of this checkout (its scenarios work
on older checkouts too) with its own installed ``connector_core``; rounds
alternate before/after so that the machine's drift falls on both alike. The
table gives each figure per round and the after/before ratio of the medians.
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

BENCH = Path(__file__).resolve().parent

FIGURES = {
    "import": [
        ("import orders/s", lambda r: r["pipeline"]["orders_per_s"]),
        ("import pipeline/floor (files)", lambda r: r["pipeline_over_floor_file"]),
        ("import host CPU s", lambda r: r["pipeline"]["main_cpu_seconds"]),
    ],
    "push_1": [
        ("push 1 process x ideal", lambda r: r["over_ideal"]),
        ("push 1 process s", lambda r: r["seconds"]),
        ("push 1 process CPU s", lambda r: r["cpu_seconds"]),
    ],
    "defaults": [
        ("default sync x ideal", lambda r: r["over_ideal"]),
        ("default sync host CPU µs/order", lambda r: r["cpu_us_per_order"]),
        ("default sync accepted", lambda r: r["accepted"]),
    ],
}


def run_once(python: str, only: str, extra: list[str]) -> dict[str, Any]:
    """One ``bench/run.py`` under ``python``; its figures."""
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        out = Path(tmp) / "figures.json"
        cmd = [python, str(BENCH / "run.py"), "--only", only, "--processes", "1", "--json", str(out), *extra]
        subprocess.run(cmd, check=True)
        figures: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, help="python of the older checkout's environment")
    p.add_argument("--after", default=sys.executable, help="python of this checkout's environment")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--only", default="import,push,defaults")
    args, extra = p.parse_known_args(argv)
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for n in range(args.rounds):
        order = ("before", "after") if n % 2 == 0 else ("after", "before")
        for side in order:
            print(f"# round {n + 1}: {side}", flush=True)
            runs[side].append(run_once(getattr(args, side), args.only, extra))
    print()
    print("| figure | before (per round) | after (per round) | after / before (medians) |")
    print("|---|---|---|---|")
    for key, figures in FIGURES.items():
        for label, get in figures:
            try:
                before = [float(get(r[key])) for r in runs["before"]]
                after = [float(get(r[key])) for r in runs["after"]]
            except (KeyError, TypeError):
                continue
            ratio = statistics.median(after) / statistics.median(before) if statistics.median(before) else float("nan")
            shown = " | ".join(", ".join(f"{v:g}" for v in side) for side in (before, after))
            print(f"| {label} | {shown} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

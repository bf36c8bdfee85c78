"""Summarise a py-spy raw profile per process: the functions with most samples, inclusive and self.

    py-spy record --subprocesses --format raw -o prof.txt -- \\
        .venv/bin/python bench/prof_import.py --plain --orders 30000
    .venv/bin/python bench/pyspy_top.py prof.txt [--top 25]

Each line of py-spy's raw output is one stack (frames joined by ``;``, the
outermost first) and its sample count. With ``--subprocesses`` the frames
include ``process N:"command"`` markers; a stack is counted for the innermost
process it names, so the host, its map worker and the sandbox come out apart.
Line numbers are dropped, so a function's samples add up across its lines.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def summarise(lines: list[str]) -> dict[str, tuple[int, Counter[str], Counter[str]]]:
    """Per process: total samples, inclusive samples per function, self samples per function."""
    totals: Counter[str] = Counter()
    inclusive: defaultdict[str, Counter[str]] = defaultdict(Counter)
    own: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        marks = [i for i, frame in enumerate(frames) if frame.startswith("process ")]
        start = marks[-1] if marks else -1
        process = frames[start][:70] if marks else "(one process)"
        functions = [_LINE.sub(")", frame) for frame in frames[start + 1 :]]
        if not functions:
            continue
        samples = int(count)
        totals[process] += samples
        for function in set(functions):
            inclusive[process][function] += samples
        own[process][functions[-1]] += samples
    return {p: (totals[p], inclusive[p], own[p]) for p in totals}


def main() -> int:
    """Print the summary of one raw profile."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--min-samples", type=int, default=100, help="skip processes with fewer samples")
    args = p.parse_args()
    summary = summarise(args.profile.read_text(encoding="utf-8", errors="replace").splitlines())
    for process, (total, inclusive, own) in sorted(summary.items(), key=lambda kv: -kv[1][0]):
        if total < args.min_samples:
            continue
        print(f"== {process}: {total} samples")
        for title, counter in (("inclusive", inclusive), ("self", own)):
            print(f"  -- {title}")
            for function, samples in counter.most_common(args.top):
                print(f"  {samples / total * 100:5.1f}%  {function}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

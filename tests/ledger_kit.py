"""Processes racing for the quota ledger of one order book (SQLite file or PostgreSQL URL).

Each racer opens the book itself, waits for a start file (so all of them
take requests in the same moment), tries ``attempts`` times to take a request
of one (marketplace, partner) and prints how many it was given.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

RACER = """
import sys, time
from pathlib import Path
from connector_core.db import open_book
target, start = sys.argv[1], Path(sys.argv[2])
attempts, limit, now = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
book = open_book(target)
(start.parent / f"ready-{sys.argv[6]}").touch()
deadline = time.monotonic() + 60
while not start.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
given = sum(
    book.take_request("spartoo", "racers", limit=limit, window=3600, aligned=True, now=now) for _ in range(attempts)
)
book.close()
print(given)
"""


def race(target: str, folder: Path, *, processes: int, attempts: int, limit: int, now: float) -> list[int]:
    """Start ``processes`` racers on the book at ``target``; the requests each was given."""
    from connector_core.db import open_book

    open_book(target).close()  # the book's tables exist before the race
    start = folder / "start"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, target, str(start), str(attempts), str(limit), str(now), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    deadline = time.monotonic() + 60  # every racer has its book open before any of them starts
    while len(list(folder.glob("ready-*"))) < processes and time.monotonic() < deadline:
        time.sleep(0.01)
    start.touch()
    given = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err[-2000:]
        given.append(int(out.strip()))
    return given

"""The client's CPU per request: bare httpx beside the host's RetryingClient, back to back and after a wait.

    .venv/bin/python bench/http_cost.py [--requests 2000] [--latency 0,20]

A Spartoo sandbox runs in its own process (its CPU is not counted here).
One thread sends ``xml_maj_orders.php`` requests one after another, first
with no latency, then with ``--latency`` ms on every answer, and reports the
user and system CPU of this process per request (``getrusage``) for a bare
``httpx.Client.post`` and for :meth:`RetryingClient.request
<connector_core.http.RetryingClient.request>` (retry loop, deadline, size
cap, quota gate). The difference between the two is what the host's client
adds. The same request after a wait costs more CPU than back to back: the
thread wakes up to cold caches. Prints one JSON object per (client, latency).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenarios import sandbox_process

from connector_core.http import RetryingClient


def measure(send: Callable[[], object], requests: int) -> dict[str, float]:
    """Wall, user and system time per request of ``requests`` calls of ``send`` (after 20 to warm up)."""
    for _ in range(20):
        send()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for _ in range(requests):
        send()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall_ms": round(wall / requests * 1e3, 3),
        "user_us": round((after.ru_utime - before.ru_utime) / requests * 1e6, 1),
        "sys_us": round((after.ru_stime - before.ru_stime) / requests * 1e6, 1),
    }


def at_latency(latency: float, requests: int) -> list[dict[str, object]]:
    """Both clients against one sandbox answering after ``latency`` ms."""
    out: list[dict[str, object]] = []
    with sandbox_process(orders=50, latency_ms=latency, sites=("com",)) as sb:
        url = f"{sb['url']}/com/mp/xml_maj_orders.php"
        form = {"partenaire": sb["partner_ids"][0], "oID": "1", "statut": "2"}  # answered with a -11 envelope
        with httpx.Client() as bare, RetryingClient() as ours:
            clients: dict[str, Callable[[], object]] = {
                "httpx.Client.post": lambda: bare.post(url, data=form).content,
                "RetryingClient.request": lambda: ours.request("POST", url, data=form, max_bytes=65536).content,
            }
            for name, send in clients.items():
                out.append({"client": name, "latency_ms": latency, "requests": requests, **measure(send, requests)})
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure each client at each latency; print the figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000, help="requests per measurement (default 2000)")
    p.add_argument("--latency", default="0,20", help="comma-separated sandbox latencies in ms (default 0,20)")
    args = p.parse_args(argv)
    for latency in (float(x) for x in args.latency.split(",")):
        # with a latency, fewer requests (about 10 s of waiting each): the CPU per request is what is read
        count = args.requests if latency == 0 else max(30, min(args.requests, int(10_000 / latency)))
        for figures in at_latency(latency, count):
            print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

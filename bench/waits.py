"""Where an import through a map worker waits, and how many pages the host maps itself.

    .venv/bin/python bench/waits.py [--orders 50000] [--syncs 3]

One sandbox of ``--orders`` orders (its XML kept once rendered, as in
``bench/run.py``); ``--syncs`` full first syncs of one store into fresh books,
one after the other in this process. The first renders the sandbox's orders
and is slower; the later ones are the steady figures. For each sync it
prints, in seconds:

* the wall time, and the CPU of the host's syncing thread and of the worker's
  mapping thread;
* ``rows``: the host's wall time in ``MapWorkers.receive`` beyond its CPU
  there, i.e. how long it waited for a worker's rows;
* ``pages``: the worker's wait for its next page;
* ``http``: the host's wait for the sandbox's bytes;
* how many pages the host mapped itself (its workers were behind);
* and the CPU the host's cyclic garbage collector took, for its young
  generations and for its full passes (generation 2), with their counts.

The timers are wrapped around those functions from outside (nothing in
``connector_core`` measures itself); the worker prints its own figures when
its pipe closes. Works on older checkouts too: run it with another
checkout's interpreter for a before/after.
"""

from __future__ import annotations

import argparse
import gc
import os
import queue
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpcore._backends.sync as httpcore_sync
from scenarios import ALL_SITES, import_orders, sandbox_process

import connector_core.sync.pipeline as pipeline_module
import connector_core.sync.workers as workers_module

HOST = os.getpid()
waits: Counter[str] = Counter()


def _waiting(name: str, fn: Any) -> Any:
    """``fn`` with its wall time beyond its thread's CPU added to ``waits[name]`` (in the host only)."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            if os.getpid() == HOST:
                waits[name] += (time.perf_counter() - wall) - (time.thread_time() - cpu)

    return timed


class _PageQueue(queue.SimpleQueue):  # type: ignore[type-arg]
    """The worker's queue of pages read: its main thread's waits in ``get`` are counted."""

    waited = 0.0

    def get(self, *args: Any, **kwargs: Any) -> Any:
        if os.getpid() == HOST or threading.current_thread() is not threading.main_thread():
            return super().get(*args, **kwargs)
        start = time.perf_counter()
        try:
            return super().get(*args, **kwargs)
        finally:
            _PageQueue.waited += time.perf_counter() - start


_gc_started = [0.0]


def _collecting(phase: str, info: dict[str, Any]) -> None:
    """A ``gc.callbacks`` entry: the host's collections, their CPU by generation (young or full)."""
    if os.getpid() != HOST or threading.current_thread() is not threading.main_thread():
        return
    if phase == "start":
        _gc_started[0] = time.thread_time()
        return
    kind = "full" if info["generation"] == 2 else "young"
    waits[f"gc {kind}"] += time.thread_time() - _gc_started[0]
    waits[f"gc {kind} passes"] += 1


def _instrument() -> None:
    gc.callbacks.append(_collecting)
    workers_module.MapWorkers.receive = _waiting("rows", workers_module.MapWorkers.receive)  # type: ignore[method-assign]
    httpcore_sync.SyncStream.read = _waiting("http", httpcore_sync.SyncStream.read)  # type: ignore[method-assign]
    workers_module.queue = type("queue", (), {"SimpleQueue": _PageQueue})  # type: ignore[assignment]
    real_map_page = pipeline_module.Pipeline.map_page

    def map_page(self: Any, *args: Any, **kwargs: Any) -> Any:
        if os.getpid() == HOST:
            waits["host pages"] += 1
        return real_map_page(self, *args, **kwargs)

    pipeline_module.Pipeline.map_page = map_page  # type: ignore[method-assign]
    real_close = workers_module._Sender.close

    def close(self: Any) -> None:
        if os.getpid() != HOST:  # the worker, at the end of its pipe
            print(f"  worker: CPU {time.thread_time():.2f}, waited for pages {_PageQueue.waited:.2f}", flush=True)
        real_close(self)

    workers_module._Sender.close = close  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    """Run the syncs and print each one's figures (the timers stay in place: run it as a script)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=50_000)
    p.add_argument("--syncs", type=int, default=3)
    args = p.parse_args(argv)
    _instrument()
    with sandbox_process(orders=args.orders) as sb, tempfile.TemporaryDirectory(prefix="bench-waits-") as tmp:
        for n in range(args.syncs):
            waits.clear()
            cpu = time.thread_time()
            result = import_orders(sb["url"], sb["partner_ids"][0], ALL_SITES, Path(tmp) / f"{n}.sqlite3")
            print(
                f"sync {n + 1}: {result['fetched']:,} orders in {result['seconds']:.2f} s; host CPU "
                f"{time.thread_time() - cpu:.2f}; host waited for rows {waits['rows']:.2f}, for HTTP "
                f"{waits['http']:.2f}; pages mapped by the host {waits['host pages']}; host collector "
                f"{waits['gc young']:.2f} in {waits['gc young passes']} young and {waits['gc full']:.2f} in "
                f"{waits['gc full passes']} full passes",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

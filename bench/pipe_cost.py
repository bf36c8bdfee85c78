"""What one page costs to cross a pipe: the map workers' socket pair against multiprocessing's Pipe.

    .venv/bin/python bench/pipe_cost.py [--size 2200000] [--rounds 30]

A child process echoes each message back, so each round is one send and one
read on both sides. For each pipe it prints the best and median CPU time of
the parent's write and of its read of the echo, in milliseconds. The
message size defaults to a page of about 300 orders' payloads as orjson
writes them (about 2.2 MB).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector_core.sync.workers import _pipe, _receive, _send


def _echo_socket(sock: Any, rounds: int) -> None:
    for _ in range(rounds):
        _send(sock, bytes(_receive(sock)))


def _echo_connection(conn: Connection, rounds: int) -> None:
    for _ in range(rounds):
        conn.send_bytes(conn.recv_bytes())


def _measure(send: Callable[[bytes], None], read: Callable[[], Any], data: bytes, rounds: int) -> dict[str, float]:
    """CPU ms of each write (on a thread, as the workers send) and of each read of the echo."""
    writes: list[float] = []
    reads: list[float] = []
    for _ in range(rounds):

        def write() -> None:
            start = time.thread_time()
            send(data)
            writes.append((time.thread_time() - start) * 1000)

        sender = threading.Thread(target=write)
        sender.start()
        sender.join()
        start = time.thread_time()
        echoed = read()
        reads.append((time.thread_time() - start) * 1000)
        if len(echoed) != len(data):
            raise SystemExit(f"echo of {len(echoed)} bytes instead of {len(data)}")
    return {
        "write_best": min(writes),
        "write_median": statistics.median(writes),
        "read_best": min(reads),
        "read_median": statistics.median(reads),
    }


def main(argv: list[str] | None = None) -> int:
    """Run both pipes and print the figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=2_200_000, help="message size in bytes")
    p.add_argument("--rounds", type=int, default=30)
    args = p.parse_args(argv)
    data = bytes(range(256)) * (args.size // 256) + b"x" * (args.size % 256)
    ctx = multiprocessing.get_context("fork")

    mine, theirs = _pipe()
    child = ctx.Process(target=_echo_socket, args=(theirs, args.rounds))
    child.start()
    theirs.close()
    sockets = _measure(lambda d: _send(mine, d), lambda: _receive(mine), data, args.rounds)
    child.join(30)
    mine.close()

    here, there = ctx.Pipe()
    child = ctx.Process(target=_echo_connection, args=(there, args.rounds))
    child.start()
    there.close()
    pipes = _measure(here.send_bytes, here.recv_bytes, data, args.rounds)
    child.join(30)
    here.close()

    print(f"message {args.size:,} bytes, {args.rounds} rounds; CPU ms of the parent (best / median)")
    for name, figures in (("socket pair (map workers)", sockets), ("multiprocessing.Pipe", pipes)):
        print(
            f"  {name:27s} write {figures['write_best']:.2f} / {figures['write_median']:.2f}"
            f"   read {figures['read_best']:.2f} / {figures['read_median']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

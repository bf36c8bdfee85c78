"""Shared helpers of the benchmark suite: data, timing, memory, child processes.

Each measurement that reports a peak RSS runs in its own child process
(``python bench/run.py --child KIND ...``) which prints one JSON line; the
parent reads it, so the sizes of two measurements never pollute each other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULT_PREFIX = "BENCH-RESULT "


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (``VmHWM``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by another process (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Timer:
    """Wall-clock and CPU time of a block: ``with Timer() as t: ...; t.wall``."""

    wall: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> Timer:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def spartoo_order_book(count: int, *, seed: int = 7, sites: Sequence[str] | None = None) -> Any:
    """The Spartoo sandbox's generator of ``count`` deterministic orders."""
    from connector_spartoo.sandbox.data import OrderBook

    return OrderBook(seed, count, sites=sites, anchor=1_717_200_000)


def spartoo_document(count: int, *, seed: int = 7, site: str | None = None) -> bytes:
    """A whole ``xml_export_orders`` answer with ``count`` sandbox orders (all sites, or one)."""
    book = spartoo_order_book(count, seed=seed, sites=[site] if site else None)
    return b"".join(document_chunks(book, range(count)))


def document_chunks(book: Any, indices: Sequence[int] | range, batch: int = 256) -> Iterator[bytes]:
    """The export document of ``indices`` of ``book``, as UTF-8 chunks."""
    yield b'<?xml version="1.0" encoding="UTF-8"?>\n<root><orders>'
    for start in range(0, len(indices), batch):
        yield "".join(book.order_xml(i) for i in indices[start : start + batch]).encode()
    yield b"</orders></root>\n"


def emit(result: dict[str, Any]) -> None:
    """Print a child's result as the one machine-readable line the parent looks for."""
    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def child_result(stdout: str) -> dict[str, Any] | None:
    """The last result line :func:`emit` printed in ``stdout``, or ``None`` if there is none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    return None


def run_child(kind: str, *args: str, env: dict[str, str] | None = None, timeout: float = 1800) -> dict[str, Any]:
    """Run ``bench/run.py --child kind args...`` in a fresh interpreter; return its result line."""
    cmd = [sys.executable, str(BENCH_DIR / "run.py"), "--child", kind, *args]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, check=False
    )
    result = child_result(proc.stdout)
    if result is not None:
        return result
    raise RuntimeError(f"benchmark child {kind} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


@contextmanager
def temp_db(directory: Path, name: str) -> Iterator[Path]:
    """A fresh SQLite path in ``directory`` (removed with its WAL files afterwards)."""
    path = directory / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    try:
        yield path
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

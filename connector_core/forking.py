"""Forked children of the host: map workers (:mod:`connector_core.sync.workers`) and the processes
that sync many stores or push a large outbox (:mod:`connector_core.sync.many`,
:mod:`connector_core.push.concurrent`).

Rules every fork here keeps:

* fork before any engine thread starts (a fork copies only the calling
  thread: a lock another thread holds would stay locked in the child), or
  map in process instead; the lease's renewal thread is started only after
  the forks it must not be copied into;
* fork while no transaction of the parent's order-book connection is open;
  each child opens connections of its own and never uses the inherited one;
* a child leaves Ctrl-C to its parent, which decides and stops it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from connector_core.errors import ConfigError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


WORKERS_ENV = "CONNECTOR_HOST_WORKERS"
MAX_WORKERS = 16
MAX_PROCESSES = 64


def check_workers(value: Any, *, source: str = "workers") -> int:
    """A map-worker count from the user: a whole number from 0 to :data:`MAX_WORKERS`."""
    try:
        count = int(str(value).strip())
    except ValueError:
        raise ConfigError(
            f"{source} must be a whole number of worker processes (0 maps in process), not {value!r}"
        ) from None
    if not 0 <= count <= MAX_WORKERS:
        raise ConfigError(f"{source} must be between 0 and {MAX_WORKERS}, not {count}")
    return count


def auto_workers(environ: Mapping[str, str] | None = None) -> int:
    """The default worker count: ``$CONNECTOR_HOST_WORKERS``, else 1 on a forking machine of 2+ cores, else 0."""
    env = os.environ if environ is None else environ
    if env.get(WORKERS_ENV, "").strip():
        return check_workers(env[WORKERS_ENV], source=f"${WORKERS_ENV}")
    return 1 if (os.cpu_count() or 1) >= 2 and can_fork() else 0


def check_processes(processes: int) -> int:
    """A process count from the caller: a whole number from 1 to :data:`MAX_PROCESSES`."""
    if isinstance(processes, bool) or not isinstance(processes, int) or not 1 <= processes <= MAX_PROCESSES:
        raise ConfigError(f"processes must be a whole number from 1 to {MAX_PROCESSES}, got {processes!r}")
    return processes


def check_concurrency(concurrency: int) -> int:
    """A thread count from the caller: a whole number from 1 up."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    return concurrency


def can_fork() -> bool:
    """Whether this platform starts processes by ``fork`` (Linux, the BSDs; not Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


def single_threaded() -> bool:
    """Whether this process runs no thread but the calling one (a fork then copies all of it)."""
    return threading.active_count() == 1


def start_forked(process: multiprocessing.process.BaseProcess) -> None:
    """Start a process of the ``fork`` context.

    Python 3.12+ warns on any fork of a threaded process. Every child the
    host forks runs its own threads and connections only, never a lock
    another thread of the parent holds, so that warning is silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        process.start()


def enter_forked_child(parent_ends: Iterable[Connection | socket.socket]) -> None:
    """First steps of a forked child: leave Ctrl-C to the parent, close the parent's ends of the pipes.

    Ctrl-C reaches the whole process group; the parent decides and stops its
    children. With the parent's ends closed, each pipe ends when the parent
    closes its side.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for end in parent_ends:
        end.close()


def shares(total: int, parts: int) -> list[int]:
    """``total`` threads split as evenly as possible among ``parts`` processes, at least one each."""
    return [max(1, total // parts + (1 if i < total % parts else 0)) for i in range(parts)]

"""Run code with network, file and process access refused, and say what it tried.

Written here because no library does this for a block of code in one
thread while other threads (the sandbox's server) keep working:
``pytest-socket`` patches ``socket.socket`` for the whole process and knows
no files. A :func:`sys.addaudithook` hook (PEP 578) sees every ``open``,
``socket.connect``, ``socket.getaddrinfo`` and ``subprocess.Popen`` of the
interpreter, wherever it comes from (``httpx``, ``urllib``, ``open()``,
``pathlib``); the hook is installed once and acts only in a thread that is
inside :func:`no_io`. Audit hooks cannot be removed, so it costs one
thread-local lookup per audited event afterwards. Files opened by the import
system (a module imported lazily inside a hook) are code, not data, and are
let through.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

#: Audit events that are I/O a pure function must not do.
BLOCKED = {
    "open": "opened a file",
    "socket.connect": "opened a network connection",
    "socket.getaddrinfo": "looked up a host name",
    "socket.sendto": "sent a datagram",
    "subprocess.Popen": "started a process",
    "os.system": "ran a shell command",
}

_state = threading.local()
_installed = False
_lock = threading.Lock()


class IOBlocked(OSError):
    """Raised inside :func:`no_io` where the code tried I/O."""


def _loading_code() -> bool:
    """Whether the import system (or linecache, for a traceback) is what opens a file: code, not data."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith("<frozen importlib") or name.endswith(("linecache.py", "zipimport.py")):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    attempts = getattr(_state, "attempts", None)
    if attempts is None or event not in BLOCKED:
        return
    if event == "open" and _loading_code():
        return
    what = f"{BLOCKED[event]} ({args[0]!r})" if event == "open" and args else BLOCKED[event]
    attempts.append(what)
    _state.attempts = None  # building the exception must not recurse into the hook
    try:
        error = IOBlocked(f"I/O refused while the contract kit checks a pure hook: {what}")
    finally:
        _state.attempts = attempts
    raise error


def refuse(what: str) -> None:
    """Record ``what`` as an attempt of the block in progress and raise :class:`IOBlocked`."""
    attempts = getattr(_state, "attempts", None)
    if attempts is not None:
        attempts.append(what)
    raise IOBlocked(f"I/O refused while the contract kit checks a pure hook: {what}")


class RefusingTransport(httpx.BaseTransport):
    """An httpx transport that refuses every request (a store's ``http`` for pure hooks: pooled
    connections send without a new ``socket.connect``, so the audit hook alone would not see them)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        refuse(f"sent an HTTP request ({request.method} {request.url.host})")
        raise AssertionError("unreachable")


@contextmanager
def no_io() -> Iterator[list[str]]:
    """Refuse I/O in this thread inside the block; yield the list of attempts (it fills as they happen)."""
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True
    attempts: list[str] = []
    previous = getattr(_state, "attempts", None)
    _state.attempts = attempts
    try:
        yield attempts
    finally:
        _state.attempts = previous

"""Map a sync's pages in worker processes while the host keeps fetching and storing.

Importing one large store is CPU work on both sides of the plugin: the
plugin's :func:`fetch_orders` reads and parses the marketplace's answer, and
the host validates, maps, status-maps, enriches and serialises every order
before SQLite stores it. On one interpreter those run one after the other;
with :class:`MapWorkers` the calling process fetches page N+1 and stores page
N-1 while a worker process maps page N, so a machine with two cores does both
at once.

* A worker is a ``fork`` of the syncing process, started when a sync meets
  its first large page (:data:`MIN_PAGE`), so it already holds the plugin
  host, the schemas and the store as the engine sees them. It never touches
  the order book's SQLite connection nor the store's HTTP client: the host's
  catalogue is handed to it as a snapshot taken when it starts.
* It runs :meth:`Pipeline.map_page <connector_core.sync.pipeline.Pipeline.map_page>`
  on each page it is sent: the same code as an in-process sync, so the rows,
  rejects and auto-accept decisions are the same. It is handed the pipeline,
  not an engine: it holds no order book and no HTTP client of its own.
* Pages are sent round-robin and their results read back in the order they
  were sent, at most :data:`IN_FLIGHT` pages per worker ahead, so each page is
  stored with its cursor in fetch order, as without workers. When every
  worker holds that many and the oldest page's rows have not begun to arrive
  (:attr:`MapWorkers.ready`), the sync maps its next page in process with
  :attr:`MapWorkers.pipeline` instead of waiting, and stores it in its turn
  (``connector_core.sync.runner``), so the host does not sit idle while its
  workers are the slower side.
* A worker that dies or fails hands its pages back: the sync maps them in
  process and goes on without workers. Nothing is lost.
* While workers run, what the syncing process held when they started
  (modules, schemas, the plugin host) is frozen out of the cyclic
  collector's sight (:func:`gc.freeze`), as each worker freezes what it
  inherited: a full collection then walks only what the sync itself made
  (``bench/waits.py`` reports the collector's CPU). It is unfrozen when
  the workers stop. Both sides also run a young collection only after
  :data:`YOUNG_THRESHOLD` net allocations instead of Python's 700: the
  objects of a page live until the page is sent or stored, so at 700 each
  was walked by a young pass and again by an older one while nearly none
  was garbage; at this threshold most are freed before any pass sees them.
* Each payload travels as the very bytes the order book's ``raw`` column
  stores (orjson, keys sorted). The worker decodes it to map it and hashes
  those bytes; when the plugin's order keeps the payload as its ``raw``, the
  row comes back without that column and the host fills it in from what it
  sent. The payload is encoded once and never travels back. A worker's
  plugin therefore sees each payload's keys in sorted order: a JSON object's
  members have no order, and the contract kit's ``pure_mapping`` check holds
  plugins to that (and to leaving the payload as it was given).

Why a pool of our own rather than :mod:`multiprocessing.pool` or
:mod:`concurrent.futures`: those pickle each task and its result through one
shared queue with a feeder thread; here each worker keeps at most
:data:`IN_FLIGHT` pages on a pipe of its own, results come back in the order
sent (a page is committed with its cursor in fetch order), payloads travel
as orjson bytes and rows as plain tuples, and a dead worker's pages are handed
back instead of failing the whole pool (measured in ``bench/RESULTS.md``,
round 3: the pipe's cost is 14% of the host's time per order).

Why a socket pair with a length prefix of our own rather than
:func:`multiprocessing.Pipe`: a page is megabytes, and ``Connection.recv_bytes``
reads it in pieces, each read allocating a buffer the size of what is left,
while ``send_bytes`` copies what is left after each partial write. Here a
message is sent with ``sendall`` and read with ``recv_into`` one buffer of
its full size (``bench/pipe_cost.py``, in ``bench/RESULTS.md`` round 8: a
2.2 MB page read in a median 0.5 ms of CPU instead of 2.5 ms).

``Engine(workers=N)``, ``connector-host sync --workers N`` or
``$CONNECTOR_HOST_WORKERS`` choose the number; ``0`` maps in process. The
default, :func:`connector_core.forking.auto_workers`, is one worker on a machine with two cores or
more that can ``fork``, when the syncing process runs no other thread (a
fork copies only the calling thread).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import pickle
import queue
import signal
import socket
import struct
import sys
import threading
import traceback
from collections import deque
from multiprocessing.connection import wait
from typing import Any

import orjson

from connector_core.db.rows import OrderRow
from connector_core.errors import ConfigError, WorkerFailed
from connector_core.forking import can_fork, enter_forked_child, start_forked
from connector_core.models import RawOrder
from connector_core.sync.pipeline import MappedPage, Pipeline

log = logging.getLogger("connector_core.sync.workers")

Sent = list[tuple[str, str | None, bytes | dict[str, Any]]]
"""A page as sent to a worker: each raw order's key, site and payload (see :func:`_encoded`)."""

MIN_PAGE = 200
"""A sync starts its workers at the first page of at least this many raw orders."""
IN_FLIGHT = 4
"""Pages handed to one worker and not yet read back."""
RECEIVE_TIMEOUT = 600.0
"""Seconds to wait for a worker's page before mapping it in process (a page takes a fraction of a second)."""
SWITCH_INTERVAL = 0.001
"""GIL switch interval (seconds) of the host while it has workers, and of the workers."""
YOUNG_THRESHOLD = 20_000
"""The collector's first threshold (net allocations between young passes) of the host while it has workers,
and of the workers (Python's default is 700). ``bench/waits.py``, 100,000 orders: the host's collector took
0.29 s at 700 and 0.01-0.02 s at this threshold (bench/RESULTS.md, round 13)."""
PIPE_BUFFER = 4 * 1024 * 1024
"""Socket buffer size asked for on each end of a worker's pipe (a page of rows is about 3 MB)."""
_LENGTH = struct.Struct("!Q")  # each message on a worker's pipe: its length, then its bytes


def _pipe(size: int = PIPE_BUFFER) -> tuple[socket.socket, socket.socket]:
    """A connected pair of sockets with buffers of ``size`` bytes asked for on each end (the kernel may give less).

    A page travels in a few large writes instead of dozens of 200 KB ones,
    each of which would wait for the other process to read.
    """
    ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for end in ends:
        with contextlib.suppress(OSError):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return ends


def _send(sock: socket.socket, data: bytes) -> None:
    """Write one message: its length, then its bytes (``sendall`` writes them without copying what is left)."""
    sock.sendall(_LENGTH.pack(len(data)))
    if data:  # an empty message is its length alone: the reader may already be gone when it has read it
        sock.sendall(data)


def _read_exact(sock: socket.socket, size: int) -> bytearray:
    """Exactly ``size`` bytes, read into one buffer; :class:`EOFError` if the other end closes first."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    done = 0
    while done < size:
        got = sock.recv_into(view[done:])
        if not got:
            raise EOFError("the other end of the pipe closed mid-message")
        done += got
    return buffer


def _receive(sock: socket.socket) -> bytearray:
    """Read one message written by :func:`_send`."""
    (size,) = _LENGTH.unpack(_read_exact(sock, _LENGTH.size))
    return _read_exact(sock, size)


class _Sender:
    """Sends messages on a pipe from a thread of its own, so the sending thread never waits for the reader.

    Both ends of a worker's pipe send large messages (a page of payloads, a
    page of rows); a send blocks once the pipe's buffer is full, until the
    other process reads. With the sends on their own threads, each process
    goes on with its next page meanwhile.
    """

    def __init__(self, conn: socket.socket, name: str) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                _send(self._conn, data)
            except (OSError, ValueError) as exc:  # the other end is gone
                self.error = exc
                return

    def send(self, data: bytes) -> None:
        """Queue one message."""
        self._queue.put(data)

    def close(self) -> None:
        """Send what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()


class MapWorkers:
    """Worker processes mapping one store's pages for a sync (see the module docstring).

    ``pipeline`` is what each worker runs (:meth:`Pipeline.map_page`), with
    its catalogue already a snapshot: a worker reads no order book.
    """

    def __init__(self, pipeline: Pipeline, count: int) -> None:
        if count < 1:
            raise ValueError("MapWorkers needs at least one worker")
        if not can_fork():
            raise ConfigError("worker processes need a platform that can fork; use workers=0")
        context = multiprocessing.get_context("fork")
        self.pipeline = pipeline
        """What the workers run: the caller maps a page with it when they are behind."""
        self._workers: list[tuple[multiprocessing.process.BaseProcess, socket.socket]] = []
        self._senders: list[_Sender] = []
        self._switch_interval: float | None = None
        self._threshold: tuple[int, ...] = ()  # the collector's thresholds before _collect_less, given back by close
        self._sent: deque[tuple[int, socket.socket, Sent]] = deque()
        self._next = 0
        try:
            for n in range(count):
                mine, theirs = _pipe()
                process = context.Process(
                    target=_serve,
                    args=(theirs, [mine, *(c for _, c in self._workers)], pipeline),
                    name=f"connector-host map worker {n + 1} ({pipeline.store.name})",
                    daemon=True,
                )
                start_forked(process)
                theirs.close()
                mine.settimeout(RECEIVE_TIMEOUT)  # a message the worker stops writing halfway is no endless wait
                self._workers.append((process, mine))
                self._senders.append(_Sender(mine, f"connector-host map sender {n + 1}"))
        except BaseException:
            self.close()
            raise
        # the senders need the GIL only briefly between chunks of a page: while workers run, this
        # process hands the GIL over within SWITCH_INTERVAL rather than Python's default 5 ms
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(SWITCH_INTERVAL, self._switch_interval))
        # what this process holds now (modules, schemas, the plugin host) outlives the sync: while the
        # workers run, the collector's full passes skip it and walk only what the sync makes
        self._threshold = _collect_less()
        log.debug("%s: %d map worker(s) started", pipeline.store.name, count)

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers (for diagnostics and benchmarks)."""
        return [p.pid for p, _ in self._workers if p.pid is not None]

    @property
    def in_flight(self) -> int:
        """Pages sent and not yet read back."""
        return len(self._sent)

    @property
    def ready(self) -> bool:
        """Whether the oldest page's rows have begun to arrive, or its worker is gone (:meth:`receive` won't wait)."""
        return bool(self._sent) and bool(wait([self._sent[0][1]], 0))

    @property
    def full(self) -> bool:
        """Whether every worker already has :data:`IN_FLIGHT` pages."""
        return len(self._sent) >= IN_FLIGHT * len(self._workers)

    def submit(self, raws: list[RawOrder]) -> Sent:
        """Send one page's raw orders to the next worker; raise :class:`WorkerFailed` if it is gone.

        Returns what was sent: :func:`raws_of` gives the raw orders back from
        it (to map the page in process if the worker fails).
        """
        index = self._next
        self._next = (index + 1) % len(self._workers)
        conn = self._workers[index][1]
        sent: Sent = [(r.order_key, r.site, _encoded(r.payload)) for r in raws]
        try:
            data = pickle.dumps(sent, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a payload that cannot be sent: the engine maps this page in process
            raise WorkerFailed(f"a payload of this page cannot be sent to a worker: {type(exc).__name__}") from None
        sender = self._senders[index]
        if sender.error is not None:
            raise WorkerFailed(f"map worker {index + 1} is gone ({type(sender.error).__name__})")
        sender.send(data)
        self._sent.append((index, conn, sent))
        return sent

    def receive(self) -> MappedPage:
        """The result of the oldest page sent; :class:`WorkerFailed` if its worker failed or died."""
        index, conn, sent = self._sent.popleft()
        try:
            if not wait([conn], RECEIVE_TIMEOUT):
                raise WorkerFailed(f"map worker {index + 1} did not answer within {RECEIVE_TIMEOUT:.0f} s")
            data = _receive(conn)
        except TimeoutError:
            raise WorkerFailed(f"map worker {index + 1} stopped sending its page for {RECEIVE_TIMEOUT:.0f} s") from None
        except (EOFError, OSError) as exc:
            raise WorkerFailed(f"map worker {index + 1} died ({type(exc).__name__})") from None
        kind, value = pickle.loads(data)
        if kind != "page":
            raise WorkerFailed(f"map worker {index + 1} failed: {value}")
        return _unpack(value, sent)

    def close(self) -> None:
        """Stop the workers (each finishes the page it is on and exits)."""
        for process, _ in self._workers:
            if process.is_alive() and self._sent:
                process.terminate()  # pages still queued: their results are not wanted
        for sender in self._senders:
            sender.close()
        self._senders = []
        for _, conn in self._workers:
            with contextlib.suppress(OSError):
                conn.close()  # the worker's next read sees the end of its pipe and it exits
        for process, _ in self._workers:
            process.join(5)
            if process.is_alive():
                process.terminate()
                process.join(5)
        self._workers = []
        self._sent.clear()
        if self._switch_interval is not None:  # set, with the freeze, once every worker had started
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
            gc.unfreeze()  # back in the collector's sight: garbage among them is collected again
            gc.set_threshold(*self._threshold)


def _collect_less() -> tuple[int, ...]:
    """Freeze what the process holds now and run young passes every :data:`YOUNG_THRESHOLD` allocations.

    Returns the thresholds it replaced. The host does this while it has
    workers (:meth:`MapWorkers.close` undoes both), each worker for its life.
    """
    gc.freeze()
    before = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, before[0]), *before[1:])
    return before


def _encoded(payload: dict[str, Any]) -> bytes | dict[str, Any]:
    """A payload as it travels: the raw column's bytes (orjson, keys sorted), or the payload itself.

    orjson writes what :func:`~connector_core.db.rows.dump_bytes` writes, so
    the worker stores these very bytes; a payload orjson refuses (an integer
    beyond 64 bits) travels as itself, pickled, and is encoded in the worker.
    """
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return payload


def _pack(page: MappedPage) -> tuple[Any, ...]:
    # rows as plain tuples: pickle then writes no class reference nor calls __getnewargs__ per row
    return tuple(map(tuple, page.rows)), page.rejects, page.accept, page.accept_errors, page.raw_from


_RAW = OrderRow._fields.index("raw")


def _unpack(value: tuple[Any, ...], sent: Sent) -> MappedPage:
    rows, rejects, accept, accept_errors, raw_from = value
    if raw_from is None:
        full = tuple(map(OrderRow._make, rows))
    else:  # the raw column of these rows is what this process sent: filled in here, never sent back
        full = tuple(
            OrderRow._make(row)
            if source < 0
            else OrderRow._make((*row[:_RAW], _raw_column(sent[source][2]), *row[_RAW + 1 :]))
            for row, source in zip(rows, raw_from, strict=True)
        )
    return MappedPage(rows=full, rejects=rejects, accept=accept, accept_errors=accept_errors)


def _raw_column(encoded: bytes | dict[str, Any]) -> bytes:
    assert isinstance(encoded, bytes), "a row's raw is only left out when its payload travelled encoded"
    return encoded


def raws_of(sent: Sent) -> list[RawOrder]:
    """The raw orders of a page sent to a worker (what :meth:`MapWorkers.submit` returned)."""
    return [RawOrder(order_key=k, payload=orjson.loads(p) if isinstance(p, bytes) else p, site=s) for k, s, p in sent]


def _serve(conn: socket.socket, parent_ends: list[socket.socket], pipeline: Pipeline) -> None:
    """Worker body: map each page read from ``conn`` until the pipe ends."""
    enter_forked_child(parent_ends)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    pages: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()

    def read() -> None:
        # reads while the main thread maps and sends, so neither side ever blocks writing into a full pipe
        while True:
            try:
                pages.put(_receive(conn))
            except (EOFError, OSError):
                pages.put(None)
                return

    threading.Thread(target=read, name="map worker reader", daemon=True).start()
    sender = _Sender(conn, "map worker sender")
    # the reader and the sender need the GIL only briefly, between chunks of a page: hand it over
    # within SWITCH_INTERVAL rather than the default 5 ms, so the pipes keep flowing while mapping
    sys.setswitchinterval(SWITCH_INTERVAL)
    # what the fork inherited stays as it is for the worker's life: with it out of the collector's sight,
    # collections neither walk it nor write to its pages (each write would copy a page of the parent's)
    _collect_less()
    while True:
        data = pages.get()
        if data is None:
            sender.close()
            return
        try:
            sent: Sent = pickle.loads(data)
            encoded = [p if isinstance(p, bytes) else None for _, _, p in sent]
            mapped = pipeline.map_page(raws_of(sent), encoded=encoded)
            message: tuple[str, Any] = ("page", _pack(mapped))
            out = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            out = pickle.dumps(("error", detail), protocol=pickle.HIGHEST_PROTOCOL)
        if sender.error is not None:
            return
        sender.send(out)

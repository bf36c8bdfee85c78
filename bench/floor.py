"""The floor: parse an order export with lxml iterparse, one raw SQLite row per order.

No validation, no mapping, no JSON: the least work any import of the same
XML into SQLite must do. The import benchmark is judged by its ratio to it.
The SQLite file is opened like the order book (WAL, ``synchronous=NORMAL``)
and rows are inserted in batches, one transaction per batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
from lxml import etree

BATCH = 1000


@attrs.frozen
class FloorResult:
    """Orders stored, bytes parsed, and how long it took (wall seconds)."""

    orders: int
    bytes: int
    seconds: float

    @property
    def orders_per_s(self) -> float:
        """Throughput."""
        return self.orders / self.seconds if self.seconds else 0.0


class _ChunkReader:
    """A file-like ``read()`` over an iterable of byte chunks, for iterparse."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = memoryview(b"")
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (fewer at a chunk boundary); ``b""`` at the end."""
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self.bytes += len(chunk)
            self._buffer = memoryview(chunk)
        if size < 0 or size >= len(self._buffer):
            out, self._buffer = self._buffer, memoryview(b"")
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return bytes(out)


def open_db(path: Path) -> sqlite3.Connection:
    """A fresh floor database with one table of raw orders."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS raw_orders (orders_id TEXT PRIMARY KEY, xml BLOB NOT NULL)")
    return conn


def load(chunks: Iterable[bytes], conn: sqlite3.Connection) -> tuple[int, int]:
    """Parse one export document (as chunks) into ``raw_orders``; return (orders, bytes)."""
    reader = _ChunkReader(chunks)
    parser_options: dict[str, Any] = {"resolve_entities": False, "no_network": True, "load_dtd": False}
    rows: list[tuple[str, bytes]] = []
    count = 0
    for _event, elem in etree.iterparse(reader, events=("end",), tag="order", **parser_options):
        rows.append((elem.findtext("orders_id") or "", etree.tostring(elem)))
        elem.clear(keep_tail=False)
        parent = elem.getparent()
        while elem.getprevious() is not None and parent is not None:
            del parent[0]
        if len(rows) >= BATCH:
            count += _flush(conn, rows)
    count += _flush(conn, rows)
    return count, reader.bytes


def _flush(conn: sqlite3.Connection, rows: list[tuple[str, bytes]]) -> int:
    if not rows:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT OR REPLACE INTO raw_orders (orders_id, xml) VALUES (?, ?)", rows)
    conn.execute("COMMIT")
    n = len(rows)
    rows.clear()
    return n


def http_chunks(url: str, data: dict[str, str], *, chunk_size: int = 65536) -> Iterator[bytes]:
    """The body of one form POST (e.g. ``xml_export_orders.php``), streamed."""
    import httpx

    with httpx.Client(timeout=600) as client, client.stream("POST", url, data=data) as response:
        response.raise_for_status()
        yield from response.iter_bytes(chunk_size)


def run_floor(documents: Iterable[Iterable[bytes] | bytes], db_path: Path) -> FloorResult:
    """Load every document (bytes, or chunks e.g. from :func:`http_chunks`) into a fresh floor DB."""
    import time

    start = time.perf_counter()
    conn = open_db(db_path)
    orders = size = 0
    try:
        for doc in documents:
            chunks = [doc] if isinstance(doc, bytes) else doc
            n, b = load(chunks, conn)
            orders += n
            size += b
    finally:
        conn.close()
    return FloorResult(orders=orders, bytes=size, seconds=time.perf_counter() - start)

"""Hostile XML: entity bombs, external entities, oversize, deep nesting and binary junk are refused safely."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from connector_spartoo.xmlstream import OrderStream, parse_envelope
from reliability_kit import FAST, STORE, spartoo_host

from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.errors import ConnectorError, HostileInputError
from connector_core.models import RawReject

SECRET = "TOP-SECRET-7f3a9c1e-do-not-leak"
ORDER = "<order><orders_id>{oid}</orders_id><order_total>10.00</order_total></order>"


def billion_laughs() -> bytes:
    """The classic entity-expansion bomb (10 levels of 10x: 10^9 'lol's if expanded)."""
    lines = ['<?xml version="1.0"?>', "<!DOCTYPE root [", '<!ENTITY lol0 "lol">']
    for i in range(1, 10):
        lines.append(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">')
    lines.append("]>")
    lines.append(f"<root><orders>{ORDER.format(oid='&lol9;')}</orders></root>")
    return "\n".join(lines).encode()


def xxe(system_id: str) -> bytes:
    """A document whose order id is an external entity pointing at ``system_id``."""
    return (
        f'<?xml version="1.0"?><!DOCTYPE root [<!ENTITY xxe SYSTEM "{system_id}">]>'
        f"<root><orders>{ORDER.format(oid='&xxe;')}</orders></root>"
    ).encode()


def xxe_parameter(system_id: str) -> bytes:
    """An external parameter entity (loaded while the DTD is read, before any element)."""
    return (
        f'<?xml version="1.0"?><!DOCTYPE root [<!ENTITY % ext SYSTEM "{system_id}"> %ext;]>'
        f"<root><orders>{ORDER.format(oid='1')}</orders></root>"
    ).encode()


def deep(levels: int) -> bytes:
    """Junk nested ``levels`` deep inside an order."""
    return (
        b"<root><orders><order><orders_id>1</orders_id>" + b"<a>" * levels + b"x" + b"</a>" * levels
        + b"</order></orders></root>"
    )  # fmt: skip


BINARY_JUNK = bytes(range(256)) * 16


def big(orders: int) -> bytes:
    """A well-formed document of ``orders`` orders."""
    body = "".join(ORDER.format(oid=f"O{i:08d}") for i in range(orders))
    return f"<root><orders>{body}</orders></root>".encode()


def parse(doc: bytes, *, chunk: int = 4096, **kw: int) -> list[object]:
    """Everything the streaming parser yields for ``doc`` fed in chunks."""
    return list(OrderStream((doc[i : i + chunk] for i in range(0, len(doc), chunk)), site="com", **kw))


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A local file holding a secret that must never be read."""
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


class Hostile:
    """A loopback HTTP server that answers every ``*.php`` POST with ``document`` and logs every request."""

    def __init__(self) -> None:
        self.document = b"<root/>"
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.requests.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = outer.document if self.path.endswith(".php") else SECRET.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    try:
        yield server
    finally:
        server.close()


# -- the parser ------------------------------------------------------------------


def test_billion_laughs_is_refused() -> None:
    """An entity-expansion bomb is refused with HostileInputError (no expansion, whole or streamed)."""
    with pytest.raises(HostileInputError, match="DOCTYPE"):
        parse(billion_laughs())
    with pytest.raises(HostileInputError, match="DOCTYPE"):
        parse_envelope(billion_laughs())


def test_billion_laughs_keeps_memory_bounded(tmp_path: Path) -> None:
    """Parsing the bomb in a fresh process peaks far below what expanding it would take (~3 GB)."""
    doc = tmp_path / "bomb.xml"
    doc.write_bytes(billion_laughs())
    code = (
        "import resource, sys\n"
        "from connector_spartoo.xmlstream import OrderStream\n"
        "from connector_core.errors import HostileInputError\n"
        f"data = open({str(doc)!r}, 'rb').read()\n"
        "try:\n"
        "    list(OrderStream([data], site='com'))\n"
        "    outcome = 'parsed'\n"
        "except HostileInputError:\n"
        "    outcome = 'refused'\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so it would count the forking pytest process
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
        "print(outcome, int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    outcome, peak_kb = done.stdout.split()
    assert outcome == "refused"
    assert int(peak_kb) < 200 * 1024  # the interpreter and lxml alone; an expansion would need gigabytes


@pytest.mark.parametrize("make", [xxe, xxe_parameter], ids=["general-entity", "parameter-entity"])
def test_xxe_to_a_local_file_reads_nothing(make: object, secret_file: Path) -> None:
    """An external entity naming a local file is refused, and the file's content appears nowhere."""
    doc = make(secret_file.as_uri())  # type: ignore[operator]
    seen: list[str] = []
    for call in (lambda: parse(doc), lambda: parse_envelope(doc)):
        with pytest.raises(HostileInputError) as info:
            seen.append(repr(call()))
        seen.extend([str(info.value), repr(info.value), json.dumps(info.value.context())])
    assert SECRET not in "\n".join(seen)


@pytest.mark.parametrize("make", [xxe, xxe_parameter], ids=["general-entity", "parameter-entity"])
def test_xxe_to_a_url_makes_no_request(make: object, hostile: Hostile) -> None:
    """An external entity naming a URL is refused without any request to that URL."""
    doc = make(f"{hostile.url}/steal")  # type: ignore[operator]
    with pytest.raises(HostileInputError):
        parse(doc)
    with pytest.raises(HostileInputError):
        parse_envelope(doc)
    assert hostile.requests == []


def test_document_over_the_size_cap_is_refused() -> None:
    """A document larger than max_bytes is refused once the cap is passed, whatever it holds."""
    doc = big(2000)
    assert len(doc) > 100_000
    with pytest.raises(HostileInputError, match="100000-byte cap"):
        parse(doc, max_bytes=100_000)
    with pytest.raises(HostileInputError, match="cap"):
        parse_envelope(doc, max_bytes=100_000)
    assert len(parse(doc, max_bytes=len(doc))) == 2000  # at the cap exactly, it is read


def test_deep_nesting_is_refused() -> None:
    """Junk nested deeper than max_depth is refused with HostileInputError."""
    with pytest.raises(HostileInputError, match="deeper than 32"):
        parse(deep(5000))
    assert isinstance(parse(deep(20))[0], dict)  # ordinary depth is fine


def test_binary_junk_is_refused() -> None:
    """Binary data instead of XML is HostileInputError; junk after good orders becomes a RawReject with a reason."""
    with pytest.raises(HostileInputError, match="binary"):
        parse(BINARY_JUNK)
    items = parse(big(3)[: -len(b"</orders></root>")] + BINARY_JUNK)
    assert [type(i).__name__ for i in items] == ["dict", "dict", "dict", "RawReject"]
    reject = items[-1]
    assert isinstance(reject, RawReject) and "malformed XML" in reject.reason


# -- end to end: a store whose marketplace serves hostile documents -------------


def _sync(tmp_path: Path, url: str, **settings: object) -> tuple[ConnectorError, int, object]:
    db = tmp_path / "book.sqlite3"
    with OrderBook(db) as book:
        book.add_store(
            STORE,
            "spartoo",
            {"partner_id": "5A4DB0C0FFEE0001", "sites": ["com"], "base_url": f"{url}/{{site}}/mp/", **settings},
        )
        engine = Engine(spartoo_host(), book, http_policy=FAST)
        with pytest.raises(ConnectorError) as info:
            engine.sync(STORE)
        return info.value, book.count_orders(STORE), book.get_cursor(STORE)


@pytest.mark.parametrize(
    "document",
    ["bomb", "xxe-file", "xxe-url", "deep", "binary"],
)
def test_sync_against_a_hostile_server_refuses_and_stores_nothing(
    document: str, hostile: Hostile, secret_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """End to end over loopback HTTP: each hostile answer stops the sync with HostileInputError, nothing stored."""
    caplog.set_level(logging.DEBUG)
    hostile.document = {
        "bomb": billion_laughs(),
        "xxe-file": xxe(secret_file.as_uri()),
        "xxe-url": xxe(f"{hostile.url}/steal"),
        "deep": deep(5000),
        "binary": BINARY_JUNK,
    }[document]
    error, orders, cursor = _sync(tmp_path, hostile.url)
    assert isinstance(error, HostileInputError)
    assert (orders, cursor) == (0, None)
    assert all(r.endswith(".php") for r in hostile.requests)  # nothing fetched besides the answers themselves
    assert SECRET not in str(error) + caplog.text


def test_sync_refuses_an_answer_over_the_store_cap(hostile: Hostile, tmp_path: Path) -> None:
    """The store's max_document_mb caps every answer: a larger one stops the sync before it is all read."""
    hostile.document = big(5000)
    assert len(hostile.document) > 200_000
    error, orders, cursor = _sync(tmp_path, hostile.url, max_document_mb=0.1)
    assert isinstance(error, HostileInputError)
    assert "cap" in str(error)
    assert (orders, cursor) == (0, None)

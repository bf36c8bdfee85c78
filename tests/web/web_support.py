"""Helpers of the web app tests: the app under test with a logged-in client, an image server, a catalogue.

``web`` is the app over a fresh order book with one operator (``ana``), and a
Starlette test client; syncs and pushes run inside the request
(``inline_jobs``) so a test sees their result at once. ``synced`` adds a
Spartoo store connected to the sandbox and imports its orders, with a
product catalogue whose images are served by ``images`` (a real HTTP server
on loopback).
"""

from __future__ import annotations

import io
import re
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
from connector_spartoo.sandbox.server import SpartooSandbox
from PIL import Image
from starlette.testclient import TestClient

from connector_core import catalogue
from connector_core.db import OrderBook, open_book
from connector_core.engine import Engine
from connector_core.models import CatalogueEntry
from connector_core.plugins import PluginHost
from connector_core.web import records
from connector_core.web.app import WebConfig, create_app

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def png(colour: tuple[int, int, int] = (200, 40, 40), size: int = 32) -> bytes:
    """A small PNG of one colour."""
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="PNG")
    return out.getvalue()


class ImageServer:
    """Item pictures on loopback: ``/img/NAME.png`` a PNG, ``/big`` too large, ``/text`` no image,
    ``/hang`` never answers (until the server stops), anything else 404. Counts requests by path."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path.startswith("/img/"):
                    seed = zlib.crc32(self.path.encode())
                    body, kind = png((seed & 255, (seed >> 8) & 255, (seed >> 16) & 255)), "image/png"
                elif self.path == "/big":
                    body, kind = b"\0" * 3_000_000, "image/png"
                elif self.path == "/text":
                    body, kind = b"<html>not a picture</html>", "text/html"
                elif self.path == "/hang":
                    server.release.wait(30)
                    return
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ImageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@attrs.define
class Web:
    """The app under test, its client and helpers."""

    client: TestClient
    path: Path
    host: PluginHost

    def csrf(self) -> str:
        """The session's CSRF token, as a page renders it."""
        match = CSRF_RE.search(self.client.get("/connect").text)
        assert match is not None
        return match.group(1)

    def login(self, user: str = "ana", password: str = PASSWORD) -> Any:
        """Log in through the form."""
        page = self.client.get("/login")
        token = CSRF_RE.search(page.text)
        assert token is not None
        return self.client.post("/login", data={"username": user, "password": password, "csrf_token": token.group(1)})

    def connect_spartoo(self, settings: dict[str, Any], name: str = "sp", **fields: str) -> Any:
        """Submit the connect form of a Spartoo store reaching the sandbox ``settings`` name; the page it ends on."""
        form = {
            "store_name": name,
            "partner_id": settings["partner_id"],
            "sites": settings["sites"],
            "base_url": settings["base_url"],
            "timezone": "Europe/Paris",
            **fields,
        }
        return self.post("/connect/spartoo", form)

    def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """POST a form with the CSRF token."""
        return self.client.post(url, data={"csrf_token": self.csrf(), **(data or {})}, **kwargs)

    def book(self) -> OrderBook:
        """A second connection to the order book (close it)."""
        return open_book(self.path)  # type: ignore[return-value]


def make_web(path: Path | str, host: PluginHost, **config: Any) -> Iterator[Web]:
    """An app over ``path`` (a file, or a PostgreSQL URL) with the operator ``ana``."""
    with open_book(path) as book:
        records.add_user(book.conn, "ana", PASSWORD, replace=True)
    config.setdefault("image_allow_private", True)  # the sandbox serves its item images on loopback
    app = create_app(WebConfig(db=path, host_factory=lambda: host, inline_jobs=True, **config))
    with TestClient(app, follow_redirects=True) as client:
        yield Web(client=client, path=path, host=host)


def sandbox_skus(sandbox: SpartooSandbox, host: PluginHost, scratch: Path) -> list[str]:
    """The SKUs of the sandbox's orders, as the Spartoo plugin maps them (imported into a scratch book)."""
    with OrderBook(scratch) as book:
        book.add_store("scratch", "spartoo", sandbox.settings())
        Engine(host, book, workers=0).sync("scratch")
        lines = book.conn.execute("SELECT skus FROM orders WHERE skus IS NOT NULL")
        return sorted({sku for (skus,) in lines for sku in skus.split("\n")})


def add_catalogue(path: Path, skus: list[str], images: ImageServer) -> None:
    """A catalogue with a picture, a weight and a shelf for every SKU."""
    from connector_core.models import Weight

    entries = [
        CatalogueEntry(
            sku=sku,
            image_url=f"{images.url}/img/{n}.png",
            warehouse_location=f"A-{n:02d}-1",
            weight=Weight("0.5", "kg"),
        )
        for n, sku in enumerate(skus)
    ]
    with OrderBook(path) as book:
        catalogue.upsert_entries(book.conn, entries, source="test")

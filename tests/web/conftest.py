"""Fixtures for the web app tests: a Spartoo sandbox, a real order book file, the app, an image server.

``web`` is the app over a fresh order book with one operator (``ana``), and a
Starlette test client; syncs and pushes run inside the request
(``inline_jobs``) so a test sees their result at once. ``synced`` adds a
Spartoo store connected to the sandbox and imports its orders, with a
product catalogue whose images are served by ``images`` (a real HTTP server
on loopback).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from connector_spartoo.sandbox.server import SpartooSandbox
from web_support import ImageServer, Web, add_catalogue, make_web, sandbox_skus

from connector_core.plugins import PluginHost, get_plugin_manager


@pytest.fixture(scope="session")
def images() -> Iterator[ImageServer]:
    """The image server."""
    with ImageServer() as server:
        yield server


@pytest.fixture(scope="session")
def host() -> PluginHost:
    """The installed plugins (Spartoo, Acme Bazaar)."""
    return PluginHost(get_plugin_manager())


@pytest.fixture
def sandbox() -> Iterator[SpartooSandbox]:
    """A fresh Spartoo sandbox with 40 orders."""
    with SpartooSandbox(orders=40) as sb:
        yield sb


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """This test's order book file."""
    return tmp_path / "orders.sqlite3"


@pytest.fixture
def web(db_path: Path, host: PluginHost) -> Iterator[Web]:
    """The app over a fresh order book, logged out."""
    yield from make_web(db_path, host)


@pytest.fixture
def synced(web: Web, sandbox: SpartooSandbox, images: ImageServer, tmp_path: Path) -> Web:
    """Logged in, with the store ``sp`` connected to the sandbox and synced (catalogue with images first)."""
    add_catalogue(web.path, sandbox_skus(sandbox, web.host, tmp_path / "scratch.sqlite3"), images)
    web.login()
    page = web.connect_spartoo(sandbox.settings(), auto_accept="on")
    assert page.status_code == 200 and page.url.path == "/stores/sp/settings"
    sync = web.post("/stores/sp/sync", {"back": "/stores/sp"})
    assert "sync of sp:" in sync.text
    return web

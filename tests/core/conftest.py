"""Fixtures for the core tests: a fresh plugin manager per test, a real SQLite order book."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bazaar_plugin import TOKEN, Bazaar, host_of, make_order

from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.plugins import PluginHost


@pytest.fixture
def make_host() -> Callable[..., PluginHost]:
    """Build a host from a fresh plugin manager holding only the given plugins."""

    return host_of


@pytest.fixture
def bazaar() -> Bazaar:
    """A Bazaar marketplace serving five good orders."""
    return Bazaar(orders=[make_order(i) for i in range(1, 6)])


@pytest.fixture
def host(make_host: Callable[..., PluginHost], bazaar: Bazaar) -> PluginHost:
    """A host with the Bazaar plugin only."""
    return make_host(bazaar)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where this test's order book lives."""
    return tmp_path / "data" / "orders.sqlite3"


@pytest.fixture
def book(db_path: Path) -> Iterator[OrderBook]:
    """An order book on a real file, closed after the test."""
    with OrderBook(db_path) as b:
        yield b


@pytest.fixture
def engine(host: PluginHost, book: OrderBook) -> Engine:
    """An engine with one Bazaar store named ``shop``."""
    book.add_store("shop", "bazaar", {"token": TOKEN})
    return Engine(host, book)

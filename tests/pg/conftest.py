"""Fixtures for the PostgreSQL book: one throwaway server per session, a new database per test."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))  # the Bazaar test plugin

from bazaar_plugin import TOKEN, Bazaar, host_of, make_order
from pgcluster import cluster, new_database

from connector_core.db import open_book
from connector_core.db.postgres.book import PostgresBook
from connector_core.engine import Engine
from connector_core.plugins import PluginHost


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with cluster() as url:
        yield url


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A new empty database per test."""
    return new_database(pg_server)


@pytest.fixture
def book(pg_url: str) -> Iterator[PostgresBook]:
    """The storage contract tests of tests/core run on this book instead of the SQLite file."""
    b = open_book(pg_url)
    assert isinstance(b, PostgresBook)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def bazaar() -> Bazaar:
    """A Bazaar marketplace serving five good orders (as in tests/core)."""
    return Bazaar(orders=[make_order(i) for i in range(1, 6)])


@pytest.fixture
def make_host() -> Callable[..., PluginHost]:
    """Build a host from a fresh plugin manager holding only the given plugins (as in tests/core)."""

    return host_of


@pytest.fixture
def host(make_host: Callable[..., PluginHost], bazaar: Bazaar) -> PluginHost:
    return make_host(bazaar)


@pytest.fixture
def engine(host: PluginHost, book: PostgresBook) -> Engine:
    """An engine with one Bazaar store named ``shop`` on the PostgreSQL book."""
    book.add_store("shop", "bazaar", {"token": TOKEN})
    return Engine(host, book)

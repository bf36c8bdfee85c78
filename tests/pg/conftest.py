"""Fixtures for the PostgreSQL book: one throwaway server per session, a new database per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))  # the Bazaar test plugin

from pgcluster import cluster, new_database

from connector_core.db import open_book
from connector_core.db.postgres.book import PostgresBook


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

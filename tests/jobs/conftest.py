"""A throwaway PostgreSQL server for the job queue tests (or the one named by ``$CONNECTOR_HOST_TEST_PG``).

The cluster is the one :mod:`pgcluster` makes (``initdb`` in a temporary
folder, ``pg_ctl`` on a free loopback port, as the ``postgres`` user when
run as root). Each test gets its own database, so queues never leak between
tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from pgcluster import cluster, new_database


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's ``postgres`` database, up for the whole session (:mod:`pgcluster`)."""
    with cluster() as url:
        yield url


@pytest.fixture
def queue_url(pg_server: str) -> Iterator[str]:
    """A fresh database with procrastinate's schema applied: this test's job queue."""
    url = new_database(pg_server)
    name = url.rsplit("/", 1)[1]
    from connector_core.jobs import make_app

    app = make_app(url)
    with app.open():
        app.schema_manager.apply_schema()
    yield url
    with psycopg.connect(pg_server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""The order book on a PostgreSQL server (optional: ``pip install 'connector-core[postgres]'``).

:class:`~connector_core.db.postgres.book.PostgresBook` runs the same SQL as
the SQLite book through a thin adapter (:mod:`.connection`), overriding only
what differs between the two engines: migrations, leases (advisory locks),
claims (``FOR UPDATE SKIP LOCKED``) and the WAL tuning that PostgreSQL does
not need.
"""

"""What the sync and the push share: the plugin host, the order book, and how to reach a store.

:class:`Runtime` holds the plugin host, the order book and the policies of
one engine (HTTP retries and deadlines, leases, push attempts, map workers);
the sync (:mod:`connector_core.sync`) and the push
(:mod:`connector_core.push`) take one, and
:class:`~connector_core.engine.Engine` is a runtime with their entry points.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from connector_core import host_settings, quota
from connector_core.db.connection import default_db_path
from connector_core.db.storage import OrderStore
from connector_core.forking import check_workers
from connector_core.http import HttpPolicy, RetryingClient
from connector_core.plugins import PluginHost
from connector_core.secrets import register_settings
from connector_core.store_context import StoreContext


class Runtime:
    """The plugin host and order book of one engine, with its policies."""

    def __init__(
        self,
        host: PluginHost,
        book: OrderStore,
        *,
        max_push_attempts: int = 10,
        http_policy: HttpPolicy | None = None,
        lease_wait: float = 60.0,
        lease_ttl: float = 60.0,
        workers: int | None = None,
        accept_concurrency: int = 8,
    ) -> None:
        self.host = host
        self.book = book
        self.max_push_attempts = max_push_attempts
        self.http_policy = http_policy or HttpPolicy.from_environ()
        self.lease_wait = lease_wait
        self.lease_ttl = lease_ttl
        self.workers = None if workers is None else check_workers(workers)
        """Map worker processes per sync (:mod:`connector_core.sync.workers`); ``None``: the default."""
        self.accept_concurrency = accept_concurrency
        """Accepts in flight at once when a sync drains the accept outbox."""
        self.notice: Callable[[str], None] | None = None
        """Told why nothing moves (a retry and its wait, a deadline); the CLI shows it on a terminal."""
        self._host_settings: dict[tuple[str, str], host_settings.HostSettings] = {}

    def store_context(self, store_name: str) -> StoreContext:
        """Build the :class:`StoreContext` of a saved store (its secrets registered for redaction)."""
        record = self.book.get_store(store_name)
        info = self.host.info(record.marketplace)
        register_settings(info.settings_schema, record.settings)
        http = RetryingClient(self.http_policy)
        http.notice = None if self.notice is None else _prefixed(self.notice, record.name)
        http.gate = quota.ledger_for(self.host, self.book, record.marketplace, record.name, record.settings)
        return StoreContext(
            name=record.name,
            marketplace=record.marketplace,
            settings=dict(record.settings),
            status_map=dict(record.status_map),
            store_settings=dict(record.store_settings),
            http=http,
        )

    def host_settings(self, store: StoreContext) -> host_settings.HostSettings:
        """The store's host-side settings, validated once per settings document."""
        key = (store.name, json.dumps(store.store_settings, sort_keys=True, default=str))
        loaded = self._host_settings.get(key)
        if loaded is None:
            loaded = host_settings.load(store.store_settings, store=store.name)
            self._host_settings[key] = loaded
        return loaded

    def mail_outbox(self) -> Path:
        """Default folder of ``.eml`` files for stores without SMTP: next to the order book."""
        path = self.book.path
        if not isinstance(path, Path):  # a database server: the default data folder
            path = default_db_path()
        return path.parent / "mail-outbox"

    def own_copy(self) -> Runtime:
        """A copy of this runtime on a connection of its own to the same order book (close its ``book``)."""
        mine = copy.copy(self)
        mine.book = self.book.reopen()
        return mine


def _prefixed(notice: Callable[[str], None], store: str) -> Callable[[str], None]:
    return lambda line: notice(f"{store}: {line}")


@contextmanager
def per_thread(runtime: Runtime) -> Iterator[Callable[[], Runtime]]:
    """A getter of one :meth:`Runtime.own_copy` per calling thread; every copy's book is closed at the end."""
    local = threading.local()
    opened: list[OrderStore] = []
    lock = threading.Lock()

    def get() -> Runtime:
        mine: Runtime | None = getattr(local, "runtime", None)
        if mine is None:
            mine = runtime.own_copy()
            with lock:
                opened.append(mine.book)
            local.runtime = mine
        return mine

    try:
        yield get
    finally:
        for book in opened:
            book.close()

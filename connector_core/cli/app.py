"""What every command of one invocation shares: the plugin host, the order book and the engine."""

from __future__ import annotations

import importlib
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import click

from connector_core.cli.output import UserError
from connector_core.db import OrderStore, is_db_url, open_book
from connector_core.db.connection import default_db_path
from connector_core.engine import Engine
from connector_core.errors import ConfigError, ConnectorError
from connector_core.plugins import PluginHost, get_plugin_manager

EXTRA_ENV = "CONNECTOR_HOST_EXTRA"

HostFactory = Callable[[], PluginHost]


def extra_plugins(environ: dict[str, str] | None = None) -> list[object]:
    """Import the plugins named in ``CONNECTOR_HOST_EXTRA`` (``module`` or ``module:attribute``)."""
    raw = (environ if environ is not None else os.environ).get(EXTRA_ENV, "")
    plugins: list[object] = []
    for spec in filter(None, (s.strip() for s in raw.split(","))):
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
            plugins.append(getattr(module, attr) if attr else module)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{EXTRA_ENV}: cannot load plugin {spec!r}: {exc}") from None
    return plugins


def default_host() -> PluginHost:
    """The host of installed entry points plus ``CONNECTOR_HOST_EXTRA`` plugins."""
    return PluginHost(get_plugin_manager(plugins=extra_plugins()))


@attrs.define
class App:
    """State shared by the commands of one invocation: the plugin host and the order book."""

    host_factory: HostFactory = default_host
    db: str | None = None
    db_typed: bool = False
    """Whether ``db`` was typed as ``--db`` (then its folder must exist) rather than taken from the environment."""
    _host: PluginHost | None = None
    _book: OrderStore | None = None

    @property
    def host(self) -> PluginHost:
        """The plugin host (built on first use)."""
        if self._host is None:
            self._host = self.host_factory()
        return self._host

    @property
    def book(self) -> OrderStore:
        """The order book (opened on first use).

        A path typed as ``--db`` must be in a folder that exists: a mistyped
        path is refused rather than turned into a new, empty book. The
        default location (and ``$CONNECTOR_HOST_DB``'s) is created. A
        ``postgresql://`` URL opens the PostgreSQL book instead.
        """
        if self._book is None:
            if self.db is not None and self.db_typed and not is_db_url(self.db):
                folder = Path(self.db).expanduser().parent
                if not folder.is_dir():
                    raise ConfigError(
                        f"--db {self.db}: the folder {folder} does not exist; check the path, or create the"
                        f" folder first (mkdir -p {folder}) to start a new order book there"
                    )
            self._book = open_book(self.db)
        return self._book

    @property
    def engine(self) -> Engine:
        """An engine over the host and the book."""
        return Engine(self.host, self.book)

    def close(self) -> None:
        """Close the order book."""
        if self._book is not None:
            self._book.close()
            self._book = None


pass_app = click.make_pass_decorator(App)


class HostGroup(click.Group):
    """A click group that turns :class:`ConnectorError` into a one-line error."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConnectorError as err:
            raise UserError(err.message) from None


def check_store(app: App, store: str | None) -> str | None:
    """``store`` if it names a store of the book (or is ``None``); else the one-line "no store named" error."""
    if store is not None:
        app.book.get_store(store)
    return store


def store_names(app: App, store: str | None) -> list[str]:
    if store is not None:
        app.book.get_store(store)
        return [store]
    names = [s.name for s in app.book.list_stores()]
    if not names:
        raise ConfigError("no stores yet: add one with `connector-host stores add MARKETPLACE --name NAME`")
    return names


def resolve_order(app: App, key: str, store: str | None) -> tuple[str, str]:
    if store is not None:
        return store, key
    stores = app.book.find_order_stores(key)
    if not stores:
        raise ConfigError(f"no order {key!r} in the order book: check `orders list`, or run `sync`")
    if len(stores) > 1:
        raise ConfigError(f"order {key!r} exists in stores {', '.join(stores)}: pass --store")
    return stores[0], key


def _book_path(ctx: click.Context) -> Path:
    db = ctx.find_root().params.get("db")
    return Path(db).expanduser() if db else default_db_path()


def _server_store_names(url: str) -> list[str]:
    """The store names of a PostgreSQL book, read in one bounded query (nothing if it cannot be read)."""
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
            return [str(r[0]) for r in conn.execute("SELECT name FROM stores ORDER BY name")]
    except Exception:
        return []


def complete_stores(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of store names, read from the order book without creating or changing it."""
    db = ctx.find_root().params.get("db")
    if is_db_url(db):
        return [n for n in _server_store_names(str(db)) if n.startswith(incomplete)]
    path = _book_path(ctx)
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM stores ORDER BY name")]
        finally:
            conn.close()
    except sqlite3.Error:
        return []
    return [n for n in names if n.startswith(incomplete)]


def store_option(help: str = "Only this store.") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--store NAME``, with shell completion of the book's store names."""
    return click.option("--store", metavar="NAME", help=help, shell_complete=complete_stores)


def store_argument(name: str = "name") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A store name argument, with shell completion of the book's store names."""
    return click.argument(name, metavar="STORE", shell_complete=complete_stores)


def parse_when(text: str | None, option: str) -> str | None:
    """A ``--since``/``--until`` value (``2026-11-30`` or ``2026-11-30T08:00`` UTC, or ISO with an offset)
    as the UTC text the book compares with; a one-line error says what is expected."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option} {text!r}: give a date as YYYY-MM-DD or a time as YYYY-MM-DDTHH:MM (UTC unless an offset"
            " such as +01:00 is given)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")

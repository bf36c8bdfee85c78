"""What every command of one invocation shares: the plugin host, the order book and the engine."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

import attrs
import click

from connector_core.cli.output import UserError
from connector_core.db.book import OrderBook
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
    _host: PluginHost | None = None
    _book: OrderBook | None = None

    @property
    def host(self) -> PluginHost:
        """The plugin host (built on first use)."""
        if self._host is None:
            self._host = self.host_factory()
        return self._host

    @property
    def book(self) -> OrderBook:
        """The order book (opened on first use)."""
        if self._book is None:
            self._book = OrderBook(self.db)
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

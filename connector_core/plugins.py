"""Building the plugin manager, and the typed facade the host calls hooks through.

:func:`get_plugin_manager` is a factory (nothing happens at import time): it
adds the hook specs, blocks the plugins named in ``CONNECTOR_HOST_DISABLE_PLUGINS``
(comma-separated entry-point names), loads the ``connector_core`` entry-point
group, registers built-ins and extra plugins, and runs ``check_pending()``.

:class:`PluginHost` has one typed method per hook. Store hooks are called on
the store's own marketplace plugin only (a pluggy subset hook caller that
leaves every other plugin out), always with keyword arguments.

:meth:`PluginHost.page_hooks` resolves the three hooks called once per order
(``map_order``, ``map_status``, ``should_auto_accept``) for one page at a
time. When the store's plugin is the hook's only implementation and nothing
watches the plugin manager's calls, the page calls that implementation
directly, as pluggy itself would (arguments by the names it declares, its
result as the first result): pluggy's dispatch costs about 4 µs a call, more
than mapping a status (``bench/RESULTS.md``, round 9). Anything else (a
wrapper, a second implementation, hook-call monitoring or tracing, which the
contract kit uses to see which hooks ran) goes through pluggy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import attrs
import pluggy

from connector_core import hookspecs
from connector_core.errors import ConfigError, PluginError, SettingsError
from connector_core.models import (
    CANONICAL_STATUSES,
    CatalogueEntry,
    ConnectResult,
    FetchPage,
    MarketplaceInfo,
    Order,
    OrderStatus,
    PushResult,
    RawOrder,
    Shipment,
    StatusChange,
)
from connector_core.schema_registry import SchemaRegistry, canonical_registry
from connector_core.secrets import register_settings
from connector_core.store_context import StoreContext

ENTRY_POINT_GROUP = hookspecs.PROJECT
DISABLE_ENV = "CONNECTOR_HOST_DISABLE_PLUGINS"


def disabled_plugins(environ: dict[str, str] | None = None) -> list[str]:
    """Plugin names listed in ``CONNECTOR_HOST_DISABLE_PLUGINS``."""
    raw = (environ if environ is not None else os.environ).get(DISABLE_ENV, "")
    return [name.strip() for name in raw.split(",") if name.strip()]


def get_plugin_manager(
    *,
    plugins: Sequence[object] = (),
    load_entrypoints: bool = True,
    disabled: Iterable[str] | None = None,
) -> pluggy.PluginManager:
    """A fresh plugin manager with specs, entry points and ``plugins`` registered."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in disabled if disabled is not None else disabled_plugins():
        pm.set_blocked(name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        if pm.is_blocked(name):
            continue
        pm.register(plugin)
    pm.check_pending()
    return pm


_STORE_HOOKS = (
    "connect",
    "fetch_orders",
    "map_order",
    "map_status",
    "push_shipment",
    "should_auto_accept",
    "accept_order",
    "cancel_order",
    "fetch_catalogue",
    "sandbox_factory",
)


class PluginHost:
    """Typed access to the hooks, dispatching each store's calls to its own plugin."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._infos: dict[str, MarketplaceInfo] = {}
        self._plugins: dict[str, object] = {}
        self._callers: dict[tuple[str, str], Any] = {}
        # what pluggy runs hook calls with while nobody monitors them (add_hookcall_monitoring replaces it)
        self._unwatched = getattr(pm, "_inner_hookexec", _UNKNOWN)
        self.schemas = SchemaRegistry()
        canonical = canonical_registry()
        for name in canonical.names():
            self.schemas.add(name, canonical.schema(name))
        for impl in pm.hook.marketplace_info.get_hookimpls():
            info = impl.function()
            if info is None:
                continue
            if not isinstance(info, MarketplaceInfo):
                raise PluginError(f"plugin {pm.get_name(impl.plugin)!r}: marketplace_info must return MarketplaceInfo")
            if info.name in self._infos:
                raise PluginError(f"two plugins claim the marketplace {info.name!r}")
            self._infos[info.name] = info
            self._plugins[info.name] = impl.plugin
            if info.raw_schema is not None:
                self.schemas.add(self.raw_schema_name(info.name), info.raw_schema)
            self.schemas.add(self.settings_schema_name(info.name), info.settings_schema)

    @classmethod
    def create(cls, **kwargs: Any) -> PluginHost:
        """Build a plugin manager with :func:`get_plugin_manager` and wrap it."""
        return cls(get_plugin_manager(**kwargs))

    # -- describing ----------------------------------------------------------

    @staticmethod
    def raw_schema_name(marketplace: str) -> str:
        """Registry name of a marketplace's raw payload schema."""
        return f"{marketplace}/raw"

    @staticmethod
    def settings_schema_name(marketplace: str) -> str:
        """Registry name of a marketplace's settings schema."""
        return f"{marketplace}/settings"

    def marketplaces(self) -> dict[str, MarketplaceInfo]:
        """Every installed marketplace, by name."""
        return dict(sorted(self._infos.items()))

    def info(self, marketplace: str) -> MarketplaceInfo:
        """The :class:`MarketplaceInfo` of ``marketplace``."""
        try:
            return self._infos[marketplace]
        except KeyError:
            known = ", ".join(self._infos) or "none"
            raise ConfigError(
                f"no marketplace plugin named {marketplace!r} is installed (installed: {known})"
            ) from None

    def plugin_version(self, marketplace: str) -> str:
        """The version string the plugin reports."""
        return self.info(marketplace).version

    def validate_settings(self, marketplace: str, settings: dict[str, Any]) -> None:
        """Check store settings against the plugin's settings schema."""
        info = self.info(marketplace)
        register_settings(info.settings_schema, settings)
        try:
            self.schemas.validate(self.settings_schema_name(marketplace), settings)
        except Exception as exc:
            raise SettingsError(f"invalid {marketplace} settings: {exc}") from None

    # -- dispatch ------------------------------------------------------------

    def _caller(self, marketplace: str, hook: str) -> Any:
        key = (marketplace, hook)
        caller = self._callers.get(key)
        if caller is None:
            target = self._plugins.get(marketplace)
            if target is None:
                self.info(marketplace)  # raises the friendly error
            others = [p for p in self.pm.get_plugins() if p is not target]
            caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
            self._callers[key] = caller
        return caller

    def _call(self, marketplace: str, hook: str, **kwargs: Any) -> Any:
        return self._caller(marketplace, hook)(**kwargs)

    def resolve(self, marketplace: str, hook: str) -> Callable[..., Any]:
        """``_call(marketplace, hook, **kwargs)`` as one function, for calls made before anything can change.

        The lone implementation itself when calling it directly is what
        pluggy would do (see the module docstring); the subset hook caller
        otherwise.
        """
        caller = self._caller(marketplace, hook)
        impls = caller.get_hookimpls()
        if (
            len(impls) != 1
            or self._unwatched is _UNKNOWN
            or getattr(self.pm, "_inner_hookexec", None) is not self._unwatched
        ):
            return caller  # type: ignore[no-any-return]
        impl = impls[0]
        if impl.hookwrapper or getattr(impl, "wrapper", False):
            return caller  # type: ignore[no-any-return]
        function, names = impl.function, tuple(impl.argnames)

        def direct(**kwargs: Any) -> Any:
            return function(*[kwargs[name] for name in names])

        return direct

    def page_hooks(self, store: StoreContext) -> PageHooks:
        """The per-order hooks of ``store`` resolved once, for one page (see the module docstring)."""
        return PageHooks(
            self,
            store,
            self.resolve(store.marketplace, "map_order"),
            self.resolve(store.marketplace, "map_status"),
            self.resolve(store.marketplace, "should_auto_accept"),
        )

    def _require(self, marketplace: str, hook: str, result: Any) -> Any:
        if result is None:
            raise PluginError(f"the {marketplace} plugin does not implement {hook}")
        return result

    def connect(self, store: StoreContext) -> ConnectResult:
        """Call ``connect`` on the store's plugin."""
        return self._require(store.marketplace, "connect", self._call(store.marketplace, "connect", store=store))  # type: ignore[no-any-return]

    def fetch_orders(self, store: StoreContext, since: Any) -> Iterator[FetchPage]:
        """Call ``fetch_orders``; yields pages."""
        pages = self._call(store.marketplace, "fetch_orders", store=store, since=since)
        self._require(store.marketplace, "fetch_orders", pages)
        for page in pages:
            if not isinstance(page, FetchPage):
                raise PluginError(
                    f"the {store.marketplace} plugin's fetch_orders yielded {type(page).__name__}, not FetchPage"
                )
            yield page

    def map_order(self, store: StoreContext, raw: RawOrder) -> Order:
        """Call ``map_order`` on the store's plugin."""
        result = self._call(store.marketplace, "map_order", store=store, raw=raw)
        return self._require(store.marketplace, "map_order", result)  # type: ignore[no-any-return]

    def map_status(self, store: StoreContext, marketplace_status: str) -> OrderStatus:
        """Canonical status of a marketplace code: the store's custom map first, then the plugin."""
        return _status_of(
            store,
            marketplace_status,
            lambda code: self._call(store.marketplace, "map_status", store=store, marketplace_status=code),
        )

    def push_shipment(self, store: StoreContext, order: Order, shipment: Shipment) -> PushResult:
        """Call ``push_shipment`` on the store's plugin."""
        return self._require(  # type: ignore[no-any-return]
            store.marketplace,
            "push_shipment",
            self._call(store.marketplace, "push_shipment", store=store, order=order, shipment=shipment),
        )

    def should_auto_accept(self, store: StoreContext, order: Order) -> bool:
        """Whether the plugin wants ``order`` accepted now."""
        return bool(self._call(store.marketplace, "should_auto_accept", store=store, order=order))

    def accept_order(self, store: StoreContext, order: Order) -> StatusChange:
        """Call ``accept_order`` on the store's plugin."""
        result = self._call(store.marketplace, "accept_order", store=store, order=order)
        return self._require(store.marketplace, "accept_order", result)  # type: ignore[no-any-return]

    def cancel_order(self, store: StoreContext, order: Order, reason: str | None = None) -> StatusChange:
        """Call ``cancel_order`` on the store's plugin."""
        return self._require(  # type: ignore[no-any-return]
            store.marketplace,
            "cancel_order",
            self._call(store.marketplace, "cancel_order", store=store, order=order, reason=reason),
        )

    def fetch_catalogue(self, store: StoreContext) -> Iterable[CatalogueEntry] | None:
        """Call ``fetch_catalogue``; ``None`` when the marketplace has no catalogue export."""
        return self._call(store.marketplace, "fetch_catalogue", store=store)  # type: ignore[no-any-return]

    def fetch_order(self, store: StoreContext, order_key: str) -> RawOrder | None:
        """Call ``fetch_order``; ``None`` when the plugin cannot fetch one order (or it is gone)."""
        return self._call(store.marketplace, "fetch_order", store=store, order_key=order_key)  # type: ignore[no-any-return]

    def sandbox_factory(self, marketplace: str) -> Any:
        """The plugin's sandbox factory, or ``None``."""
        self.info(marketplace)
        return self._call(marketplace, "sandbox_factory")

    def register_commands(self, cli: Any) -> None:
        """Let every plugin add CLI commands."""
        self.pm.hook.register_commands(cli=cli)


_UNKNOWN = object()


def _status_of(store: StoreContext, marketplace_status: str, plugin: Callable[[str], Any]) -> OrderStatus:
    """The store's custom mapping of a code, else what ``plugin`` maps it to (``on_hold`` for nothing)."""
    code = str(marketplace_status)
    custom = store.status_map.get(code)
    if custom is not None:
        return OrderStatus(custom)
    result = plugin(code)
    if result is None:
        return OrderStatus.ON_HOLD
    if str(result) not in CANONICAL_STATUSES:
        raise PluginError(f"the {store.marketplace} plugin mapped {marketplace_status!r} to unknown status {result!r}")
    return OrderStatus(result)


@attrs.frozen
class PageHooks:
    """``map_order``, ``map_status`` and ``should_auto_accept`` of one store, resolved for one page.

    From :meth:`PluginHost.page_hooks`; each method checks the plugin's
    answer as the :class:`PluginHost` method of the same name does.
    """

    host: PluginHost
    store: StoreContext
    _map_order: Callable[..., Any]
    _map_status: Callable[..., Any]
    _should_auto_accept: Callable[..., Any]

    def map_order(self, raw: RawOrder) -> Order:
        """The plugin's ``map_order`` of ``raw``; :class:`PluginError` if it gives nothing."""
        result = self._map_order(store=self.store, raw=raw)
        return self.host._require(self.store.marketplace, "map_order", result)  # type: ignore[no-any-return]

    def map_status(self, marketplace_status: str) -> OrderStatus:
        """Canonical status of a marketplace code: the store's custom map first, then the plugin."""
        store = self.store
        return _status_of(
            store, marketplace_status, lambda code: self._map_status(store=store, marketplace_status=code)
        )

    def should_auto_accept(self, order: Order) -> bool:
        """Whether the plugin wants ``order`` accepted now."""
        return bool(self._should_auto_accept(store=self.store, order=order))

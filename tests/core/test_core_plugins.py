"""Plugin discovery, disabling, dispatch to the store's own plugin, and the hookspec meta-tests."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from pathlib import Path

import attrs
import pluggy
import pytest
from bazaar_plugin import TOKEN, Bazaar, make_order

from connector_core import hookimpl, hookspecs
from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.errors import ConfigError, PluginError
from connector_core.models import Order, RawOrder
from connector_core.plugins import PluginHost, get_plugin_manager
from connector_core.store_context import StoreContext

HOOKS = sorted(
    name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "connector_core_spec")
)


def test_installed_spartoo_entry_point_is_discovered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The spartoo distribution's entry point is loaded by the plugin manager factory."""
    monkeypatch.delenv("CONNECTOR_HOST_DISABLE_PLUGINS", raising=False)
    pm = get_plugin_manager()
    assert pm.get_plugin("spartoo") is not None
    assert "spartoo" in PluginHost(pm).marketplaces()


def test_disable_env_blocks_a_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """CONNECTOR_HOST_DISABLE_PLUGINS keeps the named entry points and plugins out."""
    monkeypatch.setenv("CONNECTOR_HOST_DISABLE_PLUGINS", "spartoo, souk")
    pm = get_plugin_manager(plugins=[Bazaar("souk"), Bazaar("bazaar")])
    assert pm.get_plugin("spartoo") is None
    assert pm.is_blocked("spartoo")
    names = set(PluginHost(pm).marketplaces())
    assert "bazaar" in names
    assert names.isdisjoint({"spartoo", "souk"})


def test_dispatch_goes_to_the_store_plugin_only(make_host: Callable[..., PluginHost], book: OrderBook) -> None:
    """With two marketplace plugins, each store's hooks run on its own plugin and never on the other."""
    bazaar = Bazaar("bazaar", [make_order(1), make_order(2)])
    souk = Bazaar("souk", [make_order(7)])
    engine = Engine(make_host(bazaar, souk), book)
    book.add_store("b", "bazaar", {"token": TOKEN})
    book.add_store("s", "souk", {"token": TOKEN})
    engine.sync("s")
    assert {store for _, store in souk.calls} == {"s"}
    assert bazaar.calls == []
    engine.sync("b")
    assert {store for _, store in bazaar.calls} == {"b"}
    assert {store for _, store in souk.calls} == {"s"}
    assert [o.marketplace for o in book.iter_orders("s")] == ["souk"]
    assert [o.order_key for o in book.iter_orders("b")] == ["BZ0001", "BZ0002"]


def test_unknown_marketplace_is_a_config_error(host: PluginHost) -> None:
    """Asking for a marketplace nobody installed names the installed ones."""
    with pytest.raises(ConfigError, match=r"no marketplace plugin named 'ebay' is installed \(installed: bazaar\)"):
        host.info("ebay")


def test_two_plugins_claiming_one_marketplace_are_refused(make_host: Callable[..., PluginHost]) -> None:
    """Two plugins describing the same marketplace name are a plugin error."""
    first, second = Bazaar("bazaar"), Bazaar("bazaar")
    second.__name__ = "bazaar-copy"
    with pytest.raises(PluginError, match="two plugins claim the marketplace 'bazaar'"):
        make_host(first, second)


def test_settings_are_validated_by_the_plugin_schema(host: PluginHost) -> None:
    """validate_settings accepts good settings and rejects missing or mistyped ones."""
    host.validate_settings("bazaar", {"token": TOKEN, "page_size": 3})
    with pytest.raises(ConfigError, match="token"):
        host.validate_settings("bazaar", {"page_size": 3})
    with pytest.raises(ConfigError, match="page_size"):
        host.validate_settings("bazaar", {"token": TOKEN, "page_size": "three"})


def test_sandbox_factory_none_when_plugin_has_no_sandbox(host: PluginHost) -> None:
    """sandbox_factory answers None for a plugin that ships no sandbox."""
    assert host.sandbox_factory("bazaar") is None


def test_register_commands_reaches_every_plugin(make_host: Callable[..., PluginHost]) -> None:
    """register_commands is called on every plugin with the CLI group."""
    import click

    from connector_core import hookimpl

    class Extra:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("hello", callback=lambda: None))

    group = click.Group("g")
    make_host(Extra(), Bazaar()).register_commands(group)
    assert "hello" in group.commands


def test_every_hookspec_is_documented() -> None:
    """Each hookspec has a docstring saying when it is called and what it returns."""
    assert len(HOOKS) >= 12
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc) > 80, name
        assert "Called" in doc or "called" in doc, name
        assert "Return" in doc or "return" in doc, name


def test_every_hookspec_is_named_in_a_test() -> None:
    """Each hookspec name appears in at least one test file (besides this meta-test)."""
    here = Path(__file__)
    texts = [p.read_text(encoding="utf-8") for p in here.parents[1].rglob("test_*.py") if p != here]
    own = here.read_text(encoding="utf-8")
    texts.append(own.replace(inspect.getsource(test_every_hookspec_is_named_in_a_test), ""))
    missing = [name for name in HOOKS if not any(name in text for text in texts)]
    assert missing == []


def test_fetch_catalogue_none_without_catalogue_export(host: PluginHost) -> None:
    """fetch_catalogue answers None for a marketplace whose plugin has no catalogue export."""
    from connector_core.store_context import StoreContext

    store = StoreContext(name="shop", marketplace="bazaar", settings={"token": TOKEN})
    try:
        assert host.fetch_catalogue(store) is None
    finally:
        store.http.close()


def _bazaar_store() -> StoreContext:
    return StoreContext(name="b", marketplace="bazaar", settings={"token": TOKEN, "auto_accept": True})


def _raw(seq: int) -> RawOrder:
    return RawOrder(order_key=f"BZ{seq:04d}", payload=make_order(seq))


def test_page_hooks_call_the_lone_implementation_without_pluggy(make_host: Callable[..., PluginHost]) -> None:
    """Unwatched, a page's per-order hooks are the plugin's own methods, and answer as the host's methods do."""
    bazaar = Bazaar("bazaar")
    host = make_host(bazaar)
    store = _bazaar_store()
    for hook in ("map_order", "map_status", "should_auto_accept"):
        assert not isinstance(host.resolve("bazaar", hook), pluggy.HookCaller), hook
    hooks = host.page_hooks(store)
    order = hooks.map_order(_raw(1))
    assert order == host.map_order(store, _raw(1))
    assert hooks.map_status("sent") == host.map_status(store, "sent")
    assert hooks.should_auto_accept(order) is host.should_auto_accept(store, order) is True
    assert [hook for hook, _ in bazaar.calls] == ["map_order", "map_order", "map_status", "map_status"]


def test_page_hooks_go_through_pluggy_while_calls_are_monitored(make_host: Callable[..., PluginHost]) -> None:
    """Hook-call monitoring (the contract kit's, or pluggy's tracing) sees every call a page makes."""
    host = make_host(Bazaar("bazaar"))
    seen: list[str] = []
    undo = host.pm.add_hookcall_monitoring(lambda name, impls, kwargs: seen.append(name), lambda *args: None)
    try:
        assert isinstance(host.resolve("bazaar", "map_order"), pluggy.HookCaller)
        hooks = host.page_hooks(_bazaar_store())
        order = hooks.map_order(_raw(2))
        hooks.map_status(order.marketplace_status.code)
        hooks.should_auto_accept(order)
    finally:
        undo()
    assert seen == ["map_order", "map_status", "should_auto_accept"]
    assert not isinstance(host.resolve("bazaar", "map_order"), pluggy.HookCaller)  # unwatched again


class _WrappedBazaar(Bazaar):
    """A Bazaar whose plugin also wraps its own ``map_order`` (a second implementation: pluggy must run both)."""

    @hookimpl(wrapper=True, specname="map_order")
    def flag_mapped(self, store: StoreContext, raw: RawOrder) -> Generator[None, Order, Order]:
        order = yield
        return attrs.evolve(order, flags=(*order.flags, "wrapped"))


def test_page_hooks_keep_pluggy_for_a_wrapped_hook(make_host: Callable[..., PluginHost]) -> None:
    """A hook with a wrapper is called through pluggy, so the wrapper still runs."""
    host = make_host(_WrappedBazaar("bazaar"))
    assert isinstance(host.resolve("bazaar", "map_order"), pluggy.HookCaller)
    assert not isinstance(host.resolve("bazaar", "map_status"), pluggy.HookCaller)
    assert "wrapped" in host.page_hooks(_bazaar_store()).map_order(_raw(3)).flags

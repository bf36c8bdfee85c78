"""What one contract check runs against: a fresh sandbox (or the live endpoint), its stores, and the plugin's hooks.

Also the kit's shared vocabulary: :class:`ContractFailure`, :class:`ContractSkip`,
:func:`fail` and :func:`short`.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from connector_core.errors import PayloadError
from connector_core.http import HttpPolicy, RetryingClient
from connector_core.models import MarketplaceInfo, Order, RawOrder, RawReject
from connector_core.plugins import PluginHost
from connector_core.secrets import register_settings, secret_fields
from connector_core.store_context import StoreContext
from connector_core.testing.profile import ContractProfile
from connector_core.testing.sandbox import Sandbox
from connector_core.testing.scan import Capture

if TYPE_CHECKING:
    from connector_core.testing.contract import ContractHarness


#: The most pages the kit reads in one fetch before it calls the read endless.
MAX_PAGES = 2_000


class ContractFailure(AssertionError):
    """A check found the plugin out of contract; the message says what to fix."""


class ContractSkip(Exception):
    """A check cannot run in this mode (e.g. it needs a sandbox); the message says why."""


def fail(message: str) -> ContractFailure:
    """A :class:`ContractFailure` to raise."""
    return ContractFailure(message)


def short(items: Any, limit: int = 5) -> str:
    """At most ``limit`` items, comma-separated, with how many more there are."""
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def token() -> str:
    """A short random token (tracking numbers, spoiled credentials)."""
    return _random.token_hex(5).upper()


@attrs.frozen
class Page:
    """One page of a full read: the keys it yielded and the cursor after it."""

    keys: tuple[str, ...]
    cursor: Any


def changed_at(order: Order) -> datetime:
    """When the order last changed, as the plugin mapped it."""
    return order.modified_date or order.order_date


class Env:
    """What one check runs against: a fresh sandbox (or the live endpoint) and its stores."""

    def __init__(
        self, harness: ContractHarness, sandbox: Sandbox | None, settings: dict[str, Any], capture: Capture
    ) -> None:
        self.harness = harness
        self.host: PluginHost = harness.host
        self.marketplace = harness.marketplace
        self.info: MarketplaceInfo = harness.host.info(harness.marketplace)
        self.sandbox = sandbox
        self.settings = settings
        self.capture = capture
        self.allow_writes = sandbox is not None or harness.allow_writes
        self.sleeps: list[float] = []
        self.current_order: str | None = None
        self.crashes: dict[int, str] = {}  # id(exception) -> the order key being handled when it was raised
        self._clients: list[RetryingClient] = []
        self._stores: list[StoreContext] = []
        register_settings(self.info.settings_schema, settings)
        profile = self.plugin_hook("contract_profile")()
        self.profile: ContractProfile = profile if isinstance(profile, ContractProfile) else ContractProfile()

    # -- secrets -------------------------------------------------------------------

    def secret_values(self, *settings: Mapping[str, Any]) -> list[str]:
        """The secret values of the given settings (default: this env's settings)."""
        names = secret_fields(self.info.settings_schema)
        values = [s.get(n) for s in (settings or (self.settings,)) for n in names]
        return [v for v in values if isinstance(v, str) and v]

    def issued_secrets(self) -> list[str]:
        """Tokens the sandbox handed out (``issued_secrets``, optional in the protocol)."""
        issued = getattr(self.sandbox, "issued_secrets", None)
        return [s for s in (issued() if callable(issued) else []) if isinstance(s, str) and s]

    def all_secrets(self) -> list[str]:
        """Every secret of the run: settings secrets, tokens issued, values the stores registered."""
        registered = [v for store in self._stores for v in getattr(store.secrets, "_values", ())]
        return [*self.secret_values(), *self.issued_secrets(), *registered]

    def registered(self, value: str) -> bool:
        """Whether one of this env's stores registered ``value`` with ``store.secrets.add``."""
        return any(value in store.secrets for store in self._stores)

    # -- stores and hooks ----------------------------------------------------------

    def store(
        self,
        settings: Mapping[str, Any] | None = None,
        status_map: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> StoreContext:
        """A store on this env's endpoint; its HTTP client retries often and never really sleeps."""
        client = RetryingClient(
            HttpPolicy(max_attempts=25, backoff_base=0.001, backoff_max=0.002, max_total_wait=10_000),
            sleep=self.sleeps.append,
            transport=transport,
        )
        self._clients.append(client)
        store = StoreContext(
            name=f"contract-{len(self._clients)}",
            marketplace=self.marketplace,
            settings=dict(self.settings if settings is None else settings),
            status_map=dict(status_map or {}),
            http=client,
        )
        self._stores.append(store)
        return store

    def close(self) -> None:
        """Close every HTTP client the stores opened."""
        for client in self._clients:
            client.close()

    def need_sandbox(self, what: str) -> Sandbox:
        """This env's sandbox, or skip the check in live mode."""
        if self.sandbox is None:
            raise ContractSkip(f"{what} needs the marketplace's sandbox (live settings were given)")
        return self.sandbox

    def need_writes(self, what: str) -> None:
        """Skip a check that writes, unless on a sandbox or writes were allowed."""
        if not self.allow_writes:
            raise ContractSkip(f"{what} writes to the marketplace: pass --allow-writes to run it against live settings")

    def invalid_keys(self) -> set[str]:
        """Keys of the sandbox orders it marks as not importable (e.g. no shipping address)."""
        return (
            {str(o["order_key"]) for o in self.sandbox.orders() if not o.get("valid", True)} if self.sandbox else set()
        )

    def sandbox_order(self, key: str) -> dict[str, Any]:
        """The sandbox's view of one order."""
        for order in self.need_sandbox("reading an order back").orders():
            if str(order["order_key"]) == key:
                return order
        raise fail(f"the sandbox has no order {key}: add_orders/orders must use the host's order keys")

    @contextmanager
    def on_order(self, key: str | None) -> Iterator[None]:
        """Name ``key`` in the report if the check stops on an exception inside the block."""
        previous, self.current_order = self.current_order, key
        try:
            yield
        except BaseException as exc:
            if key is not None:
                self.crashes.setdefault(id(exc), key)
            raise
        finally:
            self.current_order = previous

    def crashed_on(self, exc: BaseException) -> str | None:
        """The order key being handled when ``exc`` (or the exception it came from) was raised."""
        seen: BaseException | None = exc
        while seen is not None:
            if id(seen) in self.crashes:
                return self.crashes[id(seen)]
            seen = seen.__cause__ or seen.__context__
        return None

    def pages(self, store: StoreContext, since: Any = None) -> Iterator[tuple[list[RawOrder], list[RawReject], Any]]:
        """``fetch_orders`` page by page: raw orders, rejects and the page's cursor (``None`` if it gave none).

        Bounded: a read that goes on past :data:`MAX_PAGES` pages fails the check.
        """
        for number, page in enumerate(self.host.fetch_orders(store, since), start=1):
            if number > MAX_PAGES:
                raise fail(f"fetch_orders yielded more than {MAX_PAGES} pages from one sandbox: it never ends")
            yield list(page.orders), list(page.rejects), page.cursor

    def fetch(self, store: StoreContext, since: Any = None) -> tuple[list[RawOrder], list[RawReject], Any]:
        """Run ``fetch_orders`` to the end: raw orders, rejects, and the last cursor given."""
        raws: list[RawOrder] = []
        rejects: list[RawReject] = []
        cursor = since
        for orders, page_rejects, page_cursor in self.pages(store, since):
            raws.extend(orders)
            rejects.extend(page_rejects)
            if page_cursor is not None:
                cursor = page_cursor
        return raws, rejects, cursor

    def read_pages(self, store: StoreContext, since: Any = None) -> tuple[list[RawOrder], list[Page]]:
        """A full read with each page's keys and cursor, for resuming from every one of them."""
        raws: list[RawOrder] = []
        pages = []
        for orders, _rejects, cursor in self.pages(store, since):
            raws.extend(orders)
            pages.append(Page(tuple(r.order_key for r in orders), cursor))
        return raws, pages

    def map(self, store: StoreContext, raw: RawOrder) -> Order:
        """Map one raw payload the way the engine does: plugin mapping, then status mapping."""
        with self.on_order(raw.order_key):
            order = self.host.map_order(store, raw)
            return attrs.evolve(order, status=self.host.map_status(store, order.marketplace_status.code))

    def map_all(self, store: StoreContext, raws: list[RawOrder]) -> list[Order]:
        """Map every payload that maps (rejections are other checks' business)."""
        orders = []
        for raw in raws:
            try:
                orders.append(self.map(store, raw))
            except PayloadError:
                continue
        return orders

    def mapped_orders(self, store: StoreContext) -> list[Order]:
        """Fetch everything and map every payload that maps."""
        return self.map_all(store, self.fetch(store)[0])

    def plugin_hook(self, name: str) -> Callable[..., Any]:
        """Call hook ``name`` on this marketplace's plugin only, with no host defaults in between."""
        pm = self.host.pm
        target = self.harness.target_plugin()
        others = [p for p in pm.get_plugins() if p is not target]
        return pm.subset_hook_caller(name, remove_plugins=others)  # type: ignore[no-any-return]

"""The hook specifications every marketplace plugin implements.

A marketplace plugin is a module or object registered with the plugin
manager (usually through the ``connector_core`` entry-point group) that
implements :func:`marketplace_info` plus the store hooks below. The host
calls a store's hooks on that store's plugin only, always with keyword
arguments; an implementation may accept fewer arguments than the spec.

Lifecycle of one store::

    marketplace_info()                      at start-up, on every plugin
    connect(store)                          when a store is added, and before each sync
    fetch_orders(store, since)              during sync: pages of raw payloads + cursor
    map_order(store, raw)                   for each raw payload that passed its schema
    map_status(store, marketplace_status)   for each mapped order (custom mapping first)
    should_auto_accept(store, order)        as a page is mapped (acted on once it is stored)
    accept_order / cancel_order             auto-accept, or ``orders accept|cancel``
    fetch_order(store, order_key)           a payload failed its schema or mapping: fetch it again
    push_shipment(store, order, shipment)   when ``push`` drains the outbox
    fetch_catalogue(store)                  ``products import --from-store``
    sandbox_factory() / contract_profile()  the contract-test kit only

``map_order``, ``map_status`` and ``should_auto_accept`` may run in a map
worker process; with ``sync --processes N`` or ``push --processes N`` every
hook of a store may run in a forked process. Hooks share nothing through
module state with the process that started them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from connector_core.models import (
        CatalogueEntry,
        ConnectResult,
        FetchPage,
        MarketplaceInfo,
        Order,
        PushResult,
        RawOrder,
        Shipment,
        StatusChange,
    )
    from connector_core.store_context import StoreContext
    from connector_core.testing.profile import ContractProfile
    from connector_core.testing.sandbox import SandboxFactory

PROJECT = "connector_core"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def marketplace_info() -> MarketplaceInfo | None:  # type: ignore[empty-body]
    """Describe the marketplace this plugin connects.

    Called once on every plugin when the plugin manager is built, and by
    ``connector-host plugins``. Return a :class:`MarketplaceInfo` (name,
    version, settings JSON Schema with secret fields flagged ``x-secret``,
    capability table, known marketplace statuses), or ``None`` for a plugin
    that is not a marketplace (e.g. one that only adds CLI commands).
    """


@hookspec(firstresult=True)
def connect(store: StoreContext) -> ConnectResult:  # type: ignore[empty-body]
    """Check the store's credentials and that the marketplace is reachable.

    Called when a store is added (before it is saved) and at the start of
    every sync. Return who/what was connected. Raise
    :class:`~connector_core.errors.AuthError` with a message telling the user
    what to fix when credentials are refused,
    :class:`~connector_core.errors.AccountError` for an unusable account, and
    :class:`~connector_core.errors.TransientError` when it is worth retrying.
    The message must never contain a secret.
    """


@hookspec(firstresult=True)
def fetch_orders(store: StoreContext, since: Any) -> Iterable[FetchPage]:  # type: ignore[empty-body]
    """Fetch the orders created or changed since the cursor ``since``.

    Called by ``sync`` after ``connect``. ``since`` is the cursor the plugin
    returned last time (any JSON-able value; ``None`` on the first sync).
    Return an iterable (typically a generator) of :class:`FetchPage`; each
    page carries raw payloads, payloads that could not even be parsed
    (:class:`~connector_core.models.RawReject`), and optionally the cursor to
    resume from once every order before it has been yielded. The host
    validates each raw payload against ``MarketplaceInfo.raw_schema``, stores
    a page's orders and cursor in one transaction, and may stop iterating
    at any time.
    """


@hookspec(firstresult=True)
def map_order(store: StoreContext, raw: RawOrder) -> Order:  # type: ignore[empty-body]
    """Map one validated raw payload to a canonical :class:`Order`.

    Called during sync for each raw payload that passed the plugin's raw
    schema. Return the :class:`Order` (``store`` = the store's name,
    ``order_key`` = ``raw.order_key``). Its ``status`` may be a provisional value: the host
    replaces it with the result of :func:`map_status`. Raise
    :class:`~connector_core.errors.MappingError` (with the JSON path where
    useful) for a payload that cannot be mapped, e.g. one with no usable
    shipping address; the host quarantines it and goes on.

    During a large sync the host may call this hook, :func:`map_status` and
    :func:`should_auto_accept` in a worker process forked from it
    (:mod:`connector_core.sync.workers`), with the payload carried there as JSON
    whose object keys arrive sorted: decide from the arguments alone, with
    no network or file I/O and no state that must outlive the call, read
    keys by name, and leave ``raw.payload`` as it is (the host stores the
    payload as it was fetched; copy what you need to change). Keep the
    payload as the order's ``raw`` when you can: the host then stores the
    bytes it already has instead of encoding them again.
    """


@hookspec(firstresult=True)
def map_status(store: StoreContext, marketplace_status: str) -> str | None:  # type: ignore[empty-body]
    """Map a marketplace status code to a canonical status value.

    Called for each mapped order, unless the store's own custom mapping has
    an entry for this code (the custom mapping always wins and is applied by
    the host). Return one of
    :data:`~connector_core.models.CANONICAL_STATUSES`, or ``None`` when the
    code is unknown (the host then puts the order ``on_hold``).
    """


@hookspec(firstresult=True)
def push_shipment(store: StoreContext, order: Order, shipment: Shipment) -> PushResult:  # type: ignore[empty-body]
    """Send a shipment (tracking number, carrier, ...) back to the marketplace.

    Called by ``push`` for each shipment waiting in the outbox, possibly more
    than once for the same shipment (at-least-once delivery): a re-push of a
    shipment the marketplace already has must succeed with
    ``already_applied=True`` and change nothing. Return a
    :class:`PushResult` saying field by field what the marketplace took and
    what it cannot take. Raise :class:`~connector_core.errors.TransientError`
    to have the host retry later, any other
    :class:`~connector_core.errors.MarketplaceError` for a permanent refusal.
    """


@hookspec(firstresult=True)
def should_auto_accept(store: StoreContext, order: Order) -> bool | None:  # type: ignore[empty-body]
    """Whether the host should accept this freshly mapped order.

    Called for every order of a page once it is mapped (possibly in a map
    worker, see :func:`map_order`). Return ``True`` to have the host call
    :func:`accept_order` once the page is committed; ``False`` or ``None``
    to leave the order as it is.
    """


@hookspec(firstresult=True)
def accept_order(store: StoreContext, order: Order) -> StatusChange:  # type: ignore[empty-body]
    """Accept a new order on the marketplace (the seller commits to ship it).

    Called on auto-accept and by ``connector-host orders accept``. Return the
    order's new marketplace status. Raise
    :class:`~connector_core.errors.TransitionError` when the order's current
    status does not allow it. Accepting an order already accepted returns
    ``already_applied=True``.
    """


@hookspec(firstresult=True)
def cancel_order(store: StoreContext, order: Order, reason: str | None) -> StatusChange:  # type: ignore[empty-body]
    """Cancel an order on the marketplace.

    Called by ``connector-host orders cancel KEY [--reason TEXT]``; ``reason``
    is the user's text or ``None``. Return the new marketplace status, or raise
    :class:`~connector_core.errors.TransitionError` when cancelling is not
    allowed from the order's status (e.g. already shipped).
    """


@hookspec(firstresult=True)
def fetch_catalogue(store: StoreContext) -> Iterable[CatalogueEntry] | None:  # type: ignore[empty-body]
    """Export the marketplace's product catalogue into the host's catalogue.

    Called by ``connector-host products import --from-store NAME``. Return
    catalogue entries keyed by the seller's SKU, or ``None`` when the
    marketplace has no catalogue export.
    """


@hookspec(firstresult=True)
def fetch_order(store: StoreContext, order_key: str) -> RawOrder | None:  # type: ignore[empty-body]
    """Fetch the current document of one order again, as a raw payload.

    Called during sync when a payload of the page failed its schema or its
    mapping (a document damaged in transit is fetched once more before it
    is left in quarantine), and by ``connector-host rejected retry`` when
    the stored payload still fails. ``order_key`` is the key the plugin
    gave the payload. Return the :class:`RawOrder`, or ``None`` when the
    marketplace no longer has the order or the plugin cannot fetch one
    order alone (the payload then stays in quarantine).
    """


@hookspec(firstresult=True)
def sandbox_factory() -> SandboxFactory | None:  # type: ignore[empty-body]
    """A factory of local sandboxes of this marketplace, for the contract kit.

    Called by the contract-test kit and ``connector-host contract``. Return a
    :class:`~connector_core.testing.sandbox.SandboxFactory`, or ``None``
    when the plugin ships no sandbox (the kit then needs live settings).
    """


@hookspec(firstresult=True)
def contract_profile() -> ContractProfile | None:  # type: ignore[empty-body]
    """What the contract kit should expect of this plugin where marketplaces differ.

    Called by the contract-test kit and ``connector-host contract`` on this
    plugin only, once per check. Return a
    :class:`~connector_core.testing.profile.ContractProfile`: the re-fetch
    overlap the plugin asks for on purpose (re-yields of orders changed
    within it are expected, beyond it they are the "ignores the cursor"
    bug), whether its orders' totals add up, whether it ships part of an
    order. ``None`` means the defaults: no overlap, totals not checked, no
    partial shipments.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``connector-host`` command line.

    Called once when the CLI is built, on every plugin. Add commands or
    groups to ``cli``; a marketplace adds its sandbox under
    ``cli.commands["sandbox"]``. Return nothing.
    """

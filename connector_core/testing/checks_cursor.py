"""Contract checks of cursors: resuming loses nothing and repeats only the declared overlap; reads repeat exactly."""

from __future__ import annotations

import tempfile
from pathlib import Path

from connector_core.models import Order, RawOrder, to_json
from connector_core.store_context import StoreContext
from connector_core.testing.env import Env, changed_at, fail, short
from connector_core.testing.values import differences


def stale(env: Env, store: StoreContext, again: list[RawOrder], before: list[Order]) -> list[str]:
    """Keys re-yielded from a cursor that the declared overlap does not explain.

    With no overlap declared every re-yield is stale. With one, an order is
    stale when its last change is older than the newest change yielded
    before the cursor minus the overlap.
    """
    seen = {o.order_key for o in before}
    repeats = [r for r in again if r.order_key in seen]
    overlap = env.profile.refetch_overlap
    if not repeats or not overlap:
        return sorted({r.order_key for r in repeats})
    newest = max(changed_at(o) for o in before)
    return sorted({o.order_key for o in env.map_all(store, repeats) if changed_at(o) < newest - overlap})


def _overlap_note(env: Env) -> str:
    overlap = env.profile.refetch_overlap
    return f" (declared re-fetch overlap: {overlap})" if overlap else ""


def check_incremental(env: Env) -> str:
    """A fetch from the returned cursor repeats nothing beyond the declared overlap; orders added since appear."""
    store = env.store()
    raws, _, cursor = env.fetch(store)
    first = env.map_all(store, raws)
    if cursor is None:
        raise fail("fetch_orders gave no cursor: set FetchPage.cursor so the next sync resumes from there")
    again = env.fetch(store, cursor)[0]
    if bad := stale(env, store, again, first):
        raise fail(
            f"fetching from the cursor re-yielded unchanged orders {short(bad)}{_overlap_note(env)}: resume after "
            "the cursor (or declare the window you re-ask on purpose as refetch_overlap in contract_profile)"
        )
    if env.sandbox is None:
        return f"{len(first)} orders, then only the overlap again from the cursor{_overlap_note(env)}"
    added = set(env.sandbox.add_orders(3))
    second = env.fetch(store, cursor)[0]
    if missing := sorted(added - {r.order_key for r in second}):
        raise fail(f"orders {short(missing)} added after the first fetch did not come from its cursor")
    if bad := stale(env, store, second, first):
        raise fail(f"fetching from the cursor re-yielded orders older than it: {short(bad)}{_overlap_note(env)}")
    return _incremental_sync(env) + f"; cursor fetch brought the {len(added)} new orders{_overlap_note(env)}"


def _incremental_sync(env: Env) -> str:
    """Two syncs through the engine on a temporary order book, orders added in between."""
    from connector_core.db import OrderBook
    from connector_core.engine import Engine

    sandbox = env.need_sandbox("syncing twice")
    with tempfile.TemporaryDirectory() as tmp, OrderBook(Path(tmp) / "contract.db") as book:
        engine = Engine(env.host, book)
        book.add_store("contract", env.marketplace, env.settings)
        engine.sync("contract")
        sandbox.add_orders(2)
        engine.sync("contract")
        stored = [o.order_key for o in book.iter_orders("contract")]
        known = {str(o["order_key"]) for o in sandbox.orders()}
        expected = known - env.invalid_keys()
        if strays := sorted(set(stored) - known):
            raise fail(
                f"after two syncs the book holds keys {short(strays)} that name no sandbox order: the same "
                "order was stored twice under different keys; derive order_key from the marketplace id only"
            )
        if lost := sorted(expected - set(stored)):
            raise fail(
                f"after two syncs the book lacks {short(lost)} of the sandbox's {len(expected)} importable orders: "
                "nothing may be lost between syncs (save the cursor only with the orders it covers)"
            )
        report = engine.sync("contract")
        if report.inserted:
            raise fail(f"a third sync with nothing new inserted {report.inserted} orders: the cursor did not hold")
        return f"two syncs stored {len(stored)} orders, none twice"


def check_cursors(env: Env) -> str:
    """Two full reads map to identical orders; resuming from every intermediate cursor loses nothing."""
    store = env.store()
    raws, pages = env.read_pages(store)
    orders = {o.order_key: o for o in env.map_all(store, raws)}
    other = env.store()
    again = {o.order_key: o for o in env.map_all(other, env.fetch(other)[0])}
    if set(again) != set(orders):
        raise fail(
            f"two full reads yielded different orders ({short(sorted(set(orders) ^ set(again)))} in one only): "
            "a fresh store must see the same orders every time"
        )
    for key, order in orders.items():
        first, second = to_json(order), to_json(again[key])
        first.pop("store"), second.pop("store")
        if first != second:
            diff = next(iter(differences(first, second)), "some field")
            raise fail(
                f"two full reads mapped {key} differently ({diff}): map from the payload alone (no clock, no "
                "randomness, no state kept between calls)"
            )
    everything = {r.order_key for r in raws}
    resumed = 0
    seen: list[str] = []
    for number, page in enumerate(pages[:-1], start=1):
        seen.extend(page.keys)
        if page.cursor is None:
            continue
        resumed += 1
        rest = env.fetch(env.store(), page.cursor)[0]
        if lost := sorted(everything - set(seen) - {r.order_key for r in rest}):
            raise fail(
                f"resuming from the cursor given with page {number} lost {short(lost)}: a page's cursor must not "
                "run ahead of the orders yielded up to that page"
            )
        before = [orders[k] for k in seen if k in orders]
        if before and (bad := stale(env, store, rest, before)):
            raise fail(
                f"resuming from the cursor given with page {number} re-yielded {short(bad)}, older than the "
                f"cursor{_overlap_note(env)}: resume after it"
            )
    if not resumed:
        return f"{len(orders)} orders read twice, identical; one page only, so no intermediate cursor to resume from"
    return f"{len(orders)} orders read twice, identical; resumed from {resumed} intermediate cursors, nothing lost"

"""``/orders``: the list (filters, paging, sort, counts), one order, its actions, packing slips.

An order is named by its key (``/orders/<key>``); a key held by two stores
takes ``?store=NAME``. Accept and cancel call the marketplace at once (the
engine's :meth:`~connector_core.engine.Engine.accept` / ``cancel``); ship puts
a shipment in the outbox, sent by the store's next push. Several orders can
be shipped or printed together from the list (``/orders/bulk``).
"""

from __future__ import annotations

import attrs
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector_core import host_settings
from connector_core.db import OutboxEntry
from connector_core.errors import ConfigError, ConnectorError
from connector_core.models import CANONICAL_STATUSES, Order, to_json
from connector_core.web import actions
from connector_core.web.images import ImageFetcher
from connector_core.web.pages import (
    WebState,
    fail,
    flash,
    is_partial,
    read_form,
    redirect,
    render,
    state_of,
    wants_json,
)
from connector_core.web.queries import SORTS, OrderFilter, order_page
from connector_core.web.slips import SlipOrder, packing_slips

MAX_SELECTION = 200


def orders_page(request: Request) -> Response:
    """The orders list; JSON for scripts; the table alone for the page's own script."""
    state = state_of(request)
    try:
        f = OrderFilter.from_query(request.query_params, state.config.page_size)
    except ConfigError as err:
        raise fail(400, err.message) from None
    page = order_page(state.book().conn, f)
    if wants_json(request):
        return JSONResponse(
            {
                "total": page.total,
                "page": f.page,
                "pages": page.pages,
                "by_status": page.by_status,
                "orders": [attrs.asdict(line) for line in page.lines],
            }
        )
    context = {
        "page": page,
        "f": f,
        "stores": [s.name for s in state.book().list_stores()],
        "statuses": CANONICAL_STATUSES,
        "sorts": list(SORTS),
    }
    return render(request, "orders_table.html" if is_partial(request) else "orders.html", context)


def _resolve(state: WebState, key: str, store: str | None) -> tuple[str, str]:
    if store:
        state.book().get_order(store, key)
        return store, key
    stores = state.book().find_order_stores(key)
    if not stores:
        raise fail(404, f"no order {key!r} in the order book")
    if len(stores) > 1:
        raise fail(409, f"order {key!r} exists in stores {', '.join(stores)}: add ?store=NAME")
    return stores[0], key


def _shipments(state: WebState, store: str, key: str) -> list[OutboxEntry]:
    return list(state.book().order_shipments(store, key))


def _history(state: WebState, order: Order, shipments: list[OutboxEntry]) -> list[tuple[str, str]]:
    """What the book knows of the order's life, oldest first."""
    row = (
        state.book()
        .conn.execute(
            "SELECT created_at, updated_at FROM orders WHERE store = ? AND order_key = ?",
            (order.store, order.order_key),
        )
        .fetchone()
    )
    events = [(order.order_date.isoformat().replace("+00:00", "Z"), "placed on the marketplace")]
    if order.modified_date is not None:
        events.append((order.modified_date.isoformat().replace("+00:00", "Z"), "last changed on the marketplace"))
    changes = state.book().status_history(order.store, order.order_key)
    first = changes[0] if changes else None
    imported_as = (
        (first.old_status, first.old_marketplace_status)
        if first is not None
        else (order.status.value, order.marketplace_status.code)
    )
    events.append((row["created_at"], f"imported as {imported_as[0]} (marketplace status {imported_as[1]})"))
    for change in changes:
        by = "by the host" if change.source == "host" else "on the marketplace"
        what = f"{change.old_status} -> {change.new_status}" if change.old_status != change.new_status else ""
        if change.old_marketplace_status != change.new_marketplace_status:
            code = f"marketplace status {change.old_marketplace_status} -> {change.new_marketplace_status}"
            what = f"{what}, {code}" if what else code
        events.append((change.at, f"{what} ({by})"))
    for s in shipments:
        events.append((s.created_at, f"shipment #{s.id} recorded ({s.shipment.tracking_number})"))
        if s.pushed_at:
            events.append((s.pushed_at, f"shipment #{s.id} pushed"))
    return sorted(events)


def order_page_view(request: Request) -> Response:
    """One order: buyer, addresses, items with thumbnails, money, notes, history, shipments."""
    state = state_of(request)
    store, key = _resolve(state, request.path_params["key"], request.query_params.get("store"))
    order = state.book().get_order(store, key)
    shipments = _shipments(state, store, key)
    if wants_json(request):
        doc = to_json(order)
        doc.pop("raw", None)
        doc["shipments"] = [
            {
                "id": s.id,
                "state": s.state,
                "attempts": s.attempts,
                "last_error": s.last_error,
                "shipment": to_json(s.shipment),
                "result": None if s.result is None else to_json(s.result),
            }
            for s in shipments
        ]
        return JSONResponse(doc)
    return render(
        request,
        "order.html",
        {
            "order": order,
            "shipments": shipments,
            "history": _history(state, order, shipments),
            "info": state.host.marketplaces().get(order.marketplace),
            "statuses": CANONICAL_STATUSES,
            "error": None,
        },
    )


def _back(order: Order) -> str:
    return f"/orders/{order.order_key}?store={order.store}"


async def _order_of(request: Request, form: FormData) -> Order:
    state = state_of(request)
    store, key = _resolve(state, request.path_params["key"], str(form.get("store") or "") or None)
    return state.book().get_order(store, key)


def _ship_form(form: FormData, prefix: str = "", lines: bool = True) -> actions.ShipForm:
    def text(name: str) -> str:
        return str(form.get(prefix + name) or "")

    picked: dict[str, str] = {}
    if lines and form.get(prefix + "partial") == "on":
        for name in form:
            if name.startswith(prefix + "line."):
                picked[name.removeprefix(prefix + "line.")] = str(form.get(name) or "")
    return actions.ShipForm(
        tracking=text("tracking"),
        carrier=text("carrier"),
        service=text("service"),
        fee=text("fee"),
        notes_to_buyer=text("notes_to_buyer"),
        notify=form.get(prefix + "notify") == "on",
        lines=picked,
    )


async def order_action(request: Request) -> Response:
    """Accept, cancel, ship or annotate one order (``action`` in the path)."""
    action = request.path_params["action"]
    if action not in ("accept", "cancel", "ship", "notes"):
        raise fail(404, f"an order has no action {action!r}")
    form = await read_form(request)
    state = state_of(request)
    order = await _order_of(request, form)
    try:
        if action == "notes":
            notes = str(form.get("internal_notes") or "").strip()
            await run_in_threadpool(state.book().set_internal_notes, order.store, order.order_key, notes or None)
            message = "internal notes saved" if notes else "internal notes cleared"
        elif action == "accept":
            change = await run_in_threadpool(state.engine().accept, order.store, order.order_key)
            message = f"accepted on the marketplace (status {change.marketplace_status.code})"
        elif action == "cancel":
            reason = str(form.get("reason") or "").strip()
            if not reason:
                raise ConfigError("give a reason for the cancellation")
            change = await run_in_threadpool(state.engine().cancel, order.store, order.order_key, reason)
            message = f"cancelled on the marketplace (status {change.marketplace_status.code})"
        else:
            outbox_id = await run_in_threadpool(actions.ship, state.engine(), order, _ship_form(form))
            message = f"shipment #{outbox_id} is in the outbox; push the store to send it"
    except ConnectorError as err:
        if wants_json(request):
            return JSONResponse({"error": err.message}, status_code=400)
        shipments = _shipments(state, order.store, order.order_key)
        return render(
            request,
            "order.html",
            {
                "order": state.book().get_order(order.store, order.order_key),
                "shipments": shipments,
                "history": _history(state, order, shipments),
                "info": state.host.marketplaces().get(order.marketplace),
                "statuses": CANONICAL_STATUSES,
                "error": (action, err.message),
            },
            400,
        )
    if wants_json(request):
        return JSONResponse({"ok": True, "message": message})
    flash(request, f"{order.order_key}: {message}")
    return redirect(_back(order))


# -- several orders at once ------------------------------------------------------------------


def _selected(state: WebState, values: list[str]) -> list[Order]:
    """Orders named ``store/key`` (or a key alone when one store holds it)."""
    if not values:
        raise fail(400, "select at least one order")
    if len(values) > MAX_SELECTION:
        raise fail(400, f"select at most {MAX_SELECTION} orders at once")
    out = []
    for value in values:
        store, sep, key = value.partition("/")
        if not sep:
            store, key = _resolve(state, value, None)
        out.append(state.book().get_order(store, key))
    return out


def _selection(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


async def bulk(request: Request) -> Response:
    """From the list's selection: print the slips, or open the ship-many form."""
    form = await read_form(request)
    state = state_of(request)
    keys = _selection([str(v) for v in form.getlist("keys")])
    orders = _selected(state, keys)
    if form.get("action") == "print":
        return redirect("/packing-slips.pdf?keys=" + ",".join(f"{o.store}/{o.order_key}" for o in orders))
    return render(request, "ship_many.html", {"orders": orders, "results": None})


async def ship_many(request: Request) -> Response:
    """Record one shipment per selected order; one refused order does not stop the others."""
    form = await read_form(request)
    state = state_of(request)
    keys = _selection([str(v) for v in form.getlist("keys")])
    orders = _selected(state, keys)
    shared = _ship_form(form, lines=False)
    forms = [attrs.evolve(shared, tracking=str(form.get(f"tracking.{o.store}/{o.order_key}") or "")) for o in orders]
    results = await run_in_threadpool(actions.ship_many, state.engine(), orders, forms)
    if wants_json(request):
        return JSONResponse([{"order_key": k, "outcome": v} for k, v in results])
    failed = sum(v.startswith("error") for _, v in results)
    return render(request, "ship_many.html", {"orders": orders, "results": dict(results)}, 400 if failed else 200)


# -- packing slips --------------------------------------------------------------------------


def _slip(state: WebState, order: Order) -> SlipOrder:
    record = state.book().get_store(order.store)
    settings = host_settings.load(record.store_settings, store=record.name)
    latest = (
        state.book()
        .conn.execute(
            "SELECT json_extract(shipment, '$.notes_to_buyer') FROM outbox WHERE store = ? AND order_key = ?"
            " ORDER BY id DESC LIMIT 1",
            (order.store, order.order_key),
        )
        .fetchone()
    )
    return SlipOrder(order=order, settings=settings, notes_to_buyer=latest[0] if latest else None)


def _pdf(state: WebState, orders: list[Order], filename: str) -> Response:
    slips = [_slip(state, o) for o in orders]
    with ImageFetcher(
        timeout=state.config.image_timeout,
        max_bytes=state.config.image_max_bytes,
        allow_private=state.config.image_allow_private,
    ) as images:
        data = packing_slips(slips, images)
    return Response(
        data,
        media_type="application/pdf",
        headers={"content-disposition": f'inline; filename="{filename}"'},
    )


def packing_slip(request: Request) -> Response:
    """The packing slip of one order."""
    state = state_of(request)
    store, key = _resolve(state, request.path_params["key"], request.query_params.get("store"))
    order = state.book().get_order(store, key)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in order.order_number)
    return _pdf(state, [order], f"packing-slip-{safe}.pdf")


def packing_slips_view(request: Request) -> Response:
    """The packing slips of several orders, one after the other (``?keys=store/key,...``)."""
    state = state_of(request)
    keys = _selection(request.query_params.getlist("keys"))
    return _pdf(state, _selected(state, keys), "packing-slips.pdf")


def routes() -> list[BaseRoute]:
    """The routes of this module."""
    return [
        Route("/orders", orders_page, methods=["GET"]),
        Route("/orders/bulk", bulk, methods=["POST"]),
        Route("/orders/ship-many", ship_many, methods=["POST"]),
        Route("/packing-slips.pdf", packing_slips_view, methods=["GET"]),
        Route("/orders/{key}", order_page_view, methods=["GET"]),
        Route("/orders/{key}/packing-slip.pdf", packing_slip, methods=["GET"]),
        Route("/orders/{key}/{action}", order_action, methods=["POST"]),
    ]

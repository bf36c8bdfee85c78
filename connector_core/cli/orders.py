"""``connector-host orders list|show|accept|cancel|note|remap|export``."""

from __future__ import annotations

import sys
from typing import Any

import attrs
import click

from connector_core import export, hookimpl, shipments
from connector_core.cli.app import App, check_store, parse_when, pass_app, resolve_order, store_names, store_option
from connector_core.cli.output import UserError, out, out_json, showing, table
from connector_core.db.history import OrderFilter
from connector_core.db.rows import OutboxEntry
from connector_core.errors import ConnectorError
from connector_core.models import CANONICAL_STATUSES, LineItem, Order, Weight, to_json


def _weight(w: Weight | None) -> str:
    return f"{w.value} {w.unit}" if w is not None else ""


def _item_detail(i: LineItem) -> list[str]:
    bits = []
    if i.weight is not None:
        bits.append(f"weight {_weight(i.weight)}")
    if i.warehouse_location:
        bits.append(f"location {i.warehouse_location}")
    if i.ean or i.upc:
        bits.append(f"EAN {i.ean}" if i.ean else f"UPC {i.upc}")
    if i.brand:
        bits.append(f"brand {i.brand}")
    if i.image_url:
        bits.append(f"image {i.image_url}")
    return bits


def _show_order(order: Order, cancel_reason: str | None, outbox: list[OutboxEntry]) -> None:
    out(f"order {order.order_key} ({order.store}, {order.marketplace}{', site ' + order.site if order.site else ''})")
    out(f"  number:   {order.order_number}")
    out(f"  date:     {order.order_date.isoformat()}")
    code = order.marketplace_status.code
    name = f" {order.marketplace_status.name}" if order.marketplace_status.name else ""
    out(f"  status:   {order.status.value} (marketplace: {code}{name})")
    if cancel_reason:
        out(f"  cancel reason: {cancel_reason}")
    out(f"  customer: {order.customer.name or ''} {order.customer.email or ''} {order.customer.phone or ''}".rstrip())
    a = order.ship_to
    parts = [a.name, a.company, a.street1, a.street2, a.street3, a.postal_code, a.city, a.state, a.country]
    out(f"  ship to:  {', '.join(p for p in parts if p)}")
    if a.phone or a.email:
        out(f"            {' '.join(p for p in (a.phone, a.email) if p)}")
    if order.pickup_point is not None:
        p = order.pickup_point
        where = ""
        if p.address is not None:
            where = ", ".join(x for x in (p.address.street1, p.address.postal_code, p.address.city) if x)
        out(f"  pick-up point: {p.id} {p.type or ''} {p.name or ''} {where}".rstrip())
    if order.requested_shipping_service:
        out(f"  service:  {order.requested_shipping_service}")
    out(f"  payment:  {order.payment_method or 'unknown'} (fee {order.payment_fee} {order.currency})")
    out(
        f"  total:    {order.total} {order.currency} (items {order.item_total}, shipping {order.shipping_amount}"
        f", fee {order.payment_fee}{f', tax {order.tax_amount}' if order.tax_amount is not None else ''})"
    )
    for d in order.discounts:
        label = " ".join(x for x in (d.code, d.description) if x) or "discount"
        line = f" on line {d.line_key}" if d.line_key else ""
        out(f"  discount: {d.amount} {order.currency} {label}{line}")
    if order.total_weight is not None:
        out(f"  weight:   {_weight(order.total_weight)}")
    if order.gift:
        out(f"  gift:     yes{': ' + order.gift_message if order.gift_message else ''}")
    table(
        None,
        ["line", "sku", "name", "qty", "unit price", "discount", "options"],
        [
            (
                i.line_key,
                i.sku,
                i.name,
                i.quantity,
                i.unit_price,
                i.discount,
                ", ".join(f"{o.name}={o.value}" for o in i.options),
            )
            for i in order.items
        ],
        keep=("line", "sku"),
    )
    for i in order.items:
        detail = _item_detail(i)
        if detail:
            out(f"  {i.line_key}: {'; '.join(detail)}")
    if order.flags:
        out(f"  flags:    {', '.join(order.flags)}")
    if order.customer_notes:
        out(f"  buyer's notes:  {order.customer_notes}")
    if order.internal_notes:
        out(f"  internal notes: {order.internal_notes}")
    for e in outbox:
        fields = ", ".join(f"{f.field}={f.outcome.value}" for f in e.result.fields) if e.result else ""
        out(
            f"  shipment #{e.id}: {e.shipment.tracking_number} {e.shipment.carrier or ''} {e.state}"
            f"{' ' + fields if fields else ''}{' (' + e.last_error + ')' if e.last_error else ''}"
        )


def order_filter(
    app: App, store: str | None, status: str | None, since: str | None, until: str | None, search: str | None
) -> OrderFilter:
    """The filter of the order options shared by ``list`` and ``export`` (an unknown store refused)."""
    return OrderFilter(
        store=check_store(app, store),
        status=status,
        since=parse_when(since, "--since"),
        until=parse_when(until, "--until"),
        search=search,
    )


def filter_options(command: Any) -> Any:
    """``--store``, ``--status``, ``--since``, ``--until``, ``--search``."""
    for option in reversed(
        (
            store_option(),
            click.option("--status", type=click.Choice(CANONICAL_STATUSES), help="Only this canonical status."),
            click.option("--since", metavar="DATE", help="Orders placed on or after (YYYY-MM-DD[THH:MM], UTC)."),
            click.option("--until", metavar="DATE", help="Orders placed before (YYYY-MM-DD[THH:MM], UTC)."),
            click.option(
                "--search",
                metavar="TEXT",
                help="Part of the order key or number, buyer name or e-mail, ship-to name, or a SKU.",
            ),
        )
    ):
        command = option(command)
    return command


def add_order_commands(group: click.Group) -> None:
    """``orders list|show|accept|cancel|note|remap|export``."""

    @group.group("orders")
    def orders() -> None:
        """Look at and act on imported orders."""

    @orders.command("list")
    @filter_options
    @click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
    @click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many (to page on).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def orders_list(
        app: App,
        store: str | None,
        status: str | None,
        since: str | None,
        until: str | None,
        search: str | None,
        limit: int,
        offset: int,
        as_json: bool,
    ) -> None:
        """List orders, newest first (`showing N of M`: page on with --offset)."""
        page = app.book.page_orders(order_filter(app, store, status, since, until, search), limit=limit, offset=offset)
        if as_json:
            out_json([attrs.asdict(r) for r in page.rows])
            showing(page.showing("orders"), as_json=True)
            return
        if page.rows:
            table(
                None,
                ["store", "order key", "number", "date", "status", "marketplace", "total"],
                [
                    (
                        r.store,
                        r.order_key,
                        r.order_number,
                        r.order_date,
                        r.status,
                        r.marketplace_status,
                        f"{r.total} {r.currency}",
                    )
                    for r in page.rows
                ],
                keep=("order key",),
            )
        more = page.offset + len(page.rows) < page.total
        showing(page.showing("orders") + (f"; next: --offset {page.offset + len(page.rows)}" if more else ""))

    @orders.command("show")
    @click.argument("key")
    @store_option("The order's store (needed only when two stores share the key).")
    @click.option("--json", "as_json", is_flag=True, help="Print the canonical order JSON (with its shipments).")
    @pass_app
    def orders_show(app: App, key: str, store: str | None, as_json: bool) -> None:
        """Show one order: items with weights, locations, images and options; payment; shipments."""
        name, key = resolve_order(app, key, check_store(app, store))
        order = app.book.get_order(name, key)
        reason = app.book.get_cancel_reason(name, key)
        outbox = app.book.order_shipments(name, key)
        changes = app.book.status_history(name, key)
        if as_json:
            doc = to_json(order)
            doc["cancel_reason"] = reason
            doc["shipments"] = [shipments.describe(e) for e in outbox]
            doc["status_history"] = [attrs.asdict(c) for c in changes]
            out_json(doc)
        else:
            _show_order(order, reason, outbox)
            if changes:
                out("  status history:")
            for c in changes:
                by = "host" if c.source == "host" else "marketplace"
                out(
                    f"    {c.at}  {c.old_status} -> {c.new_status}"
                    f" (marketplace {c.old_marketplace_status} -> {c.new_marketplace_status}, by the {by})"
                )

    @orders.command("accept")
    @click.argument("key")
    @store_option("The order's store.")
    @pass_app
    def orders_accept(app: App, key: str, store: str | None) -> None:
        """Accept an order on its marketplace."""
        name, key = resolve_order(app, key, check_store(app, store))
        change = app.engine.accept(name, key)
        note = " (already accepted)" if change.already_applied else ""
        out(f"{key}: accepted{note}; marketplace status {change.marketplace_status.code}")

    @orders.command("cancel")
    @click.argument("key")
    @store_option("The order's store.")
    @click.option("--reason", help="Why (kept with the order; passed to the marketplace where it takes one).")
    @pass_app
    def orders_cancel(app: App, key: str, store: str | None, reason: str | None) -> None:
        """Cancel an order on its marketplace."""
        name, key = resolve_order(app, key, check_store(app, store))
        change = app.engine.cancel(name, key, reason)
        note = " (already cancelled)" if change.already_applied else ""
        kept = f"; reason kept: {reason}" if reason else ""
        out(f"{key}: cancelled{note}; marketplace status {change.marketplace_status.code}{kept}")

    @orders.command("note")
    @click.argument("key")
    @click.argument("text", required=False)
    @store_option("The order's store.")
    @click.option("--clear", is_flag=True, help="Remove the order's internal notes.")
    @pass_app
    def orders_note(app: App, key: str, text: str | None, store: str | None, clear: bool) -> None:
        """Set the internal notes of an order (kept by the host, never sent to the marketplace).

        Without TEXT and --clear, prints the current notes. Notes survive
        later syncs of the order.
        """
        name, key = resolve_order(app, key, check_store(app, store))
        if clear:
            app.book.set_internal_notes(name, key, None)
            out(f"{key}: internal notes cleared")
        elif text is None:
            out(app.book.get_order(name, key).internal_notes or "(no internal notes)")
        else:
            if not text.strip():
                raise click.UsageError("TEXT is empty; use --clear to remove the notes")
            app.book.set_internal_notes(name, key, text)
            out(f"{key}: internal notes saved")

    @orders.command("remap")
    @store_option("Only this store (default: every store).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def orders_remap(app: App, store: str | None, as_json: bool) -> None:
        """Apply the store's status mapping and the catalogue again to its stored orders (from their raw copies)."""
        engine = app.engine
        names = store_names(app, store)
        reports, failures = [], []
        for name in names:  # one store that fails never stops the others
            try:
                reports.append(engine.remap(name))
            except ConnectorError as err:
                if len(names) == 1:
                    raise
                failures.append(f"{name}: {err.message}")
        if as_json:
            out_json([attrs.asdict(r) for r in reports])
            if failures:
                raise UserError("; ".join(failures))
            return
        for r in reports:
            out(
                f"{r.store}: {r.orders} orders mapped again: {r.changed} changed, {r.unchanged} unchanged"
                + (f", {r.failed} no longer map (kept as they were)" if r.failed else "")
            )
            for line in r.errors[:20]:
                out(f"  {line}")
        if failures:
            raise UserError("; ".join(failures))

    @orders.command("export")
    @click.option("--format", "fmt", type=click.Choice(export.FORMATS), default="csv", show_default=True)
    @filter_options
    @click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="A file (default: stdout).")
    @pass_app
    def orders_export(
        app: App,
        fmt: str,
        store: str | None,
        status: str | None,
        since: str | None,
        until: str | None,
        search: str | None,
        output: str | None,
    ) -> None:
        """Export orders as CSV (one row per item) or JSON Lines (one order per line), streamed."""
        flt = order_filter(app, store, status, since, until, search)
        if output is None:
            count = export.export_orders(app.book, flt, fmt, sys.stdout)
            sys.stdout.flush()
        else:
            with open(output, "w", encoding="utf-8", newline="") as stream:
                count = export.export_orders(app.book, flt, fmt, stream)
        out(f"exported {count} order(s) as {fmt}{' to ' + output if output else ''}", err=True)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_order_commands(cli)

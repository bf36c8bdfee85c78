"""``connector-host orders list|show|accept|cancel|note``."""

from __future__ import annotations

import attrs
import click

from connector_core import hookimpl
from connector_core.cli.app import App, pass_app, resolve_order
from connector_core.cli.output import out, out_json, table
from connector_core.models import CANONICAL_STATUSES, Order, to_json


def _show_order(order: Order) -> None:
    out(f"order {order.order_key} ({order.store}, {order.marketplace}{', site ' + order.site if order.site else ''})")
    out(f"  number:   {order.order_number}")
    out(f"  date:     {order.order_date.isoformat()}")
    code = order.marketplace_status.code
    name = f" {order.marketplace_status.name}" if order.marketplace_status.name else ""
    out(f"  status:   {order.status.value} (marketplace: {code}{name})")
    out(f"  customer: {order.customer.name or ''} {order.customer.email or ''} {order.customer.phone or ''}".rstrip())
    a = order.ship_to
    parts = [a.name, a.street1, a.street2, a.postal_code, a.city, a.country]
    out(f"  ship to:  {', '.join(p for p in parts if p)}")
    if order.requested_shipping_service:
        out(f"  service:  {order.requested_shipping_service}")
    out(f"  total:    {order.total} {order.currency} (shipping {order.shipping_amount})")
    table(
        None,
        ["line", "sku", "name", "qty", "unit price", "options"],
        [
            (i.line_key, i.sku, i.name, i.quantity, i.unit_price, ", ".join(f"{o.name}={o.value}" for o in i.options))
            for i in order.items
        ],
    )
    if order.flags:
        out(f"  flags:    {', '.join(order.flags)}")
    if order.customer_notes:
        out(f"  buyer's notes:  {order.customer_notes}")
    if order.internal_notes:
        out(f"  internal notes: {order.internal_notes}")


def add_order_commands(group: click.Group) -> None:
    """``orders list|show|accept|cancel``."""

    @group.group("orders")
    def orders() -> None:
        """Look at and act on imported orders."""

    @orders.command("list")
    @click.option("--store", help="Only this store.")
    @click.option("--status", type=click.Choice(CANONICAL_STATUSES), help="Only this canonical status.")
    @click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def orders_list(app: App, store: str | None, status: str | None, limit: int, as_json: bool) -> None:
        """List orders, newest first."""
        if store is not None:
            app.book.get_store(store)
        rows = app.book.list_orders(store=store, status=status, limit=limit)
        if as_json:
            out_json([attrs.asdict(r) for r in rows])
            return
        if not rows:
            out("no orders")
            return
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
                for r in rows
            ],
        )

    @orders.command("show")
    @click.argument("key")
    @click.option("--store", help="The order's store (needed only when two stores share the key).")
    @click.option("--json", "as_json", is_flag=True, help="Print the canonical order JSON.")
    @pass_app
    def orders_show(app: App, key: str, store: str | None, as_json: bool) -> None:
        """Show one order."""
        order = app.book.get_order(*resolve_order(app, key, store))
        if as_json:
            out_json(to_json(order))
        else:
            _show_order(order)

    @orders.command("accept")
    @click.argument("key")
    @click.option("--store", help="The order's store.")
    @pass_app
    def orders_accept(app: App, key: str, store: str | None) -> None:
        """Accept an order on its marketplace."""
        name, key = resolve_order(app, key, store)
        change = app.engine.accept(name, key)
        note = " (already accepted)" if change.already_applied else ""
        out(f"{key}: accepted{note}; marketplace status {change.marketplace_status.code}")

    @orders.command("cancel")
    @click.argument("key")
    @click.option("--store", help="The order's store.")
    @click.option("--reason", help="Why (passed to the marketplace where it takes one).")
    @pass_app
    def orders_cancel(app: App, key: str, store: str | None, reason: str | None) -> None:
        """Cancel an order on its marketplace."""
        name, key = resolve_order(app, key, store)
        change = app.engine.cancel(name, key, reason)
        out(f"{key}: cancelled; marketplace status {change.marketplace_status.code}")

    @orders.command("note")
    @click.argument("key")
    @click.argument("text", required=False)
    @click.option("--store", help="The order's store.")
    @click.option("--clear", is_flag=True, help="Remove the order's internal notes.")
    @pass_app
    def orders_note(app: App, key: str, text: str | None, store: str | None, clear: bool) -> None:
        """Set the internal notes of an order (kept by the host, never sent to the marketplace).

        Without TEXT and --clear, prints the current notes. Notes survive
        later syncs of the order.
        """
        name, key = resolve_order(app, key, store)
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


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_order_commands(cli)

"""``connector-host shipments list|show|retry|drop``: the shipments outbox, and correcting it."""

from __future__ import annotations

import json

import click

from connector_core import hookimpl, shipments
from connector_core.cli.app import App, check_store, pass_app, store_option
from connector_core.cli.output import out, out_json, showing, table
from connector_core.db.history import Page
from connector_core.db.rows import OutboxEntry


def _conflict_text(e: OutboxEntry) -> str:
    if not e.conflict:
        return ""
    theirs = e.conflict.get("marketplace_tracking_number")
    ours = e.conflict.get("tracking_number")
    return f"ours {ours}, marketplace {theirs or 'unknown'}"


def add_shipment_commands(group: click.Group) -> None:
    """``shipments list|show|retry|drop``."""

    @group.group("shipments")
    def shipments_group() -> None:
        """The shipments outbox: what was sent, what waits, what failed or conflicts with the marketplace."""

    @shipments_group.command("list")
    @store_option()
    @click.option("--state", type=click.Choice(shipments.STATES), help="Only this state.")
    @click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
    @click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many (to page on).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def shipments_list(app: App, store: str | None, state: str | None, limit: int, offset: int, as_json: bool) -> None:
        """List outbox entries, oldest first."""
        check_store(app, store)
        book = app.book
        page = Page(
            book.list_outbox(store=store, state=state, limit=limit, offset=offset),
            book.count_outbox(store=store, state=state),
            offset,
        )
        if as_json:
            out_json([shipments.describe(e) for e in page.rows])
            showing(page.showing("shipments"), as_json=True)
            return
        if page.rows:
            table(
                None,
                ["id", "store", "order key", "tracking", "state", "attempts", "error / conflict"],
                [
                    (
                        e.id,
                        e.store,
                        e.order_key,
                        e.shipment.tracking_number,
                        e.state,
                        e.attempts,
                        _conflict_text(e) or e.last_error,
                    )
                    for e in page.rows
                ],
                keep=("id", "order key", "tracking"),
            )
        showing(page.showing("shipments"))

    @shipments_group.command("show")
    @click.argument("outbox_id", metavar="ID", type=int)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def shipments_show(app: App, outbox_id: int, as_json: bool) -> None:
        """Show one shipment: what was sent, the marketplace's answer per field, attempts and errors."""
        e = shipments.get(app.engine, outbox_id)
        if as_json:
            out_json(shipments.describe(e))
            return
        s = e.shipment
        out(f"shipment #{e.id} of order {e.order_key} ({e.store}): {e.state}")
        out(
            f"  recorded: {e.created_at}"
            + (f"; pushed {e.pushed_at}" if e.pushed_at else "")
            + (f"; dropped {e.dropped_at}" if e.dropped_at else "")
        )
        out(f"  attempts: {e.attempts}")
        sent = {
            "tracking_number": s.tracking_number,
            "carrier": s.carrier,
            "service": s.service,
            "carrier_fee": s.carrier_fee,
            "notes_to_buyer": s.notes_to_buyer,
            "notify_customer": s.notify_customer,
            "ship_date": s.ship_date.isoformat(),
        }
        results = {f.field: f for f in e.result.fields} if e.result and e.state != "conflict" else {}
        table(
            None,
            ["field", "value", "result", "detail"],
            [
                (
                    k,
                    json.dumps(v) if isinstance(v, bool) else v,
                    results[k].outcome.value if k in results else "",
                    results[k].detail if k in results else "",
                )
                for k, v in sent.items()
            ],
            keep=("field",),
        )
        if s.items:
            out("  items: " + ", ".join(f"{i.line_key} x{i.quantity}" for i in s.items))
        if e.result is not None and e.result.message:
            out(f"  marketplace: {e.result.message}")
        if e.conflict:
            out(f"  conflict: {_conflict_text(e)}")
        if e.last_error:
            out(f"  error: {e.last_error}")
        if e.state in ("failed", "conflict", "dropped"):
            out(f"  `shipments retry {e.id}` puts it back in the outbox; `shipments drop {e.id}` gives it up")

    @shipments_group.command("retry")
    @click.argument("outbox_id", metavar="ID", type=int)
    @pass_app
    def shipments_retry(app: App, outbox_id: int) -> None:
        """Put a failed, conflicting or dropped shipment back in the outbox; `push` sends it."""
        engine = app.engine
        before = shipments.get(engine, outbox_id).state
        entry = engine.retry_shipment(outbox_id)
        if before == "pending":
            out(f"shipment #{entry.id} ({entry.order_key}) is already waiting in the outbox; run `connector-host push`")
        else:
            out(
                f"shipment #{entry.id} ({entry.order_key}) is back in the outbox (was {before});"
                " run `connector-host push` to send it"
            )

    @shipments_group.command("drop")
    @click.argument("outbox_id", metavar="ID", type=int)
    @pass_app
    def shipments_drop(app: App, outbox_id: int) -> None:
        """Give up a shipment that is not pushed: it stays listed as dropped and is never sent."""
        engine = app.engine
        before = shipments.get(engine, outbox_id).state
        entry = engine.drop_shipment(outbox_id)
        note = " (already dropped)" if before == "dropped" else ""
        out(f"shipment #{entry.id} ({entry.order_key}) dropped{note}; it will not be pushed")


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_shipment_commands(cli)

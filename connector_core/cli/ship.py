"""``connector-host ship`` (a shipment into the outbox) and ``push`` (the outbox to the marketplaces)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import attrs
import click

from connector_core import hookimpl, shipments
from connector_core.cli.app import App, check_store, pass_app, resolve_order, store_names, store_option
from connector_core.cli.jobs import QUEUE_OPTION, queue_app
from connector_core.cli.jobs import enqueue as enqueue_jobs
from connector_core.cli.output import UserError, out, out_json
from connector_core.cli.sync import concurrency_options
from connector_core.errors import ConfigError
from connector_core.models import Order, Shipment, ShipmentItem, to_json
from connector_core.push.outbox import PushReport


def push_lines(report: PushReport) -> list[str]:
    lines = [
        f"{report.store}: {report.pushed} pushed ({report.already_applied} already there), "
        f"{report.retry} to retry, {report.failed} failed"
        + (f", {report.conflicts} in conflict with the marketplace" if report.conflicts else "")
    ]
    for o in report.outcomes:
        fields = ""
        if o.result is not None:
            fields = " " + ", ".join(f"{f.field}={f.outcome.value}" for f in o.result.fields)
        error = f" ({o.error})" if o.error else ""
        if o.state == "conflict":
            fields = ""  # nothing of it was taken: a per-field "sent" would say otherwise
        lines.append(f"  #{o.outbox_id} {o.order_key}: {o.state}{error}{fields}")
    if report.failed or report.conflicts:
        lines.append("  see `connector-host shipments list --state failed|conflict`; `shipments retry|drop ID`")
    return lines


def shipment_lines(order: Order, specs: Sequence[str]) -> tuple[ShipmentItem, ...]:
    """``LINE_KEY[:QTY]`` options as shipment items, checked against the order's lines."""
    ordered = {item.line_key: item.quantity for item in order.items}
    items = []
    for spec in specs:
        key, _, qty_text = spec.rpartition(":") if ":" in spec and spec not in ordered else (spec, "", "")
        if key not in ordered:
            known = ", ".join(ordered) or "none"
            raise ConfigError(f"--line {spec}: the order has no line {key!r} (its lines: {known})")
        try:
            qty = int(qty_text) if qty_text else ordered[key]
        except ValueError:
            raise ConfigError(f"--line {spec}: the quantity must be a whole number, as in {key}:1") from None
        if not 1 <= qty <= ordered[key]:
            raise ConfigError(f"--line {spec}: the quantity must be between 1 and {ordered[key]} (ordered)")
        items.append(ShipmentItem(key, qty))
    return tuple(items)


def add_ship_commands(group: click.Group) -> None:
    """``ship`` and ``push``."""

    @group.command("ship")
    @click.argument("order")
    @click.option("--tracking", required=True, help="Tracking number.")
    @click.option("--carrier", help="Carrier, e.g. Colissimo.")
    @click.option("--service", help="Carrier service, e.g. Express.")
    @click.option("--cost", help="What the carrier charged (decimal).")
    @click.option("--notes-to-buyer", help="A note for the buyer.")
    @click.option("--no-notify", is_flag=True, help="Ask the marketplace not to notify the buyer.")
    @click.option(
        "--force",
        is_flag=True,
        help="Record it even though the order already has a shipment with another tracking number.",
    )
    @click.option(
        "--line",
        "lines",
        multiple=True,
        metavar="LINE_KEY[:QTY]",
        help="Ship only this line (all of it, or QTY of it); repeat for more lines. Default: the whole order.",
    )
    @click.option(
        "--enqueue",
        is_flag=True,
        help="Also queue a push job of the store for `worker` (in the same transaction when the queue is the book's"
        " PostgreSQL database).",
    )
    @QUEUE_OPTION
    @store_option("The order's store.")
    @pass_app
    def ship(
        app: App,
        order: str,
        tracking: str,
        carrier: str | None,
        service: str | None,
        cost: str | None,
        notes_to_buyer: str | None,
        no_notify: bool,
        force: bool,
        lines: tuple[str, ...],
        enqueue: bool,
        queue: str | None,
        store: str | None,
    ) -> None:
        """Record a shipment in the outbox (sent by `push`); --line ships part of the order.

        Refused for a cancelled order, and for an order that already has a
        shipment with another tracking number (unless --force, or --line: a
        partial shipment is a parcel of its own).
        """
        name, key = resolve_order(app, order, check_store(app, store))
        items = shipment_lines(app.book.get_order(name, key), lines) if lines else ()
        fee = None if cost is None else shipments.parse_amount(cost, "--cost")
        shipment = Shipment(
            store=name,
            order_key=key,
            tracking_number=tracking,
            ship_date=datetime.now(UTC),
            carrier=carrier,
            service=service,
            carrier_fee=fee,
            notes_to_buyer=notes_to_buyer,
            notify_customer=not no_notify,
            items=items,
        )
        if enqueue:
            from connector_core.jobs.queue import queue_url, ship_queued

            papp = queue_app(app, queue)
            with papp.open():
                in_book = queue_url(queue, app.db) == app.db
                done, job = ship_queued(app.engine, papp, shipment, force=force, in_book=in_book)
            if done.state == "pending":
                waits = "a push of the store is already waiting" if job is None else f"push queued as job {job}"
                out(f"shipment for {key} is in the outbox as #{done.outbox_id}; {waits}")
                return
        else:
            done = app.engine.ship(shipment, force=force)
        if done.new:
            out(f"shipment for {key} is in the outbox as #{done.outbox_id}; run `connector-host push` to send it")
        elif done.state == "pushed":
            out(f"shipment for {key} was already pushed (#{done.outbox_id}); nothing to do")
        elif done.state == "pending":
            out(f"shipment for {key} is already in the outbox as #{done.outbox_id}; run `connector-host push`")
        else:
            out(
                f"shipment for {key} is already in the outbox as #{done.outbox_id}, {done.state}: see"
                f" `shipments show {done.outbox_id}`; `shipments retry {done.outbox_id}` sends it again"
            )

    @group.command("push")
    @store_option("Only this store (default: every store).")
    @concurrency_options("shipments of a store pushed at once")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.option("--enqueue", is_flag=True, help="Queue one push job per store for `worker` instead of pushing here.")
    @QUEUE_OPTION
    @pass_app
    def push(
        app: App, store: str | None, concurrency: int, processes: int, as_json: bool, enqueue: bool, queue: str | None
    ) -> None:
        """Send the shipments waiting in the outbox to their marketplaces."""
        if enqueue:
            enqueue_jobs(app, "push", store_names(app, store), queue)
            return
        reports = [
            app.engine.push(name, concurrency=concurrency, processes=processes) for name in store_names(app, store)
        ]
        if as_json:
            out_json(
                [
                    {
                        **{k: v for k, v in attrs.asdict(r).items() if k != "outcomes"},
                        "outcomes": [
                            {
                                "outbox_id": o.outbox_id,
                                "order_key": o.order_key,
                                "state": o.state,
                                "error": o.error,
                                "result": None if o.result is None or o.state == "conflict" else to_json(o.result),
                            }
                            for o in r.outcomes
                        ],
                    }
                    for r in reports
                ]
            )
        else:
            for r in reports:
                for line in push_lines(r):
                    out(line)
        failed = sum(r.failed for r in reports)
        conflicts = sum(r.conflicts for r in reports)
        if failed or conflicts:
            what = [f"{failed} shipment(s) refused by the marketplace"] if failed else []
            what += [f"{conflicts} shipment(s) in conflict with what the marketplace holds"] if conflicts else []
            raise UserError(f"{' and '.join(what)}: see above")


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_ship_commands(cli)

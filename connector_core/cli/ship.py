"""``connector-host ship`` (a shipment into the outbox) and ``push`` (the outbox to the marketplaces)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import attrs
import click

from connector_core import hookimpl
from connector_core.cli.app import App, pass_app, resolve_order, store_names
from connector_core.cli.output import UserError, out, out_json
from connector_core.cli.sync import concurrency_options
from connector_core.errors import ConfigError
from connector_core.models import Shipment, to_json
from connector_core.push.outbox import PushReport


def push_lines(report: PushReport) -> list[str]:
    lines = [
        f"{report.store}: {report.pushed} pushed ({report.already_applied} already there), "
        f"{report.retry} to retry, {report.failed} failed"
    ]
    for o in report.outcomes:
        fields = ""
        if o.result is not None:
            fields = " " + ", ".join(f"{f.field}={f.outcome.value}" for f in o.result.fields)
        error = f" ({o.error})" if o.error else ""
        lines.append(f"  #{o.outbox_id} {o.order_key}: {o.state}{error}{fields}")
    return lines


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
    @click.option("--store", help="The order's store.")
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
        store: str | None,
    ) -> None:
        """Record a shipment in the outbox (sent by `push`)."""
        name, key = resolve_order(app, order, store)
        try:
            fee = None if cost is None else Decimal(cost)
        except InvalidOperation:
            raise ConfigError(f"--cost must be a decimal amount, got {cost!r}") from None
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
        )
        outbox_id = app.engine.record_shipment(shipment)
        out(f"shipment for {key} is in the outbox as #{outbox_id}; run `connector-host push` to send it")

    @group.command("push")
    @click.option("--store", help="Only this store (default: every store).")
    @concurrency_options("shipments of a store pushed at once")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def push(app: App, store: str | None, concurrency: int, processes: int, as_json: bool) -> None:
        """Send the shipments waiting in the outbox to their marketplaces."""
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
                                "result": None if o.result is None else to_json(o.result),
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
        if failed:
            raise UserError(f"{failed} shipment(s) refused by the marketplace: see above")


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_ship_commands(cli)

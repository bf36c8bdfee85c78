"""Command line for host-side data: store settings, the product catalogue, customer e-mails.

::

    connector-host stores settings NAME [--set key=value ...] [--json]
    connector-host products import FILE.csv
    connector-host products import --from-store NAME
    connector-host products list [--json]
    connector-host notifications list [--store NAME] [--state STATE] [--json]
    connector-host notifications retry [--store NAME] [ID ...] [--json]

Registered through ``register_commands`` after the ``stores`` group exists.
"""

from __future__ import annotations

import json
from typing import Any

import click

from connector_core import catalogue, hookimpl, host_settings, notify
from connector_core.cli.app import App, check_store, complete_stores, pass_app, store_argument, store_option
from connector_core.cli.output import out, out_json, showing, table
from connector_core.cli.secret_input import warn_secrets_in_argv
from connector_core.db.history import Page
from connector_core.errors import ConfigError
from connector_core.models import to_json


def _flatten(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(_flatten(value, name + "."))
        else:
            rows.append((name, value))
    return rows


def _typed(value: Any) -> str:
    """A setting's value as ``--set`` takes it: ``true``/``false``, ``null``, numbers, text as it is."""
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return str(value)


def add_settings_commands(group: click.Group) -> None:
    """Add ``stores settings``, ``products`` and ``notifications`` to ``group``."""
    stores = group.commands.get("stores")
    if not isinstance(stores, click.Group):  # pragma: no cover - the core always has it
        raise ConfigError("the stores command group is missing")

    @stores.command("settings")
    @store_argument()
    @click.option(
        "--set", "pairs", multiple=True, metavar="KEY=VALUE", help="e.g. notifications.shipment_confirmation=true"
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def stores_settings(app: App, name: str, pairs: tuple[str, ...], as_json: bool) -> None:
        """Show or change a store's host settings: branding, notifications, smtp, products.

        Keys are dotted (branding.display_name, notifications.copy_to_seller,
        smtp.host, products.precedence ...); values are typed by the settings
        schema (true/false, numbers, null). Secrets are shown as ***.
        """
        record = app.book.get_store(name)
        stored = dict(record.store_settings)
        warn_secrets_in_argv(host_settings.schema(), pairs)
        if pairs:
            stored = host_settings.apply_assignments(stored, pairs, store=name)
            app.book.update_store(name, store_settings=stored)
        doc = host_settings.validate(stored, store=name)
        host_settings.register_secrets(doc)
        shown = host_settings.masked(doc)
        if as_json:
            out_json({"store": name, "settings": shown, "set": sorted(k for k, _ in _flatten(stored))})
            return
        explicit = {k for k, _ in _flatten(stored)}
        rows = [(key, _typed(v), "" if key in explicit else "default") for key, v in _flatten(shown)]
        if pairs:
            out(f"saved {len(pairs)} setting(s) of store {name}")
        table(f"host settings of {name}", ["key", "value", ""], rows)

    @group.group("products")
    def products() -> None:
        """The host's product catalogue (weights, locations, images, EAN/UPC by SKU)."""

    @products.command("import")
    @click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
    @click.option(
        "--from-store",
        "from_store",
        metavar="NAME",
        help="Import the store's marketplace catalogue.",
        shell_complete=complete_stores,
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def products_import(app: App, file: str | None, from_store: str | None, as_json: bool) -> None:
        """Import a catalogue CSV file (every row or none), or a store's marketplace catalogue.

        CSV columns (first row): sku, name, weight, weight_unit (g, kg, oz,
        lb), warehouse_location, image_url, ean, upc. Only sku is required;
        empty cells keep what the catalogue already has.
        """
        if (file is None) == (from_store is None):
            raise ConfigError("give either FILE.csv or --from-store NAME")
        if file is not None:
            report = catalogue.import_csv(app.book.conn, file)
        else:
            assert from_store is not None
            result = app.engine.import_catalogue(from_store)
            if result is None:
                marketplace = app.book.get_store(from_store).marketplace
                raise ConfigError(f"the {marketplace} plugin has no catalogue export; import a CSV file instead")
            report = result
        if as_json:
            out_json(
                {"source": report.source, "rows": report.rows, "inserted": report.inserted, "updated": report.updated}
            )
            return
        out(f"imported {report.rows} product(s) from {report.source}: {report.inserted} new, {report.updated} updated")

    @products.command("list")
    @click.option("--search", metavar="TEXT", help="A part of the SKU or the name.")
    @click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True)
    @click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many (to page on).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def products_list(app: App, search: str | None, limit: int, offset: int, as_json: bool) -> None:
        """List the catalogue by SKU."""
        entries, total = catalogue.page_entries(app.book.conn, limit=limit, offset=offset, search=search)
        page = Page(entries, total, offset)
        if as_json:
            out_json([to_json(e) for e in entries])
            showing(page.showing("products"), as_json=True)
            return
        showing(page.showing("products"))
        table(
            None,
            ["sku", "name", "weight", "location", "image", "ean", "upc"],
            [
                (
                    e.sku,
                    e.name,
                    f"{e.weight.value} {e.weight.unit}" if e.weight else None,
                    e.warehouse_location,
                    e.image_url,
                    e.ean,
                    e.upc,
                )
                for e in entries
            ],
            keep=("sku",),
        )

    @group.group("notifications")
    def notifications() -> None:
        """Customer e-mails (shipment confirmations): what was sent, what waits, what failed."""

    def _rows(items: list[notify.Notification]) -> list[dict[str, Any]]:
        return [
            {
                "id": n.id,
                "store": n.store,
                "order_key": n.order_key,
                "outbox_id": n.outbox_id,
                "recipients": list(n.recipients),
                "state": n.state,
                "attempts": n.attempts,
                "last_error": n.last_error,
                "message_id": n.message_id,
                "created_at": n.created_at,
                "sent_at": n.sent_at,
                "next_attempt_at": n.next_attempt_at,
            }
            for n in items
        ]

    def _print(items: list[notify.Notification], title: str) -> None:
        table(
            title,
            ["id", "store", "order", "to", "state", "attempts", "sent", "last error"],
            [
                (n.id, n.store, n.order_key, ", ".join(n.recipients), n.state, n.attempts, n.sent_at, n.last_error)
                for n in items
            ],
            keep=("id", "order"),
        )

    @notifications.command("list")
    @store_option()
    @click.option("--state", type=click.Choice(notify.STATES), help="Only this state.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def notifications_list(app: App, store: str | None, state: str | None, as_json: bool) -> None:
        """List customer e-mails, oldest first."""
        check_store(app, store)
        items = notify.list_notifications(app.book.conn, store=store, state=state)
        if as_json:
            out_json(_rows(items))
            return
        _print(items, f"{len(items)} notification(s)")

    @notifications.command("retry")
    @click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
    @store_option()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def notifications_retry(app: App, ids: tuple[int, ...], store: str | None, as_json: bool) -> None:
        """Put failed e-mails back in the queue and send every e-mail that is due now."""
        check_store(app, store)
        requeued = notify.retry_failed(app.book.conn, store=store, ids=ids)
        names = [store] if store else sorted({n.store for n in notify.list_notifications(app.book.conn)})
        sent = retrying = failed = 0
        engine = app.engine
        for name in names:
            context = engine.store_context(name)
            try:
                report = engine.deliver_notifications(context)
            finally:
                context.http.close()
            sent, retrying, failed = sent + report.sent, retrying + report.retrying, failed + report.failed
        summary = {"requeued": requeued, "sent": sent, "retrying": retrying, "failed": failed}
        if as_json:
            out_json(summary)
            return
        out(f"requeued {requeued} failed e-mail(s); sent {sent}, will retry {retrying}, failed {failed}")


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_settings_commands(cli)

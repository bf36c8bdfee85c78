"""``connector-host stores add|list|show|remove|status-map``."""

from __future__ import annotations

import json

import click

from connector_core import hookimpl, host_settings, quota
from connector_core import stores as store_ops
from connector_core.cli.app import App, pass_app, store_argument
from connector_core.cli.output import out, out_json, table
from connector_core.cli.secret_input import gathered, secret_options
from connector_core.clock import utc_iso
from connector_core.models import CANONICAL_STATUSES
from connector_core.secrets import masked, register_settings
from connector_core.settings_input import plugin_settings
from connector_core.store_context import StoreContext


def add_store_commands(group: click.Group) -> None:
    """``stores add|list|show|remove|status-map``."""

    @group.group("stores")
    def stores() -> None:
        """Configure stores (one marketplace account each)."""

    @stores.command("add")
    @click.argument("marketplace")
    @click.option("--name", required=True, help="A name for the store (letters, digits, . _ -).")
    @click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="A setting; repeat. Lists: a,b,c.")
    @click.option("--settings", "settings_file", type=click.Path(exists=True, dir_okay=False), help="JSON settings.")
    @secret_options
    @pass_app
    def stores_add(
        app: App,
        marketplace: str,
        name: str,
        pairs: tuple[str, ...],
        settings_file: str | None,
        secret_keys: tuple[str, ...],
        env_pairs: tuple[str, ...],
    ) -> None:
        """Add a store: validate its settings, connect, and save it only if that worked.

        Give secrets with --secret KEY (prompt or stdin), --set-from-env KEY=VAR or
        --settings FILE, never --set: a command line is visible to every user in `ps`.
        """
        schema = app.host.info(marketplace).settings_schema
        settings = plugin_settings(schema, settings_file, gathered(schema, pairs, secret_keys, env_pairs))
        account = store_ops.add_store(app.book, app.host, marketplace, name, settings)
        out(f"added store {name} ({marketplace}), connected as {account}")

    @stores.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def stores_list(app: App, as_json: bool) -> None:
        """List stores: orders held, sync cursor, and a quota block while one lasts."""
        book = app.book
        blocks = quota.store_blocks(app.host, book)
        rows = []
        for s in book.list_stores():
            until = blocks.get(s.name)
            rows.append(
                {
                    "name": s.name,
                    "marketplace": s.marketplace,
                    "orders": book.count_orders(s.name),
                    "cursor": book.get_cursor(s.name),
                    "created_at": s.created_at,
                    "quota_blocked_until": None if until is None else utc_iso(until),
                    "quota": "" if until is None else f"blocked until {quota.clock_time(until)}",
                }
            )
        if as_json:
            out_json([{k: v for k, v in r.items() if k != "quota"} for r in rows])
        elif not rows:
            out("no stores yet: add one with `connector-host stores add MARKETPLACE --name NAME`")
        else:
            table(
                None,
                ["name", "marketplace", "orders", "cursor", "created", "quota"],
                [
                    (r["name"], r["marketplace"], r["orders"], json.dumps(r["cursor"]), r["created_at"], r["quota"])
                    for r in rows
                ],
                keep=("name",),
            )

    @stores.command("update")
    @store_argument()
    @click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="A setting to change; repeat.")
    @click.option("--settings", "settings_file", type=click.Path(exists=True, dir_okay=False), help="JSON settings.")
    @pass_app
    def stores_update(app: App, name: str, pairs: tuple[str, ...], settings_file: str | None) -> None:
        """Change some settings of a store (sites, partner ID, timeout ...), keeping its orders.

        The new settings are validated and the store connected with them
        before anything is saved, as `stores add` does.
        """
        record = app.book.get_store(name)
        if not pairs and settings_file is None:
            raise click.UsageError("give the settings to change: --set KEY=VALUE (repeat) or --settings FILE")
        schema = app.host.info(record.marketplace).settings_schema
        changes = plugin_settings(schema, settings_file, pairs)
        _, account = store_ops.update_store(app.book, app.host, name, changes)
        out(f"updated store {name} ({', '.join(sorted(changes))}), connected as {account}")

    @stores.command("check")
    @store_argument()
    @pass_app
    def stores_check(app: App, name: str) -> None:
        """Test the store's connection now with its saved settings (nothing is changed)."""
        record = app.book.get_store(name)
        result = store_ops.connect(app.host, record.marketplace, name, record.settings)
        out(f"store {name} ({record.marketplace}): connected as {result.account}")

    @stores.command("show")
    @store_argument()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def stores_show(app: App, name: str, as_json: bool) -> None:
        """Show a store: settings (secrets masked), status mapping, cursor."""
        record = app.book.get_store(name)
        info = app.host.info(record.marketplace)
        register_settings(info.settings_schema, record.settings)
        context = StoreContext(name=name, marketplace=record.marketplace, settings={}, status_map={})
        try:
            mapping = []
            for code in sorted(set(info.statuses) | set(record.status_map)):
                mapping.append(
                    {
                        "code": code,
                        "name": info.statuses.get(code),
                        "default": app.host.map_status(context, code).value,
                        "custom": record.status_map.get(code),
                    }
                )
        finally:
            context.http.close()
        data = {
            "name": record.name,
            "marketplace": record.marketplace,
            "settings": masked(info.settings_schema, record.settings),
            "status_map": record.status_map,
            "store_settings": host_settings.masked(record.store_settings),
            "cursor": app.book.get_cursor(name),
            "orders": app.book.count_orders(name),
            "created_at": record.created_at,
            "status_mapping": mapping,
        }
        if as_json:
            out_json(data)
            return
        out(f"store {record.name} ({record.marketplace}), {data['orders']} orders, created {record.created_at}")
        out(f"cursor: {json.dumps(data['cursor'])}")
        table("settings", ["key", "value"], [(k, json.dumps(v)) for k, v in data["settings"].items()])
        table(
            "status mapping",
            ["code", "name", "default", "custom"],
            [(m["code"], m["name"], m["default"], m["custom"] or "") for m in mapping],
        )

    @stores.command("remove")
    @store_argument()
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @pass_app
    def stores_remove(app: App, name: str, yes: bool) -> None:
        """Remove a store with its orders, cursor, outbox and rejects."""
        app.book.get_store(name)
        if not yes:
            click.confirm(f"remove store {name} and all its orders?", abort=True)
        app.book.remove_store(name)
        out(f"removed store {name}")

    @stores.command("status-map")
    @store_argument()
    @click.argument("marketplace_status")
    @click.argument("canonical_status", type=click.Choice([*CANONICAL_STATUSES, "default"]))
    @pass_app
    def stores_status_map(app: App, name: str, marketplace_status: str, canonical_status: str) -> None:
        """Map a marketplace status to a canonical status for one store ('default' removes the override)."""
        record = app.book.get_store(name)
        known = app.host.info(record.marketplace).statuses
        if known and marketplace_status not in known:
            out(f"warning: {record.marketplace} does not list status {marketplace_status!r}", err=True)
        status = None if canonical_status == "default" else canonical_status
        app.book.set_status_map(name, marketplace_status, status)
        target = status or "the plugin's default"
        out(f"{name}: marketplace status {marketplace_status} -> {target}")
        out(
            f"new and changed orders get it at the next sync; `connector-host orders remap --store {name}`"
            " applies it to the orders already stored"
        )


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_store_commands(cli)

"""The ``connector-host`` command line.

Built from one function per command group (``add_store_commands`` ...), so
features and plugins can add theirs: a plugin's ``register_commands`` hook is
called with the ``cli`` group when the command line is built
(:func:`build_cli`).

The plugin host comes from the :class:`App` in the click context. ``main()``
builds it from the installed entry points plus any plugins named in
``CONNECTOR_HOST_EXTRA`` (comma-separated ``module`` or ``module:attribute``);
tests pass their own: ``CliRunner().invoke(cli, args, obj=App(host_factory=...))``.

Every line printed goes through :func:`connector_core.secrets.redact`. A
:class:`~connector_core.errors.ConnectorError` becomes one line
``error: ...`` on stderr and exit status 1; usage errors exit with 2.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import weakref
import zlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from typing import Any

import attrs
import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from connector_core import __version__, host_settings
from connector_core.engine import Engine, PushReport, SyncReport
from connector_core.errors import ConfigError, ConnectorError
from connector_core.models import CANONICAL_STATUSES, Order, Shipment, to_json
from connector_core.parallel import MAX_PROCESSES
from connector_core.plugins import PluginHost, get_plugin_manager
from connector_core.secrets import install_log_redaction, masked_settings, redact, redact_obj, register_settings
from connector_core.store import OrderBook
from connector_core.store_context import StoreContext
from connector_core.testing.cli import add_contract_command
from connector_core.workers import MAX_WORKERS, WORKERS_ENV

EXTRA_ENV = "CONNECTOR_HOST_EXTRA"

HostFactory = Callable[[], PluginHost]


def extra_plugins(environ: dict[str, str] | None = None) -> list[object]:
    """Import the plugins named in ``CONNECTOR_HOST_EXTRA`` (``module`` or ``module:attribute``)."""
    raw = (environ if environ is not None else os.environ).get(EXTRA_ENV, "")
    plugins: list[object] = []
    for spec in filter(None, (s.strip() for s in raw.split(","))):
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
            plugins.append(getattr(module, attr) if attr else module)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{EXTRA_ENV}: cannot load plugin {spec!r}: {exc}") from None
    return plugins


def default_host() -> PluginHost:
    """The host of installed entry points plus ``CONNECTOR_HOST_EXTRA`` plugins."""
    return PluginHost(get_plugin_manager(plugins=extra_plugins()))


@attrs.define
class App:
    """State shared by the commands of one invocation: the plugin host and the order book."""

    host_factory: HostFactory = default_host
    db: str | None = None
    _host: PluginHost | None = None
    _book: OrderBook | None = None

    @property
    def host(self) -> PluginHost:
        """The plugin host (built on first use)."""
        if self._host is None:
            self._host = self.host_factory()
        return self._host

    @property
    def book(self) -> OrderBook:
        """The order book (opened on first use)."""
        if self._book is None:
            self._book = OrderBook(self.db)
        return self._book

    @property
    def engine(self) -> Engine:
        """An engine over the host and the book."""
        return Engine(self.host, self.book)

    def close(self) -> None:
        """Close the order book."""
        if self._book is not None:
            self._book.close()
            self._book = None


pass_app = click.make_pass_decorator(App)


# -- output ----------------------------------------------------------------------


class UserError(click.ClickException):
    """A failure the user can fix: one line on stderr, exit status 1, no traceback."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {redact(self.format_message())}", err=True)


def out(text: str = "", *, err: bool = False) -> None:
    """Print one line, secrets redacted."""
    click.echo(redact(text), err=err)


def out_json(value: Any) -> None:
    """Print a JSON document, secrets redacted."""
    click.echo(redact(json.dumps(redact_obj(value), indent=2, ensure_ascii=False, default=str)))


def console() -> Console:
    """A rich console on the current stdout (wide when not a terminal, so tables are not cut)."""
    stream = sys.stdout
    tty = stream.isatty()
    return Console(file=stream, width=None if tty else 200, no_color=not tty, highlight=False)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a rich table; every cell is plain text with secrets redacted."""
    t = Table(title=title, title_justify="left")
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*(Text(redact("" if v is None else str(v))) for v in row))
    console().print(t)


class HostGroup(click.Group):
    """A click group that turns :class:`ConnectorError` into a one-line error."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConnectorError as err:
            raise UserError(err.message) from None


# -- the group -------------------------------------------------------------------


@click.group(cls=HostGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="connector-host")
@click.option(
    "--db",
    envvar="CONNECTOR_HOST_DB",
    type=click.Path(dir_okay=False),
    help="Order book file [env CONNECTOR_HOST_DB; default $XDG_DATA_HOME/connector-host/orders.sqlite3].",
)
@click.option("-v", "--verbose", count=True, help="Log progress (-v) or everything (-vv) to stderr.")
@click.pass_context
def cli(ctx: click.Context, db: str | None, verbose: int) -> None:
    """Import marketplace orders into one order book, map statuses, push shipments back."""
    app = ctx.obj if isinstance(ctx.obj, App) else App()
    if db is not None:
        app.db = db
    ctx.obj = app
    ctx.call_on_close(app.close)
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        install_log_redaction([logging.getLogger("connector_core")])


def _store_names(app: App, store: str | None) -> list[str]:
    if store is not None:
        app.book.get_store(store)
        return [store]
    names = [s.name for s in app.book.list_stores()]
    if not names:
        raise ConfigError("no stores yet: add one with `connector-host stores add MARKETPLACE --name NAME`")
    return names


def _resolve_order(app: App, key: str, store: str | None) -> tuple[str, str]:
    if store is not None:
        return store, key
    stores = app.book.find_order_stores(key)
    if not stores:
        raise ConfigError(f"no order {key!r} in the order book: check `orders list`, or run `sync`")
    if len(stores) > 1:
        raise ConfigError(f"order {key!r} exists in stores {', '.join(stores)}: pass --store")
    return stores[0], key


# -- plugins ---------------------------------------------------------------------


def add_plugin_commands(group: click.Group) -> None:
    """``plugins``: installed marketplaces, versions and capability tables."""

    @group.command("plugins")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def plugins(app: App, as_json: bool) -> None:
        """List installed marketplace plugins and what each supports."""
        infos = app.host.marketplaces()
        if as_json:
            out_json(
                [
                    {
                        "name": i.name,
                        "version": i.version,
                        "title": i.title,
                        "description": i.description,
                        "settings_schema": i.settings_schema,
                        "capabilities": [to_json(c) for c in i.capabilities],
                        "statuses": i.statuses,
                    }
                    for i in infos.values()
                ]
            )
            return
        if not infos:
            out("no marketplace plugins installed")
            return
        table(
            "Marketplace plugins", ["name", "version", "title"], [(i.name, i.version, i.title) for i in infos.values()]
        )
        for info in infos.values():
            if info.capabilities:
                table(
                    f"{info.name} capabilities",
                    ["feature", "support", "note"],
                    [(c.feature, c.support.value, c.note) for c in info.capabilities],
                )


# -- stores ----------------------------------------------------------------------


def parse_setting(schema: dict[str, Any], key: str, value: str) -> Any:
    """Type one ``--set KEY=VALUE`` by the settings schema (lists are comma-separated)."""
    prop = schema.get("properties", {}).get(key, {})
    return _typed(prop, value, key)


def _typed(prop: dict[str, Any], value: str, key: str) -> Any:
    kind = prop.get("type", "string")
    kinds = kind if isinstance(kind, list) else [kind]
    kinds = [k for k in kinds if k != "null"] or ["string"]
    kind = kinds[0]
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            number = Decimal(value)
            return int(number) if number == number.to_integral_value() and "." not in value else float(number)
        if kind == "boolean":
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind == "array":
            items = prop.get("items", {})
            return [_typed(items, part.strip(), key) for part in value.split(",") if part.strip()]
        if kind == "object":
            return json.loads(value)
    except (ValueError, InvalidOperation, json.JSONDecodeError):
        raise ConfigError(f"setting {key!r} must be a {kind}, got {redact(value)!r}") from None
    return value


def build_settings(schema: dict[str, Any], settings_file: str | None, pairs: Sequence[str]) -> dict[str, Any]:
    """Settings from ``--settings FILE.json`` overridden by ``--set KEY=VALUE`` pairs."""
    settings: dict[str, Any] = {}
    if settings_file is not None:
        try:
            loaded = json.loads(Path(settings_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read settings from {settings_file}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{settings_file} must hold a JSON object of settings")
        settings.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes KEY=VALUE, got {redact(pair)!r}")
        settings[key.strip()] = parse_setting(schema, key.strip(), value)
    return settings


def add_store(
    app: App, marketplace: str, name: str, settings: dict[str, Any], store_settings: dict[str, Any] | None = None
) -> str:
    """Validate, connect and save a store; return the connected account. Nothing is saved on failure."""
    host = app.host
    info = host.info(marketplace)
    register_settings(info.settings_schema, settings)
    host.schemas.validate("canonical/store_settings", {"name": name, "marketplace": marketplace, "settings": settings})
    host.validate_settings(marketplace, settings)
    if app.book.has_store(name):
        raise ConfigError(f"a store named {name!r} already exists: pick another --name or `stores remove {name}`")
    context = StoreContext(name=name, marketplace=marketplace, settings=settings)
    try:
        result = host.connect(context)
    finally:
        context.http.close()
    app.book.add_store(name, marketplace, settings, store_settings=store_settings)
    return result.account


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
    @pass_app
    def stores_add(app: App, marketplace: str, name: str, pairs: tuple[str, ...], settings_file: str | None) -> None:
        """Add a store: validate its settings, connect, and save it only if that worked."""
        schema = app.host.info(marketplace).settings_schema
        settings = build_settings(schema, settings_file, pairs)
        account = add_store(app, marketplace, name, settings)
        out(f"added store {name} ({marketplace}), connected as {account}")

    @stores.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def stores_list(app: App, as_json: bool) -> None:
        """List stores."""
        book = app.book
        rows = [
            {
                "name": s.name,
                "marketplace": s.marketplace,
                "orders": book.count_orders(s.name),
                "cursor": book.get_cursor(s.name),
                "created_at": s.created_at,
            }
            for s in book.list_stores()
        ]
        if as_json:
            out_json(rows)
        elif not rows:
            out("no stores yet: add one with `connector-host stores add MARKETPLACE --name NAME`")
        else:
            table(
                None,
                ["name", "marketplace", "orders", "cursor", "created"],
                [(r["name"], r["marketplace"], r["orders"], json.dumps(r["cursor"]), r["created_at"]) for r in rows],
            )

    @stores.command("show")
    @click.argument("name")
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
            "settings": masked_settings(info.settings_schema, record.settings),
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
    @click.argument("name")
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
    @click.argument("name")
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
        out(f"{name}: marketplace status {marketplace_status} -> {target} (applies from the next sync)")


# -- sync ------------------------------------------------------------------------


def _sync_line(r: SyncReport) -> str:
    return (
        f"{r.store}: {r.fetched} fetched, {r.inserted} new, {r.updated} updated, {r.unchanged} unchanged, "
        f"{r.rejected} rejected, {r.accepted} accepted"
        + (f", {r.accept_errors} not accepted" if r.accept_errors else "")
    )


@contextlib.contextmanager
def _progress(store: str) -> Iterator[Callable[[SyncReport], None] | None]:
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    # refreshed by each page rather than by rich's refresh thread: a sync may fork map workers,
    # and a fork copies only the calling thread (a thread holding the terminal's lock must not be one)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
        auto_refresh=False,
    ) as p:
        task = p.add_task(f"{store}: connecting")
        p.refresh()

        def update(r: SyncReport) -> None:
            p.update(task, description=redact(_sync_line(r) + f" (page {r.pages})"), refresh=True)

        yield update


def sync_stores(
    app: App, names: Sequence[str], workers: int | None = None, *, concurrency: int = 1, processes: int = 1
) -> tuple[list[SyncReport], list[str]]:
    """Sync each store; return the reports and one error line per store that failed.

    With ``concurrency`` or ``processes`` above 1 and several stores, they are
    synced at once (:func:`connector_core.parallel.sync_all`), without
    per-page progress.
    """
    reports: list[SyncReport] = []
    errors: list[str] = []
    engine = app.engine
    engine.workers = workers
    if len(names) > 1 and (concurrency > 1 or processes > 1):
        for name, result in zip(
            names, engine.sync_all(names, concurrency=concurrency, processes=processes), strict=True
        ):
            if isinstance(result, ConnectorError):
                errors.append(f"{name}: {result.message}")
            else:
                reports.append(result)
        return reports, errors
    for name in names:
        try:
            with _progress(name) as progress:
                reports.append(engine.sync(name, progress=progress))
        except ConnectorError as err:
            if len(names) == 1:
                raise
            errors.append(f"{name}: {err.message}")
    return reports, errors


_WORKERS_OPTION = click.option(
    "--workers",
    type=click.IntRange(0, MAX_WORKERS),
    help="Worker processes that map a large sync's pages while this one fetches and stores"
    f" (0: map in this process; default: ${WORKERS_ENV}, else 1 on a machine of 2+ cores).",
)
"""``--workers`` of ``sync`` and ``run``."""


def _concurrency_options(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--concurrency`` and ``--processes``, shared by ``sync`` and ``push``."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--processes",
            type=click.IntRange(1, MAX_PROCESSES),
            default=1,
            show_default=True,
            help="Forked processes sharing that work (the threads split between them), to use more than one"
            " core; plugins' hooks then run in those processes.",
        )(command)
        return click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=1,
            show_default=True,
            help=f"Threads in all: {what} (marketplace calls mostly wait on the network).",
        )(command)

    return decorate


def add_sync_commands(group: click.Group) -> None:
    """``sync``."""

    @group.command("sync")
    @click.option("--store", help="Only this store (default: every store).")
    @_WORKERS_OPTION
    @_concurrency_options("stores synced at once")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def sync(app: App, store: str | None, workers: int | None, concurrency: int, processes: int, as_json: bool) -> None:
        """Import new and changed orders from the marketplaces."""
        reports, errors = sync_stores(
            app, _store_names(app, store), workers, concurrency=concurrency, processes=processes
        )
        if as_json:
            out_json([attrs.asdict(r) for r in reports])
        else:
            for r in reports:
                out(_sync_line(r))
        if errors:
            raise UserError("; ".join(errors))


# -- orders ----------------------------------------------------------------------


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
        order = app.book.get_order(*_resolve_order(app, key, store))
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
        name, key = _resolve_order(app, key, store)
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
        name, key = _resolve_order(app, key, store)
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
        name, key = _resolve_order(app, key, store)
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


# -- rejected --------------------------------------------------------------------


def add_rejected_commands(group: click.Group) -> None:
    """``rejected list|show|retry``."""

    @group.group("rejected")
    def rejected() -> None:
        """Payloads quarantined during sync, with their reason."""

    @rejected.command("list")
    @click.option("--store", help="Only this store.")
    @click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def rejected_list(app: App, store: str | None, limit: int, as_json: bool) -> None:
        """List quarantined payloads, newest first."""
        rows = app.book.list_rejected(store=store, limit=limit)
        if as_json:
            out_json([{k: v for k, v in attrs.asdict(r).items() if k != "payload"} for r in rows])
            return
        if not rows:
            out("no rejected payloads")
            return
        table(
            None,
            ["id", "store", "order key", "stage", "path", "reason", "when"],
            [(r.id, r.store, r.order_key, r.stage, r.path, r.reason, r.created_at) for r in rows],
        )

    @rejected.command("show")
    @click.argument("reject_id", metavar="ID", type=int)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def rejected_show(app: App, reject_id: int, as_json: bool) -> None:
        """Show one quarantined payload with its reason."""
        r = app.book.get_rejected(reject_id)
        if as_json:
            out_json(attrs.asdict(r))
            return
        out(f"rejected #{r.id} ({r.store}, order {r.order_key or '?'}), {r.created_at}")
        out(f"  stage:  {r.stage}")
        out(f"  path:   {r.path or '-'}")
        out(f"  reason: {r.reason}")
        out("  payload:")
        out(r.payload or "")

    @rejected.command("retry")
    @click.argument("reject_ids", metavar="ID...", type=int, nargs=-1)
    @click.option("--all", "retry_all", is_flag=True, help="Every payload not yet retried (of --store, if given).")
    @click.option("--store", help="With --all: only this store.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def rejected_retry(
        app: App, reject_ids: tuple[int, ...], retry_all: bool, store: str | None, as_json: bool
    ) -> None:
        """Re-validate and re-map quarantined payloads with the current plugin; import those that pass."""
        ids = list(reject_ids)
        if retry_all:
            ids += [r.id for r in app.book.list_rejected(store=store) if r.retried_at is None and r.id not in ids]
        if not ids:
            raise ConfigError("name the payloads to retry (IDs from `rejected list`), or pass --all")
        engine = app.engine
        outcomes = [engine.retry_rejected(i) for i in ids]
        if as_json:
            out_json([attrs.asdict(o) for o in outcomes])
        else:
            for o in outcomes:
                where = f" at {o.path}" if o.path else ""
                why = f": {o.reason}{where}" if o.reason else ""
                out(f"#{o.reject_id} {o.order_key or '?'}: {o.state}{why}")


# -- ship and push ---------------------------------------------------------------


def _push_lines(report: PushReport) -> list[str]:
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
        name, key = _resolve_order(app, order, store)
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
    @_concurrency_options("shipments of a store pushed at once")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def push(app: App, store: str | None, concurrency: int, processes: int, as_json: bool) -> None:
        """Send the shipments waiting in the outbox to their marketplaces."""
        reports = [
            app.engine.push(name, concurrency=concurrency, processes=processes) for name in _store_names(app, store)
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
                for line in _push_lines(r):
                    out(line)
        failed = sum(r.failed for r in reports)
        if failed:
            raise UserError(f"{failed} shipment(s) refused by the marketplace: see above")


# -- run -------------------------------------------------------------------------


def add_run_command(group: click.Group) -> None:
    """``run``: sync and push on a loop."""

    @group.command("run")
    @click.option("--interval", type=click.FloatRange(min=0), default=300, show_default=True, help="Seconds.")
    @click.option("--max-cycles", type=click.IntRange(min=1), help="Stop after this many cycles.")
    @_WORKERS_OPTION
    @pass_app
    def run(app: App, interval: float, max_cycles: int | None, workers: int | None) -> None:
        """Sync and push every store on a loop until Ctrl-C or SIGTERM."""
        stop = threading.Event()

        def handler(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {}
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, handler)
        cycles = 0
        try:
            while not stop.is_set():
                cycles += 1
                names = [s.name for s in app.book.list_stores()]
                for name in names:
                    if stop.is_set():
                        break
                    _run_store(app, name, workers)
                if max_cycles is not None and cycles >= max_cycles:
                    break
                stop.wait(interval)
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        out(f"stopped after {cycles} cycle(s)")


def _run_store(app: App, name: str, workers: int | None) -> None:
    try:
        reports, _ = sync_stores(app, [name], workers)
        out(_sync_line(reports[0]))
        for line in _push_lines(app.engine.push(name)):
            out(line)
    except ConnectorError as err:
        out(f"error: {name}: {err.message}", err=True)


# -- demo ------------------------------------------------------------------------


def _start_sandbox(factory: Callable[..., Any], orders: int) -> tuple[Any, bool]:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "orders" in params:
        return factory(orders=orders), True
    return factory(), False


def add_demo_command(group: click.Group) -> None:
    """``demo``: the whole loop against a marketplace's local sandbox."""

    @group.command("demo")
    @click.argument("marketplace", default="spartoo")
    @click.option("--orders", "count", type=click.IntRange(min=1), default=20, show_default=True)
    @click.option("--db", "demo_db", type=click.Path(dir_okay=False), help="Keep the demo order book here.")
    @click.option(
        "--ship",
        "ship_count",
        type=click.IntRange(min=0),
        default=3,
        show_default=True,
        help="How many accepted orders to ship.",
    )
    @pass_app
    def demo(app: App, marketplace: str, count: int, demo_db: str | None, ship_count: int) -> None:
        """Start the marketplace's sandbox, add a store, sync, ship a few orders, push, and report."""
        host = app.host
        factory = host.sandbox_factory(marketplace)
        if factory is None:
            raise ConfigError(f"the {marketplace} plugin ships no sandbox, so there is nothing to demo")
        with contextlib.ExitStack() as stack:
            temporary = demo_db is None
            if demo_db is None:
                demo_db = str(Path(stack.enter_context(tempfile.TemporaryDirectory())) / "demo.sqlite3")
            book = stack.enter_context(OrderBook(demo_db))
            manager, seeded = _start_sandbox(factory, count)
            sandbox = stack.enter_context(manager)
            if not seeded:
                sandbox.add_orders(count)
            demo_app = App(host_factory=lambda: host, db=demo_db, host=host, book=book)
            _run_demo(demo_app, marketplace, sandbox, ship_count, temporary=temporary)

    return None


def _run_demo(app: App, marketplace: str, sandbox: Any, ship_count: int, *, temporary: bool = False) -> None:
    name = f"demo-{marketplace}"
    book = app.book
    out(f"sandbox: {marketplace} running at {sandbox.url}")
    if book.has_store(name):
        out(f"store {name} already in {book.path}; reusing it")
    else:
        account = add_store(app, marketplace, name, sandbox.settings())
        out(f"store {name} added, connected as {account}")
    report = app.engine.sync(name)
    out(f"orders imported: {report.inserted} new, {report.updated} updated, {report.unchanged} unchanged")
    out(
        f"auto-accepted: {report.accepted}"
        + (f" ({report.accept_errors} could not be)" if report.accept_errors else "")
    )
    rejects = book.list_rejected(store=name)
    out(f"rejected: {len(rejects)}")
    for r in rejects[:10]:
        out(f"  {r.order_key or '?'} [{r.stage}] {r.reason}")
    accepted = book.list_orders(store=name, status="awaiting_shipment", limit=ship_count)
    engine = app.engine
    carriers = ["Colissimo", "DHL", "UPS"]
    for n, summary in enumerate(accepted, 1):
        engine.record_shipment(
            Shipment(
                store=name,
                order_key=summary.order_key,
                tracking_number=f"DEMO{n:04d}{zlib.crc32(summary.order_key.encode()) % 10**6:06d}",
                ship_date=datetime.now(UTC),
                carrier=carriers[n % len(carriers)],
                service="Standard",
                carrier_fee=Decimal("4.90"),
                notes_to_buyer="Thank you for your order",
            )
        )
    push = engine.push(name)
    out(f"shipments pushed: {push.pushed} of {len(accepted)}" + (f", {push.failed} failed" if push.failed else ""))
    for line in _push_lines(push)[1:]:
        out(line)
    shipped_keys = {s.order_key for s in accepted}
    seen = [o for o in sandbox.orders() if o.get("order_key") in shipped_keys]
    if seen:
        out(f"on the {marketplace} sandbox now:")
        for o in seen:
            out(f"  {o['order_key']}: status {o.get('status')}, tracking number {o.get('tracking_number') or '-'}")
    where = "a temporary file, removed on exit (pass --db PATH to keep it)" if temporary else str(book.path)
    out(f"order book: {where} ({book.count_orders(name)} orders)")


# -- sandbox ---------------------------------------------------------------------


def add_sandbox_group(group: click.Group) -> None:
    """An empty ``sandbox`` group; marketplaces add their sandbox server to it."""

    @group.group("sandbox")
    def sandbox() -> None:
        """Local marketplace sandboxes (added by the installed plugins)."""


for _add in (
    add_plugin_commands,
    add_store_commands,
    add_sync_commands,
    add_order_commands,
    add_rejected_commands,
    add_ship_commands,
    add_run_command,
    add_demo_command,
    add_sandbox_group,
    add_contract_command,
):
    _add(cli)

from connector_core.cli_settings import add_settings_commands  # noqa: E402 (it uses the helpers above)

add_settings_commands(cli)


_registered: weakref.WeakSet[Any] = weakref.WeakSet()


def build_cli(host: PluginHost) -> click.Group:
    """Let the host's plugins add their commands to :data:`cli` (once per host); return it."""
    if host.pm not in _registered:
        _registered.add(host.pm)
        host.register_commands(cli)
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``connector-host``."""
    try:
        host = default_host()
    except ConnectorError as err:
        click.echo(f"error: {redact(err.message)}", err=True)
        sys.exit(1)
    build_cli(host)
    cli.main(
        args=list(argv) if argv is not None else None, prog_name="connector-host", obj=App(host_factory=lambda: host)
    )

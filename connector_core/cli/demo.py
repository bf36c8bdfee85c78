"""``connector-host demo``: the whole loop against a marketplace's local sandbox; the ``sandbox`` group."""

from __future__ import annotations

import contextlib
import inspect
import tempfile
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from connector_core import hookimpl, stores
from connector_core.cli.app import App, pass_app
from connector_core.cli.output import out
from connector_core.cli.ship import push_lines
from connector_core.db.book import OrderBook
from connector_core.errors import ConfigError
from connector_core.models import Shipment


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
        account = stores.add_store(app.book, app.host, marketplace, name, sandbox.settings())
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
    for line in push_lines(push)[1:]:
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


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_demo_command(cli)
    add_sandbox_group(cli)

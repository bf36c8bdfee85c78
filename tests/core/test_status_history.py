"""Each order's status history: every change of status or marketplace status, by whom, whatever path wrote it."""

from __future__ import annotations

import json

from click.testing import CliRunner

from connector_core.cli import App, cli
from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.models import MarketplaceStatus, OrderStatus


def test_changes_from_the_marketplace_and_the_host_are_recorded_in_order(
    engine: Engine, book: OrderBook, bazaar
) -> None:
    """Import records nothing; a changed status from a sync and a host change each add one row, oldest first."""
    engine.sync("shop")
    first = book.get_order("shop", "BZ0002")
    assert book.status_history("shop", "BZ0002") == []  # imported: the status it came with is its current one
    book.set_cursor("shop", None)
    engine.sync("shop")  # the same documents again: no status changed
    assert book.status_history("shop", "BZ0002") == []

    book.update_order_status("shop", "BZ0002", OrderStatus.ON_HOLD)
    next(o for o in bazaar.orders if o["id"] == "BZ0002")["status"] = "sent"
    book.set_cursor("shop", None)
    engine.sync("shop")

    host, market = book.status_history("shop", "BZ0002")
    assert (host.source, host.old_status, host.new_status) == ("host", first.status.value, "on_hold")
    assert host.old_marketplace_status == host.new_marketplace_status == first.marketplace_status.code
    assert (market.source, market.old_status, market.new_status) == ("marketplace", "on_hold", "shipped")
    assert (market.old_marketplace_status, market.new_marketplace_status) == (first.marketplace_status.code, "sent")
    assert host.at <= market.at
    assert book.status_history("shop", "BZ0001") == []  # other orders untouched


def test_a_marketplace_code_change_alone_is_recorded_and_removing_the_store_clears_the_history(
    engine: Engine, book: OrderBook
) -> None:
    """A new marketplace code with the same canonical status is a change too; the rows go with their orders."""
    engine.sync("shop")
    status = book.get_order("shop", "BZ0001").status
    book.update_order_status("shop", "BZ0001", status, MarketplaceStatus("odd", "Odd"))
    [change] = book.status_history("shop", "BZ0001")
    assert change.old_status == change.new_status == status.value and change.new_marketplace_status == "odd"
    book.remove_store("shop")
    assert book.conn.execute("SELECT count(*) FROM order_events").fetchone()[0] == 0


def test_orders_show_prints_the_status_history(engine: Engine, book: OrderBook, host, db_path) -> None:
    """`orders show` lists each change; `--json` carries them as ``status_history``."""
    engine.sync("shop")
    book.update_order_status("shop", "BZ0003", OrderStatus.CANCELLED, MarketplaceStatus("void", "Cancelled"))
    app = App(host_factory=lambda: host)
    shown = CliRunner().invoke(cli, ["--db", str(db_path), "orders", "show", "BZ0003"], obj=app)
    assert shown.exit_code == 0, shown.output
    assert "status history:" in shown.output and "-> cancelled (marketplace" in shown.output
    doc = CliRunner().invoke(
        cli, ["--db", str(db_path), "orders", "show", "BZ0003", "--json"], obj=App(host_factory=lambda: host)
    )
    [change] = json.loads(doc.output)["status_history"]
    assert (change["source"], change["new_status"], change["new_marketplace_status"]) == ("host", "cancelled", "void")

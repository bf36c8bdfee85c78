"""One bad order or one failing store stops nothing else: the page, the other stores and run go on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bazaar_plugin import TOKEN, Bazaar, make_order
from click.testing import CliRunner

from connector_core.cli import App, build_cli, cli
from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.plugins import PluginHost


def test_a_21_digit_quantity_is_a_reject_of_that_order_alone(host: PluginHost, bazaar: Bazaar, book: OrderBook) -> None:
    """A quantity of 10**21 (an OverflowError in SQLite) quarantines that order; the page's others are stored."""
    bazaar.orders[2]["lines"][0]["qty"] = 10**21
    book.add_store("shop", "bazaar", {"token": TOKEN})
    report = Engine(host, book).sync("shop")
    assert (report.inserted, report.rejected) == (4, 1)
    [reject] = book.list_rejected(store="shop")
    assert reject.order_key == "BZ0003" and "quantity" in reject.reason and "outside 1.." in reject.reason


def test_run_goes_on_after_a_store_raises_an_unexpected_error(
    make_host: Callable[..., PluginHost], db_path: Path
) -> None:
    """A store whose sync raises OverflowError is one error line; run syncs the next store and ends its cycles."""
    good = Bazaar(orders=[make_order(i) for i in range(1, 4)])
    host = make_host(good)
    calls: list[int] = []

    def explode_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")

    good.on_fetch = explode_once
    with OrderBook(db_path) as book:
        book.add_store("a-first", "bazaar", {"token": TOKEN})
        book.add_store("b-second", "bazaar", {"token": TOKEN})
    build_cli(host)
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "run", "--interval", "0", "--max-cycles", "2"], obj=App(host_factory=lambda: host)
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "error: a-first: internal error OverflowError" in result.stderr
    assert "b-second: 3 fetched, 3 new" in result.output
    assert "a-first: 3 fetched, 3 new" in result.output  # its second cycle
    assert "stopped after 2 cycle(s)" in result.output


def test_sync_of_many_stores_reports_an_unexpected_error_and_syncs_the_others(
    make_host: Callable[..., PluginHost], db_path: Path
) -> None:
    """sync over every store: the one that raises is a one-line error (exit 1); the others are synced."""
    good = Bazaar(orders=[make_order(i) for i in range(1, 4)])
    host = make_host(good)
    calls: list[int] = []

    def explode_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("cannot convert NaN to integer")

    good.on_fetch = explode_once
    with OrderBook(db_path) as book:
        book.add_store("a-first", "bazaar", {"token": TOKEN})
        book.add_store("b-second", "bazaar", {"token": TOKEN})
    build_cli(host)
    result = CliRunner().invoke(cli, ["--db", str(db_path), "sync"], obj=App(host_factory=lambda: host))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "b-second: 3 fetched, 3 new" in result.output
    assert result.stderr.strip() == "error: a-first: internal error ValueError: cannot convert NaN to integer"

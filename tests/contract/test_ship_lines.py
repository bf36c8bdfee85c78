"""`connector-host ship --line LINE_KEY[:QTY]` records a partial shipment that reaches the marketplace as such."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from connector_acme_bazaar.sandbox import AcmeSandbox

from connector_core.cli import App, cli
from connector_core.plugins import PluginHost

Invoke = Callable[..., Result]


@pytest.fixture
def acme_store(tmp_path: Path) -> Iterator[tuple[Invoke, AcmeSandbox]]:
    """An order book with one synced Acme store on a fresh sandbox, and a CLI runner on it."""
    host = PluginHost.create()
    db = tmp_path / "book.sqlite3"

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--db", str(db), *args], obj=App(host_factory=lambda: host))

    with AcmeSandbox(orders=6) as sandbox:
        settings = [f"--set={k}={v}" for k, v in sandbox.settings().items()]
        assert invoke("stores", "add", "acme", "--name", "acme", *settings).exit_code == 0
        assert invoke("sync", "--workers", "0").exit_code == 0
        yield invoke, sandbox


def _shipped(sandbox: AcmeSandbox, key: str) -> dict[str, int]:
    return next(o["shipped"] for o in sandbox.orders() if o["order_key"] == key)


def test_ship_line_sends_only_that_quantity(acme_store: tuple[Invoke, AcmeSandbox]) -> None:
    """`ship KEY --line 1:1` then `push` leaves exactly one unit of line 1 shipped on the marketplace."""
    invoke, sandbox = acme_store
    result = invoke("ship", "AB-1001", "--tracking", "PART-1", "--carrier", "DHL", "--line", "1:1")
    assert result.exit_code == 0, result.output
    assert invoke("push").exit_code == 0
    assert _shipped(sandbox, "AB-1001") == {"1": 1}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("9", "error: --line 9: the order has no line '9' (its lines: 1"),
        ("1:0", "error: --line 1:0: the quantity must be between 1 and"),
        ("1:x", "error: --line 1:x: the quantity must be a whole number, as in 1:1"),
    ],
)
def test_bad_line_is_a_one_line_error(acme_store: tuple[Invoke, AcmeSandbox], line: str, message: str) -> None:
    """An unknown line, a zero or a non-numeric quantity exits 1 with one line saying what to fix."""
    invoke, _ = acme_store
    result = invoke("ship", "AB-1001", "--tracking", "PART-2", "--line", line)
    assert result.exit_code == 1
    assert result.output.startswith(message) and result.output.count("\n") == 1
    assert "Traceback" not in result.output

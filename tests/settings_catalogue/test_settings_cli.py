"""The CLI for store settings and the catalogue: typed --set, refusals that change nothing, masked secrets."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from connector_core.cli import App, cli
from connector_core.db import OrderBook
from connector_core.plugins import PluginHost, get_plugin_manager


def invoke(db: Path, *args: str) -> Result:
    host = PluginHost(get_plugin_manager(disabled=()))
    return CliRunner().invoke(cli, ["--db", str(db), *args], obj=App(host_factory=lambda: host))


def make_store(db: Path) -> None:
    with OrderBook(db) as book:
        book.add_store("shop", "spartoo", {"partner_id": "EF40F969744AF620", "sites": ["com"]})


def test_settings_are_set_typed_and_shown(tmp_path: Path) -> None:
    """`stores settings --set` saves typed values; the JSON view shows them with defaults and masked secrets."""
    db = tmp_path / "o.sqlite3"
    make_store(db)
    result = invoke(
        db, "stores", "settings", "shop", "--set", "smtp.host=mail.example", "--set", "smtp.port=2525",
        "--set", "smtp.password=Cli-secret-77", "--set", "products.precedence=catalogue", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Cli-secret-77" not in result.output
    doc = json.loads(result.stdout)["settings"]  # stderr holds the warning about a secret in argv
    assert doc["smtp"]["port"] == 2525 and doc["smtp"]["password"] == "***"
    assert doc["products"]["precedence"] == "catalogue"
    assert doc["notifications"]["shipment_confirmation"] is False
    with OrderBook(db) as book:
        assert book.get_store("shop").store_settings["smtp"]["password"] == "Cli-secret-77"
    shown = invoke(db, "stores", "show", "shop", "--json")
    assert shown.exit_code == 0, shown.output
    assert "Cli-secret-77" not in shown.output
    table = invoke(db, "stores", "settings", "shop")
    assert table.exit_code == 0 and "smtp.port" in table.output and "Cli-secret-77" not in table.output


def test_bad_setting_changes_nothing(tmp_path: Path) -> None:
    """A refused --set exits 1 with the key named, and the stored settings stay as they were."""
    db = tmp_path / "o.sqlite3"
    make_store(db)
    result = invoke(db, "stores", "settings", "shop", "--set", "branding.display_name=Ana", "--set", "smtp.port=x")
    assert result.exit_code == 1
    assert "smtp.port takes a whole number" in result.output
    with OrderBook(db) as book:
        assert book.get_store("shop").store_settings == {}


def test_bad_csv_exits_with_row_errors_and_imports_nothing(tmp_path: Path) -> None:
    """`products import` of a file with a bad row exits 1, lists the row, and the catalogue stays empty."""
    db = tmp_path / "o.sqlite3"
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("sku,weight\nA,1\nB,heavy\n", encoding="utf-8")
    result = invoke(db, "products", "import", str(csv_path))
    assert result.exit_code == 1
    assert "row 3, column weight: 'heavy' is not a number" in result.output
    listed = invoke(db, "products", "list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.output) == []
    good = invoke(db, "products", "import", str(csv_path.with_name("q.csv")))
    assert good.exit_code == 2  # click: the file does not exist


def test_import_needs_exactly_one_source(tmp_path: Path) -> None:
    """`products import` without a file or store (or with both) says what to give."""
    result = invoke(tmp_path / "o.sqlite3", "products", "import")
    assert result.exit_code == 1
    assert "give either FILE.csv or --from-store NAME" in result.output


def test_notifications_retry_sends_failed_mail_to_the_outbox(tmp_path: Path) -> None:
    """`notifications retry` requeues a failed e-mail and delivers it (here to the .eml outbox); list shows it sent."""
    import sys

    from connector_core import host_settings, notify

    sys.path.insert(0, str(Path(__file__).parent.parent / "notify"))
    try:
        from notify_data import make_order, make_shipment
    finally:
        sys.path.pop(0)
    db = tmp_path / "o.sqlite3"
    make_store(db)
    outbox = tmp_path / "eml"
    stored = {
        "branding": {"sender_email": "shop@shop.example"},
        "notifications": {"shipment_confirmation": True, "outbox_dir": str(outbox)},
    }
    with OrderBook(db) as book:
        book.update_store("shop", store_settings=stored)
        order = make_order(store="shop")
        book.save_page("shop", [order])
        nid = notify.queue_for_shipment(
            book.conn, store="shop", outbox_id=1, order=order, shipment=make_shipment(order),
            settings=host_settings.load(stored),
        )  # fmt: skip
        book.conn.execute("UPDATE notifications SET state = 'failed', last_error = 'x' WHERE id = ?", (nid,))
    result = invoke(db, "notifications", "retry", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"requeued": 1, "sent": 1, "retrying": 0, "failed": 0}
    assert len(list(outbox.glob("*.eml"))) == 1
    listed = json.loads(invoke(db, "notifications", "list", "--json").output)
    assert [(n["id"], n["state"]) for n in listed] == [(nid, "sent")]

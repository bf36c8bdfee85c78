"""End to end through the CLI: Spartoo sandbox, host settings, catalogue CSV, one branded e-mail per shipment."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector_core.cli import App, cli
from connector_core.db import OrderBook
from connector_core.models import Weight
from connector_core.plugins import PluginHost, get_plugin_manager
from connector_core.testing.smtp import loopback_smtp

sandbox_server = pytest.importorskip("connector_spartoo.sandbox.server")

GRAMS = {"g": Decimal(1), "kg": Decimal(1000), "oz": Decimal("28.349523125"), "lb": Decimal("453.59237")}
UNITS = ("g", "kg", "oz", "lb")


def run(db: Path, *args: str) -> str:
    host = PluginHost(get_plugin_manager(disabled=()))
    result = CliRunner().invoke(cli, ["--db", str(db), *args], obj=App(host_factory=lambda: host))
    assert result.exit_code == 0, result.output
    return result.stdout  # stderr may hold a warning (a secret given with --set)


def test_catalogue_fills_spartoo_orders_and_each_shipment_mails_once(tmp_path: Path) -> None:
    """Settings set from the CLI, the catalogue fills weight/location/image of synced orders, shipping mails once."""
    db = tmp_path / "orders.sqlite3"
    with sandbox_server.SpartooSandbox(orders=4, sites=["com"], seed=7) as sandbox, loopback_smtp() as smtp:
        settings_file = tmp_path / "spartoo.json"
        settings_file.write_text(json.dumps(sandbox.settings()), encoding="utf-8")
        run(db, "stores", "add", "spartoo", "--name", "sp", "--settings", str(settings_file))
        shown = run(
            db, "stores", "settings", "sp",
            "--set", "notifications.shipment_confirmation=true",
            "--set", "branding.display_name=Chaussures Ana",
            "--set", "branding.sender_email=ana@shop.example",
            "--set", "branding.accent_colour=#117733",
            "--set", "smtp.host=127.0.0.1",
            "--set", f"smtp.port={smtp.port}",
            "--set", "smtp.starttls=false",
            "--set", "smtp.password=Smtp-Pa55-secret",
            "--json",
        )  # fmt: skip
        doc = json.loads(shown)
        assert doc["settings"]["notifications"]["shipment_confirmation"] is True
        assert doc["settings"]["smtp"]["password"] == "***"
        assert "Smtp-Pa55-secret" not in shown

        # the marketplace catalogue brings photos and EANs; the seller's CSV adds weights, locations and
        # the photos of the references Spartoo's export has no entry for (lines without a size reference)
        run(db, "products", "import", "--from-store", "sp")
        products = json.loads(run(db, "products", "list", "--limit", "100000", "--json"))
        with_photo = {p["sku"] for p in products if p["image_url"]}
        skus = sorted(
            {
                product["products_size_reference"] or product["products_reference"]
                for o in sandbox.orders()
                for product in sandbox.order_document(o["order_key"])["products"]["product"]
            }
        )
        assert with_photo & set(skus), "some order lines should get their photo from the marketplace catalogue"
        rows, expected_weight = [], {}
        for i, sku in enumerate(skus):
            unit = UNITS[i % 4]
            value = Decimal(100 + i) / (1000 if unit == "kg" else 1)
            image = "" if sku in with_photo else f"https://img.shop.example/{i}.jpg"
            rows.append(f"{sku},{value},{unit},LOC-{i:03d},{image}")
            expected_weight[sku] = value * GRAMS[unit]
        csv_path = tmp_path / "weights.csv"
        header = "sku,weight,weight_unit,warehouse_location,image_url\n"
        csv_path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
        run(db, "products", "import", str(csv_path))

        run(db, "sync", "--store", "sp")
        with OrderBook(db) as book:
            orders = list(book.iter_orders("sp"))
        assert orders
        for order in orders:
            for item in order.items:
                assert item.weight is not None and item.warehouse_location and item.image_url
                assert item.warehouse_location == f"LOC-{skus.index(item.sku):03d}"
            grams = sum((expected_weight[item.sku] * item.quantity for item in order.items), Decimal(0))
            assert order.total_weight == Weight(grams.quantize(Decimal("0.001")), "g")

        target = next(o for o in orders if o.customer.email)
        run(db, "ship", target.order_key, "--store", "sp", "--tracking", "6A123456789", "--carrier", "Colissimo")
        run(db, "push", "--store", "sp")
        run(db, "push", "--store", "sp")  # nothing left to push: no second e-mail
        run(db, "ship", target.order_key, "--store", "sp", "--tracking", "6A123456789", "--carrier", "Colissimo")
        run(db, "push", "--store", "sp")
        received = list(smtp.received)

    assert len(received) == 1
    [mail] = received
    assert mail.rcpt_tos == (target.customer.email,)
    assert mail.message["Subject"] == f"Chaussures Ana: your order {target.order_number} has shipped"
    html = mail.message.get_body(preferencelist=("html",)).get_content()
    text = mail.message.get_body(preferencelist=("plain",)).get_content()
    assert "6A123456789" in html and "6A123456789" in text
    assert "#117733" in html
    assert all(f'src="{item.image_url}"' in html for item in target.items if item.image_url)
    listed: list[dict[str, Any]] = json.loads(run(db, "notifications", "list", "--json"))
    assert [(n["state"], n["attempts"], n["order_key"]) for n in listed] == [("sent", 1, target.order_key)]

"""Listings say how much they show and page on; filters; unknown stores refused alike; keys never cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_kit import Run, listed
from click.testing import CliRunner

from connector_core.cli import App, cli
from connector_core.plugins import PluginHost, get_plugin_manager


def test_orders_list_says_showing_n_of_m_and_pages_on(run: Run, store: str) -> None:
    """`orders list` says "showing N of M" with the next offset, and --offset pages through every order once."""
    total = len(listed(run, "orders", "list", "--limit", "1000"))
    assert total == 29
    first = run("orders", "list", "--limit", "10").stdout
    assert first.strip().endswith(f"showing 1-10 of {total} orders; next: --offset 10")
    last = run("orders", "list", "--limit", "10", "--offset", "20").stdout
    assert last.strip().endswith(f"showing 21-{total} of {total} orders")
    keys = [
        o["order_key"]
        for off in (0, 10, 20)
        for o in listed(run, "orders", "list", "--limit", "10", "--offset", str(off))
    ]
    assert len(keys) == len(set(keys)) == total


def test_orders_list_filters_by_date_and_search(run: Run, store: str) -> None:
    """--since/--until bound the order date; --search finds an order by key, buyer e-mail, buyer name or SKU."""
    every = listed(run, "orders", "list", "--limit", "1000")
    dates = sorted(str(o["order_date"]) for o in every)
    middle = dates[len(dates) // 2][:19]
    newer = listed(run, "orders", "list", "--limit", "1000", "--since", middle)
    older = listed(run, "orders", "list", "--limit", "1000", "--until", middle)
    assert len(newer) + len(older) == len(every)
    assert all(str(o["order_date"]) >= middle for o in newer)
    assert all(str(o["order_date"]) < middle for o in older)
    assert run("orders", "list", "--since", "2999-01-01").stdout.strip() == "no orders"
    bad = run("orders", "list", "--since", "last tuesday", code=1)
    assert "give a date as YYYY-MM-DD" in bad.stderr
    key = str(every[0]["order_key"])
    doc = json.loads(run("orders", "show", key, "--json").stdout)
    for needle in (key[-8:].lower(), doc["customer"]["email"].upper(), doc["customer"]["name"], doc["items"][0]["sku"]):
        found = [o["order_key"] for o in listed(run, "orders", "list", "--search", needle)]
        assert key in found, needle


def test_rejected_and_products_lists_say_how_many(run: Run, store: str, tmp_path: Path) -> None:
    """`rejected list` and `products list` say "showing N of M" and take --offset and --search."""
    assert run("rejected", "list").stdout.strip().endswith("showing 1-1 of 1 rejected payloads")
    assert run("rejected", "list", "--offset", "1").stdout.strip() == "no rejected payloads from offset 1 (of 1)"
    csv = tmp_path / "p.csv"
    csv.write_text("sku,name,weight\nA-1,Alpha,1 kg\nB-2,Beta,2 kg\nC-3,Gamma,3 kg\n", encoding="utf-8")
    run("products", "import", str(csv))
    assert run("products", "list", "--limit", "2").stdout.startswith("showing 1-2 of 3 products")
    assert [p["sku"] for p in listed(run, "products", "list", "--offset", "1")] == ["B-2", "C-3"]
    assert [p["sku"] for p in listed(run, "products", "list", "--search", "gam")] == ["C-3"]


@pytest.mark.parametrize(
    "args",
    [
        ("notifications", "list"),
        ("notifications", "retry"),
        ("rejected", "list"),
        ("rejected", "retry", "--all"),
        ("orders", "list"),
        ("orders", "export"),
        ("orders", "remap"),
        ("shipments", "list"),
        ("runs", "list"),
        ("sync",),
        ("push",),
        ("orders", "show", "com:X"),
        ("ship", "com:X", "--tracking", "T"),
    ],
)
def test_every_command_refuses_an_unknown_store_alike(run: Run, store: str, args: tuple[str, ...]) -> None:
    """`--store nope` is the same one-line error (exit 1) on every command that takes it."""
    result = run(*args, "--store", "nope", code=1)
    assert result.stderr.strip() == "error: no store named 'nope' (stores: sp)"


def test_db_in_a_missing_folder_is_refused_the_default_is_created(tmp_path: Path) -> None:
    """A --db whose folder does not exist is refused and nothing is created; the default location is created."""
    host = PluginHost(get_plugin_manager(disabled=()))
    runner = CliRunner()
    typo = tmp_path / "dta" / "orders.sqlite3"
    result = runner.invoke(cli, ["--db", str(typo), "stores", "list"], obj=App(host_factory=lambda: host))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: --db {typo}: the folder {typo.parent} does not exist")
    assert not typo.parent.exists()
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "CONNECTOR_HOST_DB": ""}
    result = runner.invoke(cli, ["stores", "list"], obj=App(host_factory=lambda: host), env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "xdg" / "connector-host" / "orders.sqlite3").is_file()


@pytest.mark.parametrize("columns", ["80", "100"])
def test_keys_are_never_cut_in_narrow_terminals(run: Run, store: str, columns: str) -> None:
    """At 80 and 100 columns every order key and outbox id is printed whole; other columns give way."""
    keys = [str(o["order_key"]) for o in listed(run, "orders", "list")]
    text = run("orders", "list", env={"COLUMNS": columns}).stdout
    assert max(len(line) for line in text.splitlines()) <= int(columns)
    for key in keys:
        assert key in text, key
    run("ship", keys[0], "--tracking", "TRACK-0001-LONG-NUMBER", "--force")
    shipped = run("shipments", "list", env={"COLUMNS": columns}).stdout
    assert keys[0] in shipped and "TRACK-0001-LONG-NUMBER" in shipped
    assert max(len(line) for line in shipped.splitlines()) <= int(columns)


def test_pattern_errors_say_what_is_expected_and_settings_show_what_they_take(run: Run, store: str) -> None:
    """Colour, e-mail and store-name errors say in words what is expected (no regex); booleans show as true/false."""
    colour = run("stores", "settings", store, "--set", "branding.accent_colour=red", code=1).stderr
    assert "a colour written #RRGGBB" in colour
    email = run("stores", "settings", store, "--set", "branding.sender_email=shop", code=1).stderr
    assert "an e-mail address such as" in email
    name = run("stores", "add", "spartoo", "--name", "bad name!", "--set", "partner_id=X", code=1).stderr
    assert "1 to 64 letters, digits, dots, underscores or hyphens" in name
    for message in (colour, email, name):
        assert "^" not in message and "[" not in message and "$'" not in message, message
    shown = run("stores", "settings", store).stdout
    [row] = [line for line in shown.splitlines() if " notifications.shipment_confirmation " in line]
    assert row.split("│")[2].strip() == "false"
    assert "False" not in shown and "True" not in shown


def test_shell_completion_offers_store_names(run: Run, store: str, db: Path) -> None:
    """Bash completion of --store and of a store argument lists the book's store names (click's completion)."""
    env = {**os.environ, "_CONNECTOR_HOST_COMPLETE": "bash_complete", "COMP_CWORD": "5"}
    for words in (f"connector-host --db {db} sync --store ", f"connector-host --db {db} stores show s"):
        env["COMP_WORDS"] = words
        env["COMP_CWORD"] = str(len(words.split()) - (0 if words.endswith(" ") else 1))
        done = subprocess.run(
            [sys.executable, "-c", "from connector_core.cli import main; main()"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.stdout.splitlines() == ["plain,sp"], (words, done.stdout, done.stderr)

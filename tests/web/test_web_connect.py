"""The connect flow: tiles, the schema-generated store form, connect before save."""

from __future__ import annotations

import html
import re

from connector_spartoo.sandbox.server import SpartooSandbox
from web_support import Web

from connector_core.db import OrderBook


def _form(sandbox: SpartooSandbox, partner_id: str, name: str = "sp") -> dict[str, object]:
    settings = sandbox.settings()
    return {
        "store_name": name,
        "partner_id": partner_id,
        "sites": settings["sites"],
        "base_url": settings["base_url"],
        "timezone": "Europe/Paris",
        "auto_accept": "on",
        "timeout": "10",
    }


def test_a_tile_per_installed_marketplace(web: Web) -> None:
    """/connect shows one tile per installed plugin, linking to its form; JSON lists the same."""
    web.login()
    page = web.client.get("/connect")
    for name in web.host.marketplaces():
        assert f'href="/connect/{name}"' in page.text
    assert "Spartoo" in page.text
    listed = web.client.get("/connect", headers={"accept": "application/json"}).json()
    assert {t["name"] for t in listed} == set(web.host.marketplaces())


def test_the_store_form_follows_the_settings_schema(web: Web) -> None:
    """The Spartoo form has the partner ID as a password input, sites as a multi-select, defaults filled."""
    web.login()
    page = web.client.get("/connect/spartoo").text
    assert re.search(r'<input id="f-partner_id" name="partner_id" type="password"[^>]*value=""', page)
    assert re.search(r'<select id="f-sites" name="sites" multiple', page)
    assert '<option value="co.uk">co.uk</option>' in page
    assert '<option value="com" selected>com</option>' in page  # the default site
    assert 'name="timezone" value="Europe/Paris"' in page
    assert re.search(r'name="auto_accept" checked', page)
    assert 'name="initial_lookback_days" inputmode="decimal" value="30"' in page


def test_unknown_marketplace_is_404(web: Web) -> None:
    """A marketplace that is not installed has no form."""
    web.login()
    answer = web.client.get("/connect/nowhere")
    assert answer.status_code == 404
    assert "no marketplace plugin named 'nowhere'" in html.unescape(answer.text)


def test_a_refused_partner_id_is_shown_inline_with_the_form_kept(web: Web, sandbox: SpartooSandbox) -> None:
    """A wrong partner ID shows the plugin's message, keeps the other fields, never echoes the secret."""
    web.login()
    answer = web.post("/connect/spartoo", _form(sandbox, "WRONG-PARTNER-77"))
    assert answer.status_code == 400
    assert "could not authorise with spartoo" in answer.text.lower()
    assert "partner id may be wrong" in answer.text.lower()
    assert "WRONG-PARTNER-77" not in answer.text
    assert 'name="store_name" value="sp"' in answer.text
    assert sandbox.settings()["base_url"] in answer.text
    with OrderBook(web.path) as book:
        assert not book.has_store("sp")


def test_a_good_partner_id_saves_the_store_and_lands_on_its_settings(web: Web, sandbox: SpartooSandbox) -> None:
    """Connecting with the right partner ID saves the store and shows its settings page, secret hidden."""
    web.login()
    partner = sandbox.settings()["partner_id"]
    answer = web.post("/connect/spartoo", _form(sandbox, partner))
    assert answer.status_code == 200
    assert answer.url.path == "/stores/sp/settings"
    assert "connected to Spartoo as" in answer.text
    assert partner not in answer.text
    with OrderBook(web.path) as book:
        record = book.get_store("sp")
    assert record.settings["partner_id"] == partner
    assert record.settings["timeout"] == 10
    assert record.settings["auto_accept"] is True


def test_a_taken_store_name_is_refused(web: Web, sandbox: SpartooSandbox) -> None:
    """A second store with the same name is refused with what to do."""
    web.login()
    partner = sandbox.settings()["partner_id"]
    assert web.post("/connect/spartoo", _form(sandbox, partner)).status_code == 200
    again = web.post("/connect/spartoo", _form(sandbox, partner))
    assert again.status_code == 400
    assert "a store named 'sp' already exists" in html.unescape(again.text)


def test_bad_field_values_are_marked(web: Web, sandbox: SpartooSandbox) -> None:
    """A number field with text is marked on the form; nothing is saved."""
    web.login()
    data = _form(sandbox, sandbox.settings()["partner_id"])
    data["timeout"] = "soon"
    answer = web.post("/connect/spartoo", data)
    assert answer.status_code == 400
    assert "enter a number" in answer.text
    assert 'value="soon"' in answer.text


def test_a_bad_store_name_is_refused(web: Web, sandbox: SpartooSandbox) -> None:
    """A store name outside the allowed characters is refused by the store schema."""
    web.login()
    answer = web.post("/connect/spartoo", _form(sandbox, sandbox.settings()["partner_id"], name="bad name/x"))
    assert answer.status_code == 400
    with OrderBook(web.path) as book:
        assert book.list_stores() == []

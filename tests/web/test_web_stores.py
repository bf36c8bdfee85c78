"""Stores and store settings: host settings with the e-mail preview, status mapping, marketplace settings, runs."""

from __future__ import annotations

import html
import re

from connector_spartoo.sandbox.server import SpartooSandbox
from web_support import Web

from connector_core.db import OrderBook

BRANDING = {
    "section": "host",
    "branding.display_name": "Chaussures Ana",
    "branding.sender_email": "shop@example.com",
    "branding.accent_colour": "#117733",
    "branding.footer_text": "Merci !",
    "notifications.shipment_confirmation": "on",
    "notifications.include_notes_to_buyer": "on",
    "notifications.max_attempts": "8",
    "products.use_catalogue": "on",
    "products.precedence": "order",
}


def test_stores_page_lists_counts_and_last_sync(synced: Web) -> None:
    """/stores shows the store, its marketplace, counts by status and the last sync's result; JSON too."""
    page = synced.client.get("/stores")
    assert page.status_code == 200
    assert 'href="/stores/sp"' in page.text and "spartoo" in page.text
    listed = synced.client.get("/stores", headers={"accept": "application/json"}).json()
    (store,) = listed
    with OrderBook(synced.path) as book:
        total = book.count_orders("sp")
    assert store["orders"] == total > 0
    assert sum(store["by_status"].values()) == total
    assert store["last_run"]["state"] == "ok"
    assert store["last_sync"] is not None


def test_store_page_shows_its_runs(synced: Web) -> None:
    """/stores/sp lists the sync that was run, with what it imported."""
    page = synced.client.get("/stores/sp")
    assert "sync" in page.text and "new" in page.text
    detail = synced.client.get("/stores/sp", headers={"accept": "application/json"}).json()
    assert detail["runs"][0]["kind"] == "sync"
    assert detail["runs"][0]["summary"]["inserted"] > 0


def test_unknown_store_is_404(synced: Web) -> None:
    """A store that does not exist is a 404 page with the known stores."""
    answer = synced.client.get("/stores/nope/settings")
    assert answer.status_code == 404
    assert "no store named 'nope'" in html.unescape(answer.text)


def test_branding_is_saved_and_shown_in_the_email_preview(synced: Web) -> None:
    """Saving branding stores it sparsely and the shipment e-mail preview uses it."""
    answer = synced.post("/stores/sp/settings", BRANDING)
    assert answer.status_code == 200, re.findall(r"(?:alert|field-error)\"[^>]*>([^<]+)", answer.text)
    assert "host settings saved" in answer.text
    with OrderBook(synced.path) as book:
        stored = book.get_store("sp").store_settings
    assert stored["branding"]["display_name"] == "Chaussures Ana"
    assert stored["notifications"]["shipment_confirmation"] is True
    assert "smtp" not in stored
    preview = synced.client.get("/stores/sp/email-preview")
    assert "Chaussures Ana" in preview.text and "#117733" in preview.text and "Merci !" in preview.text
    assert "sandbox" in preview.headers["content-security-policy"]
    assert preview.headers["x-frame-options"] == "SAMEORIGIN"


def test_host_settings_errors_are_shown_inline(synced: Web) -> None:
    """Shipment e-mails without a sender address are refused with what to set; nothing is saved."""
    data = {**BRANDING, "branding.sender_email": ""}
    answer = synced.post("/stores/sp/settings", data)
    assert answer.status_code == 400
    assert "branding.sender_email is not set" in answer.text
    with OrderBook(synced.path) as book:
        assert book.get_store("sp").store_settings == {}


def test_smtp_password_is_kept_and_never_rendered(synced: Web) -> None:
    """The SMTP password is saved, never shown back, and kept when the field is left empty."""
    data = {**BRANDING, "smtp.host": "smtp.example.com", "smtp.port": "587", "smtp.starttls": "on"}
    data |= {"smtp.user": "shop", "smtp.password": "smtp-pass-9876", "smtp.timeout": "30"}
    assert synced.post("/stores/sp/settings", data).status_code == 200
    page = synced.client.get("/stores/sp/settings")
    assert "smtp-pass-9876" not in page.text
    assert "saved; leave empty to keep" in page.text
    assert "smtp-pass-9876" not in synced.client.get("/stores/sp/settings", headers={"accept": "application/json"}).text
    again = {**data, "smtp.password": "", "branding.display_name": "Ana 2"}
    assert synced.post("/stores/sp/settings", again).status_code == 200
    with OrderBook(synced.path) as book:
        stored = book.get_store("sp").store_settings
    assert stored["smtp"]["password"] == "smtp-pass-9876"
    assert stored["branding"]["display_name"] == "Ana 2"


def test_status_mapping_applied_to_stored_orders(synced: Web) -> None:
    """Mapping code 2 to on_hold with "apply" restates the stored orders of that code at once."""
    with OrderBook(synced.path) as book:
        before = book.conn.execute(
            "SELECT count(*) FROM orders WHERE store='sp' AND marketplace_status='2'"
        ).fetchone()[0]
    assert before > 0
    answer = synced.post("/stores/sp/settings", {"section": "status_map", "map.2": "on_hold", "apply": "on"})
    assert "stored order(s) restated" in answer.text
    with OrderBook(synced.path) as book:
        assert book.get_store("sp").status_map == {"2": "on_hold"}
        statuses = {r[0] for r in book.conn.execute("SELECT status FROM orders WHERE marketplace_status='2'")}
    assert statuses == {"on_hold"}
    page = synced.client.get("/stores/sp/settings")
    assert '<option value="on_hold" selected>' in page.text


def test_status_mapping_without_apply_leaves_orders(synced: Web) -> None:
    """Without "apply" the override is saved and the stored orders keep their status until the next sync."""
    synced.post("/stores/sp/settings", {"section": "status_map", "map.2": "on_hold"})
    with OrderBook(synced.path) as book:
        assert book.get_store("sp").status_map == {"2": "on_hold"}
        statuses = {r[0] for r in book.conn.execute("SELECT status FROM orders WHERE marketplace_status='2'")}
    assert statuses == {"awaiting_shipment"}


def test_marketplace_settings_change_keeps_the_orders(synced: Web, sandbox: SpartooSandbox) -> None:
    """New marketplace settings are connected, saved, and the store's orders stay; the secret is kept if blank."""
    with OrderBook(synced.path) as book:
        count = book.count_orders("sp")
    settings = sandbox.settings()
    data = {"section": "marketplace", "partner_id": "", "sites": settings["sites"], "base_url": settings["base_url"]}
    data |= {"timezone": "Europe/Paris", "timeout": "12"}
    answer = synced.post("/stores/sp/settings", data)
    assert answer.status_code == 200 and "settings saved; connected as" in answer.text
    with OrderBook(synced.path) as book:
        record = book.get_store("sp")
        assert book.count_orders("sp") == count
    assert record.settings["timeout"] == 12
    assert record.settings["partner_id"] == settings["partner_id"]


def test_marketplace_settings_refused_are_not_saved(synced: Web, sandbox: SpartooSandbox) -> None:
    """A wrong partner ID on the settings page shows the plugin's message and keeps the old settings."""
    settings = sandbox.settings()
    data = {"section": "marketplace", "partner_id": "BADBADBAD", "sites": settings["sites"]}
    data |= {"base_url": settings["base_url"], "timezone": "Europe/Paris"}
    answer = synced.post("/stores/sp/settings", data)
    assert answer.status_code == 400
    assert "partner id may be wrong" in answer.text.lower()
    assert "BADBADBAD" not in answer.text
    with OrderBook(synced.path) as book:
        assert book.get_store("sp").settings["partner_id"] == settings["partner_id"]


def test_check_connection_and_push_are_runs(synced: Web) -> None:
    """ "Check connection" and "push" each record a run on /runs with their result."""
    synced.post("/stores/sp/check")
    synced.post("/stores/sp/push")
    runs = synced.client.get("/runs", headers={"accept": "application/json"}).json()["started_here"]
    kinds = [(r["kind"], r["state"]) for r in runs]
    assert ("check", "ok") in kinds and ("push", "ok") in kinds and ("sync", "ok") in kinds
    check = next(r for r in runs if r["kind"] == "check")
    assert check["summary"]["account"]
    assert check["started_by"] == "ana"


def test_a_failed_sync_is_a_run_with_its_error(synced: Web, sandbox: SpartooSandbox) -> None:
    """A sync that cannot reach the marketplace is recorded as an error run; the app keeps serving."""
    sandbox.stop()
    answer = synced.post("/stores/sp/sync")
    assert answer.status_code == 200
    runs = synced.client.get("/runs", headers={"accept": "application/json"}).json()["started_here"]
    assert runs[0]["kind"] == "sync" and runs[0]["state"] == "error" and runs[0]["error"]
    assert synced.client.get("/orders").status_code == 200


def test_unknown_store_action_is_404(synced: Web) -> None:
    """Only sync, push and check can be started on a store."""
    assert synced.post("/stores/sp/explode").status_code == 404


def test_stores_page_shows_a_quota_block(synced: Web) -> None:
    """A store whose partner is blocked by a quota answer shows until when, in the page and its JSON."""
    from datetime import UTC, datetime, timedelta

    from connector_core import quota
    from connector_core.plugins import PluginHost

    listed = synced.client.get("/stores", headers={"accept": "application/json"}).json()
    assert listed[0]["quota_blocked_until"] is None
    until = (datetime.now(UTC) + timedelta(minutes=30)).replace(microsecond=0)
    with OrderBook(synced.path) as book:
        record = book.get_store("sp")
        book.block_quota(*quota.scope_of(PluginHost.create(), "spartoo", "sp", record.settings), until, "quota used up")
    listed = synced.client.get("/stores", headers={"accept": "application/json"}).json()
    assert datetime.fromisoformat(listed[0]["quota_blocked_until"]) == until
    assert "used up until" in synced.client.get("/stores").text


def test_stores_page_shows_when_run_next_syncs_each_store(synced: Web) -> None:
    """Interval 0: every cycle of `run`; an hourly store: its last sync's start plus an hour, in page and JSON."""
    from datetime import datetime, timedelta

    listed = synced.client.get("/stores", headers={"accept": "application/json"}).json()
    assert listed[0]["next_run"] == "every cycle"
    with OrderBook(synced.path) as book:
        record = book.get_store("sp")
        book.update_store("sp", store_settings={**record.store_settings, "schedule": {"sync_interval": 3600}})
        last = book.last_sync_starts()["sp"]
    listed = synced.client.get("/stores", headers={"accept": "application/json"}).json()
    expected = datetime.fromisoformat(last.replace("Z", "+00:00")) + timedelta(hours=1)
    assert datetime.fromisoformat(listed[0]["next_run"].replace("Z", "+00:00")) == expected
    assert expected.isoformat()[:16].replace("T", " ") in synced.client.get("/stores").text

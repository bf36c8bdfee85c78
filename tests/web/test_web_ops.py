"""The quarantine, the outbox and the runs pages."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from web_support import Web

from connector_core.db import OrderBook
from connector_core.models import Shipment


def test_rejected_lists_reason_and_path(synced: Web) -> None:
    """/rejected shows each quarantined payload with its reason and JSON path; JSON leaves payloads out."""
    with OrderBook(synced.path) as book:
        rows = book.list_rejected(store="sp")
    assert rows, "the sandbox serves some invalid orders"
    page = html.unescape(synced.client.get("/rejected").text)
    for row in rows:
        assert f'href="/rejected/{row.id}"' in page
        assert row.reason in page
    listed = synced.client.get("/rejected", headers={"accept": "application/json"}).json()
    assert [r["id"] for r in listed] == [r.id for r in rows]
    assert all("payload" not in r for r in listed)


def test_rejected_detail_shows_the_payload_and_retries(synced: Web) -> None:
    """One rejected payload shows its payload; retry reports what the current plugin makes of it."""
    with OrderBook(synced.path) as book:
        row = book.list_rejected(store="sp")[0]
    page = html.unescape(synced.client.get(f"/rejected/{row.id}").text)
    assert row.reason in page and "<pre" in page
    answer = synced.post(f"/rejected/{row.id}/retry")
    assert f"#{row.id}" in answer.text
    assert any(state in answer.text for state in ("imported", "rejected", "unusable", "newer_in_book"))
    assert synced.client.get("/rejected/999999").status_code == 404


def _pending(web: Web, tracking: str) -> int:
    with OrderBook(web.path) as book:
        key = book.list_orders(store="sp", status="awaiting_shipment", limit=1)[0].order_key
        return book.add_shipment(
            Shipment(store="sp", order_key=key, tracking_number=tracking, ship_date=datetime.now(UTC))
        )


def test_a_waiting_shipment_can_be_dropped(synced: Web) -> None:
    """Dropping a pending shipment keeps it out of every push; a pushed one cannot be dropped."""
    outbox_id = _pending(synced, "DROPME")
    answer = synced.post(f"/shipments/{outbox_id}/drop")
    assert f"shipment #{outbox_id} dropped" in answer.text
    with OrderBook(synced.path) as book:
        entry = book.get_shipment(outbox_id)
        assert entry.state == "dropped"
        assert book.pending_shipments("sp") == []
    with OrderBook(synced.path) as book:
        key = book.get_shipment(outbox_id).order_key
    synced.post(f"/orders/{key}/ship", {"store": "sp", "tracking": "PUSHME"})
    synced.post("/stores/sp/push")
    with OrderBook(synced.path) as book:
        pushed = next(e.id for e in book.list_outbox(store="sp") if e.shipment.tracking_number == "PUSHME")
    refused = synced.post(f"/shipments/{pushed}/drop")
    assert refused.status_code == 409 and "already pushed" in refused.text


def test_a_failed_shipment_goes_back_to_the_queue(synced: Web) -> None:
    """Retry puts a failed shipment back to pending."""
    outbox_id = _pending(synced, "RETRYME")
    with OrderBook(synced.path) as book:
        book.mark_failed(outbox_id, "refused")
    answer = synced.post(f"/shipments/{outbox_id}/retry")
    assert "back in the queue" in answer.text
    with OrderBook(synced.path) as book:
        assert book.get_shipment(outbox_id).state == "pending"


def test_shipments_filter_by_state(synced: Web) -> None:
    """/shipments?state=pending lists only waiting shipments; a bad state is a 400."""
    _pending(synced, "WAIT1")
    listed = synced.client.get("/shipments?state=pending", headers={"accept": "application/json"}).json()
    assert [e["shipment"]["tracking_number"] for e in listed] == ["WAIT1"]
    assert synced.client.get("/shipments?state=pushed", headers={"accept": "application/json"}).json() == []
    assert synced.client.get("/shipments?state=lost").status_code == 400


def test_runs_page_lists_the_runs(synced: Web) -> None:
    """/runs shows the sync started here (with who started it) and the book's history of that sync."""
    page = synced.client.get("/runs")
    assert 'data-state="ok"' in page.text and "fetched" in page.text and "ana" in page.text
    data = synced.client.get("/runs", headers={"accept": "application/json"}).json()
    (sync,) = [r for r in data["runs"] if r["kind"] == "sync"]
    assert sync["store"] == "sp" and sync["state"] == "done" and sync["fetched"] > 0
    assert data["started_here"][0]["summary"]["fetched"] == sync["fetched"]
    only = synced.client.get("/runs?store=other", headers={"accept": "application/json"}).json()
    assert only == {"runs": [], "started_here": []}

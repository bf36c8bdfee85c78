"""``/rejected`` (the quarantine), ``/shipments`` (the outbox) and ``/runs`` (the sync and push history).

The quarantine shows each payload with its reason and JSON path; "retry"
re-validates and re-maps it with the current plugin
(:meth:`~connector_core.engine.Engine.retry_rejected`). The outbox shows each
shipment's state, attempts and the marketplace's answer field by field;
a failed shipment can be put back in the queue, and a waiting one dropped (never
sent), through the engine's ``retry_shipment`` and ``drop_shipment``.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector_core.db import OutboxEntry
from connector_core.errors import ConfigError
from connector_core.models import to_json
from connector_core.secrets import redact
from connector_core.web import records
from connector_core.web.pages import fail, flash, read_form, redirect, render, state_of, wants_json

LIMIT = 500
OUTBOX_STATES = ("pending", "pushed", "failed", "conflict", "dropped")


def _store_param(request: Request) -> str | None:
    value = (request.query_params.get("store") or "").strip()
    return value or None


def rejected_page(request: Request) -> Response:
    """Quarantined payloads, newest first, with reason and JSON path."""
    state = state_of(request)
    store = _store_param(request)
    rows = state.book().list_rejected(store=store, limit=LIMIT)
    if wants_json(request):
        return JSONResponse([{k: v for k, v in attrs.asdict(r).items() if k != "payload"} for r in rows])
    stores = [s.name for s in state.book().list_stores()]
    return render(request, "rejected.html", {"rows": rows, "store": store, "stores": stores})


def _pretty(payload: str | None) -> str:
    if not payload:
        return ""
    try:
        return redact(json.dumps(json.loads(payload), indent=2, ensure_ascii=False))
    except (json.JSONDecodeError, TypeError):
        return redact(payload)


def rejected_detail(request: Request) -> Response:
    """One quarantined payload with its payload."""
    state = state_of(request)
    try:
        reject_id = int(request.path_params["id"])
    except ValueError:
        raise fail(404, "a rejected payload's id is a number") from None
    row = state.book().get_rejected(reject_id)
    if wants_json(request):
        return JSONResponse({**attrs.asdict(row), "payload": _pretty(row.payload)})
    return render(request, "rejected_one.html", {"row": row, "payload": _pretty(row.payload)})


async def rejected_retry(request: Request) -> Response:
    """Re-validate and re-map one payload with the current plugin; import it if it passes."""
    await read_form(request)
    state = state_of(request)
    try:
        reject_id = int(request.path_params["id"])
    except ValueError:
        raise fail(404, "a rejected payload's id is a number") from None
    outcome = await run_in_threadpool(state.engine().retry_rejected, reject_id)
    where = f" at {outcome.path}" if outcome.path else ""
    why = f": {outcome.reason}{where}" if outcome.reason else ""
    if wants_json(request):
        return JSONResponse(attrs.asdict(outcome))
    flash(
        request,
        f"#{reject_id} {outcome.order_key or '?'}: {outcome.state}{why}",
        "ok" if outcome.state in ("imported", "newer_in_book") else "error",
    )
    return redirect(f"/rejected/{reject_id}")


def _entry_json(e: OutboxEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "store": e.store,
        "order_key": e.order_key,
        "state": e.state,
        "attempts": e.attempts,
        "last_error": e.last_error,
        "created_at": e.created_at,
        "pushed_at": e.pushed_at,
        "shipment": to_json(e.shipment),
        "result": None if e.result is None else to_json(e.result),
    }


def shipments_page(request: Request) -> Response:
    """The outbox: each shipment's state, attempts, error and per-field result."""
    state = state_of(request)
    store = _store_param(request)
    wanted = (request.query_params.get("state") or "").strip() or None
    if wanted is not None and wanted not in OUTBOX_STATES:
        raise fail(400, f"state must be one of {', '.join(OUTBOX_STATES)}")
    entries = state.book().list_outbox(store=store, state=wanted)[-LIMIT:][::-1]
    if wants_json(request):
        return JSONResponse([_entry_json(e) for e in entries])
    stores = [s.name for s in state.book().list_stores()]
    return render(
        request,
        "shipments.html",
        {"entries": entries, "store": store, "state": wanted, "stores": stores, "states": OUTBOX_STATES},
    )


async def shipment_action(request: Request) -> Response:
    """Retry a failed shipment (back to the queue) or drop a waiting one (never sent)."""
    action = request.path_params["action"]
    if action not in ("retry", "drop"):
        raise fail(404, f"a shipment has no action {action!r}: use retry or drop")
    await read_form(request)
    state = state_of(request)
    try:
        outbox_id = int(request.path_params["id"])
    except ValueError:
        raise fail(404, "a shipment's id is a number") from None
    try:
        if action == "retry":
            entry = await run_in_threadpool(state.engine().retry_shipment, outbox_id)
            message = f"shipment #{outbox_id} is back in the queue; push {entry.store} to send it"
        else:
            entry = await run_in_threadpool(state.engine().drop_shipment, outbox_id)
            message = f"shipment #{outbox_id} dropped: it will not be sent"
    except ConfigError as err:
        raise fail(409, err.message) from None
    if wants_json(request):
        return JSONResponse({"ok": True, "message": message})
    flash(request, message)
    return redirect("/shipments")


def runs_page(request: Request) -> Response:
    """Every sync and push of the book's history (from here or the command line), and what was started here."""
    state = state_of(request)
    store = _store_param(request)
    history = state.book().list_runs(store=store, limit=LIMIT).rows
    started_here = records.list_runs(state.book().conn, store=store)
    if wants_json(request):
        return JSONResponse(
            {"runs": [attrs.asdict(r) for r in history], "started_here": [attrs.asdict(r) for r in started_here]}
        )
    running = any(r.state == "running" for r in started_here)
    stores = [s.name for s in state.book().list_stores()]
    return render(
        request,
        "runs.html",
        {"runs": started_here, "history": history, "store": store, "stores": stores, "running": running},
    )


def routes() -> list[BaseRoute]:
    """The routes of this module."""
    return [
        Route("/rejected", rejected_page, methods=["GET"]),
        Route("/rejected/{id}", rejected_detail, methods=["GET"]),
        Route("/rejected/{id}/retry", rejected_retry, methods=["POST"]),
        Route("/shipments", shipments_page, methods=["GET"]),
        Route("/shipments/{id}/{action}", shipment_action, methods=["POST"]),
        Route("/runs", runs_page, methods=["GET"]),
    ]

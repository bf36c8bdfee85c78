"""``/stores``, ``/stores/<name>`` and ``/stores/<name>/settings``: stores, their settings and runs.

The settings page has one form per part: host settings (branding with a
preview of the shipment e-mail, notifications, SMTP, product handling), the
status mapping (with "apply to stored orders") and the marketplace settings
(connected before they are saved; the store's orders stay). "Sync now",
"push" and "check connection" start a run on the job threads
(:meth:`WebState.start_job`), listed on ``/runs``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector_core import host_settings, notify, quota, schedule, secrets
from connector_core.clock import utc_iso
from connector_core.db import StoreRecord
from connector_core.engine import Engine
from connector_core.errors import ConnectorError
from connector_core.models import (
    CANONICAL_STATUSES,
    Address,
    Customer,
    ItemOption,
    LineItem,
    MarketplaceStatus,
    Order,
    Shipment,
)
from connector_core.web import actions, records
from connector_core.web.forms import Field, FormErrors, fields_for, nested_schemas, parse_form
from connector_core.web.pages import current_user, fail, flash, read_form, redirect, render, state_of, wants_json
from connector_core.web.queries import store_summaries

SECTIONS = ("host", "status_map", "marketplace")
PREVIEW_CSP = (
    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"
)


def _summary_json(
    s: Any, runs: dict[str, records.Run], quotas: dict[str, str | None], nexts: dict[str, str]
) -> dict[str, Any]:
    run = runs.get(s.name)
    return {
        **attrs.asdict(s),
        "last_run": None if run is None else {"state": run.state, "finished_at": run.finished_at, "error": run.error},
        "quota_blocked_until": quotas.get(s.name),
        "next_run": nexts.get(s.name),
    }


def _next_runs(request: Request) -> dict[str, str]:
    """When `run` next syncs each store (:mod:`connector_core.schedule`): ISO time, ``due now`` or ``every cycle``."""
    now = datetime.now(UTC)
    out: dict[str, str] = {}
    for slot in schedule.slots(state_of(request).book()):
        if slot.interval == 0:
            out[slot.store] = "every cycle"
        elif slot.next_sync is None or slot.due(now):
            out[slot.store] = "due now"
        else:
            out[slot.store] = utc_iso(slot.next_sync)
    return out


def _quota_states(request: Request) -> dict[str, str | None]:
    """Each store's quota block: when it ends (ISO, UTC), or ``None`` while calls may be made."""
    state = state_of(request)
    blocks = quota.store_blocks(state.host, state.book())
    return {name: None if until is None else utc_iso(until) for name, until in blocks.items()}


def stores_page(request: Request) -> Response:
    """Every store: marketplace, last sync and its result, counts by status."""
    state = state_of(request)
    conn = state.book().conn
    summaries = store_summaries(conn)
    runs = records.last_runs(conn, "sync")
    quotas = _quota_states(request)
    nexts = _next_runs(request)
    if wants_json(request):
        return JSONResponse([_summary_json(s, runs, quotas, nexts) for s in summaries])
    context = {"stores": summaries, "runs": runs, "statuses": CANONICAL_STATUSES, "quotas": quotas, "nexts": nexts}
    return render(request, "stores.html", context)


def _record(request: Request) -> StoreRecord:
    return state_of(request).book().get_store(request.path_params["name"])


def store_page(request: Request) -> Response:
    """One store: counts, recent runs, its rejects and outbox at a glance."""
    state = state_of(request)
    record = _record(request)
    summary = next(s for s in store_summaries(state.book().conn) if s.name == record.name)
    runs = records.list_runs(state.book().conn, store=record.name, limit=20)
    info = state.host.marketplaces().get(record.marketplace)
    if wants_json(request):
        return JSONResponse(
            {
                **_summary_json(summary, {r.store: r for r in runs[:1]}, _quota_states(request), _next_runs(request)),
                "status_map": record.status_map,
                "runs": [attrs.asdict(r) for r in runs],
            }
        )
    return render(
        request,
        "store.html",
        {"store": record, "summary": summary, "runs": runs, "info": info, "statuses": CANONICAL_STATUSES},
    )


# -- the settings page ---------------------------------------------------------------


def _host_fieldsets(stored: dict[str, Any]) -> list[tuple[str, str, list[Field]]]:
    effective = host_settings.effective(stored)
    out = []
    for name, sub in nested_schemas(host_settings.schema()):
        values = effective.get(name) or {}
        fields = fields_for(sub, values, prefix=f"{name}.")
        if "null" in (sub.get("type") or []):  # an optional part (smtp): none of its fields is required on its own
            fields = [attrs.evolve(f, required=False) for f in fields]
        out.append((name, str(sub.get("description") or ""), fields))
    return out


def _status_rows(request: Request, record: StoreRecord) -> list[dict[str, Any]]:
    state = state_of(request)
    info = state.host.info(record.marketplace)
    codes = dict(info.statuses)
    for code in record.status_map:
        codes.setdefault(code, "")
    rows = []
    for code, label in codes.items():
        rows.append(
            {
                "code": code,
                "label": label,
                "default": actions.default_status(state.host, record.marketplace, code),
                "override": record.status_map.get(code),
            }
        )
    return rows


def _settings_page(
    request: Request,
    record: StoreRecord,
    *,
    errors: dict[str, str] | None = None,
    section_error: tuple[str, str] | None = None,
    host_values: dict[str, Any] | None = None,
    marketplace_values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    state = state_of(request)
    info = state.host.info(record.marketplace)
    return render(
        request,
        "store_settings.html",
        {
            "store": record,
            "info": info,
            "fieldsets": _host_fieldsets(record.store_settings if host_values is None else host_values),
            "marketplace_fields": fields_for(
                info.settings_schema, record.settings if marketplace_values is None else marketplace_values
            ),
            "status_rows": _status_rows(request, record),
            "statuses": CANONICAL_STATUSES,
            "errors": errors or {},
            "section_error": section_error,
        },
        status,
    )


def settings_page(request: Request) -> Response:
    """The store's settings page (JSON: the settings with secrets masked)."""
    record = _record(request)
    if wants_json(request):
        info = state_of(request).host.info(record.marketplace)
        return JSONResponse(
            {
                "store": record.name,
                "marketplace": record.marketplace,
                "settings": secrets.masked(info.settings_schema, record.settings),
                "host_settings": host_settings.masked(host_settings.effective(record.store_settings)),
                "status_map": record.status_map,
            }
        )
    return _settings_page(request, record)


def _parse_host(form: FormData, record: StoreRecord) -> dict[str, Any]:
    """The sparse host settings document the form describes."""
    stored = record.store_settings
    doc: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, sub in nested_schemas(host_settings.schema()):
        if name == "smtp" and not str(form.get("smtp.host") or "").strip():
            continue  # no mail server: .eml files in the outbox folder
        fields = fields_for(sub, prefix=f"{name}.")
        keep = stored.get(name) if isinstance(stored.get(name), dict) else {}
        try:
            values = parse_form(fields, form, keep=keep, sparse=True)
        except FormErrors as errs:
            errors.update(errs.errors)
            continue
        doc[name] = values
    if errors:
        raise FormErrors(errors)
    return doc


async def settings_submit(request: Request) -> Response:
    """Save one part of the settings page (``section``: host, status_map or marketplace)."""
    form = await read_form(request)
    state = state_of(request)
    record = _record(request)
    section = str(form.get("section") or "")
    if section not in SECTIONS:
        raise fail(400, f"unknown settings section {section!r}: use one of {', '.join(SECTIONS)}")
    if section == "host":
        sparse: dict[str, Any] | None = None
        try:
            sparse = _parse_host(form, record)
            await run_in_threadpool(actions.save_host_settings, state.book(), record.name, sparse)
        except FormErrors as errs:
            return _settings_page(
                request, record, errors=errs.errors, section_error=("host", "check the fields marked below"), status=400
            )
        except ConnectorError as err:
            return _settings_page(request, record, section_error=("host", err.message), host_values=sparse, status=400)
        flash(request, "host settings saved")
        return redirect(f"/stores/{record.name}/settings#host")
    if section == "status_map":
        mapping: dict[str, str | None] = {}
        for row in _status_rows(request, record):
            chosen = str(form.get(f"map.{row['code']}") or "")
            if chosen and chosen not in CANONICAL_STATUSES:
                raise fail(400, f"status {chosen!r} is not one of {', '.join(CANONICAL_STATUSES)}")
            mapping[row["code"]] = chosen or None
        apply = form.get("apply") == "on"
        changed = await run_in_threadpool(actions.set_status_mapping, state.engine(), record.name, mapping, apply=apply)
        flash(request, "status mapping saved" + (f"; {changed} stored order(s) restated" if apply else ""))
        return redirect(f"/stores/{record.name}/settings#status-map")
    info = state.host.info(record.marketplace)
    fields = fields_for(info.settings_schema)
    try:
        settings = parse_form(fields, form, keep=record.settings, sparse=True)
    except FormErrors as errs:
        return _settings_page(
            request,
            record,
            errors=errs.errors,
            section_error=("marketplace", "check the fields marked below"),
            status=400,
        )
    try:
        account = await run_in_threadpool(
            actions.update_marketplace_settings, state.host, state.book(), record.name, settings
        )
    except ConnectorError as err:
        return _settings_page(
            request, record, section_error=("marketplace", err.message), marketplace_values=settings, status=400
        )
    flash(request, f"{info.title} settings saved; connected as {account}")
    return redirect(f"/stores/{record.name}/settings#marketplace")


# -- runs from a store page ------------------------------------------------------------


def _sync(name: str) -> Any:
    def work(engine: Engine) -> dict[str, Any]:
        report = engine.sync(name)
        return {k: v for k, v in attrs.asdict(report).items() if k != "cursor"}

    return work


def _push(name: str) -> Any:
    def work(engine: Engine) -> dict[str, Any]:
        report = engine.push(name)
        return {
            "pushed": report.pushed,
            "already_applied": report.already_applied,
            "retry": report.retry,
            "failed": report.failed,
            "outcomes": [
                {"outbox_id": o.outbox_id, "order_key": o.order_key, "state": o.state, "error": o.error}
                for o in report.outcomes
            ],
        }

    return work


def _check(name: str) -> Any:
    def work(engine: Engine) -> dict[str, Any]:
        record = engine.book.get_store(name)
        account = actions.check_connection(engine.host, name, record.marketplace, dict(record.settings))
        return {"account": account}

    return work


async def start_run(request: Request) -> Response:
    """Start a sync, push or connection check of the store; back to where the button was."""
    state = state_of(request)
    record = _record(request)
    kind = request.path_params["kind"]
    if kind not in ("sync", "push", "check"):
        raise fail(404, f"a store has no action {kind!r}: use sync, push or check")
    form = await read_form(request)
    work = {"sync": _sync, "push": _push, "check": _check}[kind](record.name)
    run_id = state.start_job(record.name, kind, current_user(request), work)
    run = records.get_run(state.book().conn, run_id)
    if wants_json(request):
        return JSONResponse({"run": run_id, "state": run.state if run else "running"}, status_code=202)
    if run is not None and run.state != "running":
        flash(request, f"{kind} of {record.name}: " + (run.error or _summary_text(run)), "error" if run.error else "ok")
    else:
        flash(request, f"{kind} of {record.name} started (run #{run_id}); see Runs")
    target = str(form.get("back") or f"/stores/{record.name}")
    return redirect(target if target.startswith("/") and not target.startswith("//") else f"/stores/{record.name}")


def _summary_text(run: records.Run) -> str:
    s = run.summary
    if run.kind == "sync":
        return f"{s.get('inserted', 0)} new, {s.get('updated', 0)} updated, {s.get('rejected', 0)} rejected"
    if run.kind == "push":
        return f"{s.get('pushed', 0)} pushed, {s.get('retry', 0)} to retry, {s.get('failed', 0)} failed"
    return f"connected as {s.get('account', '?')}"


# -- the e-mail preview -----------------------------------------------------------------


def _sample_order(store: str, marketplace: str) -> Order:
    return Order(
        store=store,
        marketplace=marketplace,
        order_key="PREVIEW-1",
        order_number="PREVIEW-1",
        order_date=datetime.now(UTC),
        status="awaiting_shipment",
        marketplace_status=MarketplaceStatus(code="preview"),
        ship_to=Address(name="Ana Martin", street1="12 rue des Lilas", city="Lyon", postal_code="69003", country="FR"),
        customer=Customer(name="Ana Martin", email="ana@example.com"),
        currency="EUR",
        items=(
            LineItem(
                line_key="1",
                sku="SAMPLE-42",
                name="Sample sandals",
                quantity=1,
                unit_price=Decimal("59.90"),
                options=(ItemOption("size", "42"), ItemOption("colour", "red")),
            ),
        ),
        total=Decimal("59.90"),
    )


def email_preview(request: Request) -> Response:
    """The shipment e-mail as the store's branding renders it (latest order, or a sample)."""
    state = state_of(request)
    record = _record(request)
    settings = host_settings.load(record.store_settings, store=record.name)
    latest = state.book().list_orders(store=record.name, limit=1)
    order = (
        state.book().get_order(record.name, latest[0].order_key)
        if latest
        else _sample_order(record.name, record.marketplace)
    )
    shipment = Shipment(
        store=record.name,
        order_key=order.order_key,
        tracking_number="6A00000000000",
        ship_date=datetime.now(UTC),
        carrier="Colissimo",
        service="Expert",
        notes_to_buyer="Thank you for your order!",
    )
    message = notify.build_shipment_confirmation(
        order, shipment, settings, store_name=record.name, recipient="buyer@example.com", message_id="<preview@local>"
    )
    html_part = message.get_body(preferencelist=("html",))
    html = html_part.get_content() if html_part is not None else ""
    return HTMLResponse(html, headers={"content-security-policy": PREVIEW_CSP, "x-frame-options": "SAMEORIGIN"})


def routes() -> list[BaseRoute]:
    """The routes of this module."""
    return [
        Route("/stores", stores_page, methods=["GET"]),
        Route("/stores/{name}", store_page, methods=["GET"]),
        Route("/stores/{name}/settings", settings_page, methods=["GET"]),
        Route("/stores/{name}/settings", settings_submit, methods=["POST"]),
        Route("/stores/{name}/email-preview", email_preview, methods=["GET"]),
        Route("/stores/{name}/{kind:str}", start_run, methods=["POST"]),
    ]

"""``/connect``: a tile per installed marketplace; ``/connect/<marketplace>``: its store form.

The form is generated from the plugin's settings JSON Schema
(:mod:`connector_core.web.forms`). The plugin's ``connect`` runs before
anything is saved; a refusal is shown inline with the form kept (secrets are
never echoed back); success lands on the new store's settings page.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector_core.errors import ConnectorError
from connector_core.models import MarketplaceInfo
from connector_core.web import actions
from connector_core.web.forms import Field, FormErrors, fields_for, parse_form
from connector_core.web.pages import fail, flash, read_form, redirect, render, state_of, wants_json

NAME_FIELD = "store_name"


def _tile(info: MarketplaceInfo, stores: int) -> dict[str, Any]:
    return {
        "name": info.name,
        "title": info.title,
        "description": info.description,
        "version": info.version,
        "initial": (info.title or info.name)[:1].upper(),
        "stores": stores,
    }


def tiles(request: Request) -> Response:
    """Every installed marketplace as a tile (JSON for scripts)."""
    state = state_of(request)
    counts: dict[str, int] = {}
    for record in state.book().list_stores():
        counts[record.marketplace] = counts.get(record.marketplace, 0) + 1
    items = [_tile(info, counts.get(info.name, 0)) for info in state.host.marketplaces().values()]
    if wants_json(request):
        return JSONResponse(items)
    return render(request, "connect.html", {"tiles": items})


def _info(request: Request) -> MarketplaceInfo:
    name = request.path_params["marketplace"]
    infos = state_of(request).host.marketplaces()
    if name not in infos:
        raise fail(404, f"no marketplace plugin named {name!r} is installed")
    return infos[name]


def _form_page(
    request: Request,
    info: MarketplaceInfo,
    fields: list[Field],
    *,
    store_name: str,
    error: str | None = None,
    field_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "connect_form.html",
        {
            "info": info,
            "fields": fields,
            "store_name": store_name,
            "error": error,
            "field_errors": field_errors or {},
        },
        status,
    )


def connect_form(request: Request) -> Response:
    """The store form of one marketplace, with the schema's defaults."""
    info = _info(request)
    taken = {s.name for s in state_of(request).book().list_stores()}
    candidates = [info.name, *(f"{info.name}-{n}" for n in range(2, 1000))]
    name = next((c for c in candidates if c not in taken), "")
    return _form_page(request, info, fields_for(info.settings_schema), store_name=name)


async def connect_submit(request: Request) -> Response:
    """Check the connection, save the store, go to its settings; or show what went wrong."""
    info = _info(request)
    form = await read_form(request)
    state = state_of(request)
    fields = fields_for(info.settings_schema)
    store_name = str(form.get(NAME_FIELD) or "").strip()
    try:
        settings = parse_form(fields, form, sparse=True)
    except FormErrors as errs:
        kept = fields_for(info.settings_schema, _submitted(fields, form))
        return _form_page(
            request,
            info,
            kept,
            store_name=store_name,
            error="check the fields marked below",
            field_errors=errs.errors,
            status=400,
        )
    kept = fields_for(info.settings_schema, settings)
    if not store_name:
        return _form_page(
            request, info, kept, store_name="", field_errors={NAME_FIELD: "give the store a name"}, status=400
        )
    try:
        account = await run_in_threadpool(
            lambda: actions.connect_store(state.host, state.book(), info.name, store_name, settings)
        )
    except ConnectorError as err:
        return _form_page(request, info, kept, store_name=store_name, error=err.message, status=400)
    flash(request, f"connected to {info.title} as {account}; store {store_name} saved")
    return redirect(f"/stores/{store_name}/settings")


def _submitted(fields: list[Field], form: Any) -> dict[str, Any]:
    """The raw submitted texts, to refill a form that failed to parse (secrets left out)."""
    out: dict[str, Any] = {}
    for f in fields:
        if f.kind == "password":
            continue
        out[f.name] = form.getlist(f.name) if f.kind == "multiselect" else form.get(f.name)
    return out


def routes() -> list[BaseRoute]:
    """The routes of this module."""
    return [
        Route("/connect", tiles, methods=["GET"]),
        Route("/connect/{marketplace}", connect_form, methods=["GET"]),
        Route("/connect/{marketplace}", connect_submit, methods=["POST"]),
    ]

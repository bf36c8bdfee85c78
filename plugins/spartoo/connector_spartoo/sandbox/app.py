"""The Spartoo sandbox as an ASGI application (starlette).

Routes, as Spartoo's seller documentation describes them (choices where it is silent are in SANDBOX.md):

- ``/{site}/mp/xml_export_orders.php``   export orders (streamed)
- ``/{site}/mp/xml_maj_orders.php``      accept (2), ship (3), cancel (41)
- ``/{site}/mp/xml_export_products.php`` the catalogue (photos, EAN per size)
- ``/{site}/mp/<other>.php``             ``statut`` -404: not implemented here
- ``/_admin/...``                        JSON admin API (orders, faults, counters)

Fault injection (latency, HTTP 5xx, dropped connections) happens in
:class:`FaultMiddleware`, the outermost ASGI layer, so a dropped connection
really closes the socket before anything is sent; quota faults and malformed
orders are injected by the routes.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from connector_spartoo.sandbox.data import SELLER_STATUSES, SITES, OrderBook, format_date, parse_request_date
from connector_spartoo.sandbox.defaults import DEACTIVATED_PARTNER_ID as DEACTIVATED_PARTNER_ID
from connector_spartoo.sandbox.defaults import DEFAULT_PARTNER_ID as DEFAULT_PARTNER_ID
from connector_spartoo.sandbox.defaults import DEFAULT_QUOTA_PER_HOUR as DEFAULT_QUOTA_PER_HOUR

FAULT_RATES = ("error_rate", "drop_rate", "malformed_rate", "quota_rate")
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
XML_TYPE = "text/xml; charset=utf-8"
ORDERS_PER_CHUNK = 64

# Sandbox error codes beyond Spartoo's evidenced -1/-2/-428/-429 (see SANDBOX.md)
E_MISSING_PARTNER, E_UNKNOWN_PARTNER, E_DEACTIVATED, E_QUOTA = -1, -2, -428, -429
E_NO_SCRIPT = -404
E_EXPORT_ARGS, E_BAD_DATE, E_BAD_FILTER = -20, -21, -22
E_NO_OID, E_NO_ORDER, E_NOT_SELLER_STATUS, E_TRANSITION, E_NO_TRACKING, E_OTHER_TRACKING, E_XML_UNSUPPORTED = (
    -10,
    -11,
    -12,
    -13,
    -14,
    -15,
    -16,
)


def validate_faults(values: dict[str, Any]) -> dict[str, float]:
    """Check fault settings: each ``*_rate`` in [0, 1], ``latency`` (ms) >= 0. Raise ``ValueError`` otherwise."""
    out: dict[str, float] = {}
    for key, raw in values.items():
        if key not in (*FAULT_RATES, "latency"):
            raise ValueError(f"unknown fault {key!r}; known: latency, {', '.join(FAULT_RATES)}")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number, got {raw!r}") from None
        if value != value:  # NaN
            raise ValueError(f"{key} must be a number, got NaN")
        if key == "latency":
            if value < 0:
                raise ValueError(f"latency must be >= 0 milliseconds, got {value}")
        elif not 0.0 <= value <= 1.0:
            raise ValueError(f"{key} must be a share between 0 and 1, got {value}")
        out[key] = value
    return out


class SandboxState:
    """Everything the sandbox knows: orders, partners, quota windows, faults and counters."""

    def __init__(
        self,
        book: OrderBook,
        *,
        partner_ids: Iterable[str] = (DEFAULT_PARTNER_ID,),
        deactivated_ids: Iterable[str] = (DEACTIVATED_PARTNER_ID,),
        quota_per_hour: int = DEFAULT_QUOTA_PER_HOUR,
        faults: dict[str, float] | None = None,
        fault_seed: int | None = None,
    ) -> None:
        self.book = book
        self.deactivated = {p.strip().upper() for p in deactivated_ids}
        self.partners = {p.strip().upper() for p in partner_ids} | self.deactivated
        self.quota_per_hour = quota_per_hour
        self.faults: dict[str, float] = dict.fromkeys((*FAULT_RATES, "latency"), 0.0)
        self.faults.update(validate_faults(faults or {}))
        self._rng = random.Random(book.seed if fault_seed is None else fault_seed)
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}
        self.requests: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.malformed_orders: list[str] = []  # broken in a date export (an import)
        self.malformed_lookups: list[str] = []  # broken in a one-order (oID) export

    def set_faults(self, **rates: float) -> dict[str, float]:
        """Make the faults exactly ``rates`` (any not given go back to 0; no argument clears them all).

        Validated first, so a bad value changes nothing. Returns the new settings.
        """
        checked = validate_faults(rates)
        with self._lock:
            self.faults = dict.fromkeys((*FAULT_RATES, "latency"), 0.0) | checked
            return dict(self.faults)

    def roll(self, kind: str) -> bool:
        """Whether to inject fault ``kind`` (``error``, ``drop``, ``malformed``, ``quota``) now; counts it."""
        rate = self.faults[f"{kind}_rate"]
        if rate <= 0.0:
            return False
        with self._lock:
            hit = rate >= 1.0 or self._rng.random() < rate
            if hit:
                self.injected[kind] += 1
            return hit

    def pick(self, n: int) -> int:
        """A random position below ``n`` (for the malformed order)."""
        with self._lock:
            return self._rng.randrange(n)

    def take_quota(self, partner: str) -> bool:
        """Count one request for ``partner``; ``False`` once its quota for this clock hour is used up."""
        window = int(time.time()) // 3600
        with self._lock:
            start, used = self._windows.get(partner, (window, 0))
            if start != window:
                start, used = window, 0
            used += 1
            self._windows[partner] = (start, used)
            return used <= self.quota_per_hour

    def counters(self) -> dict[str, Any]:
        """Requests per script and injected faults per kind (JSON-able)."""
        with self._lock:
            return {
                "requests": sum(self.requests.values()),
                "requests_by_script": dict(self.requests),
                "faults": {k: self.injected.get(k, 0) for k in ("latency", "error", "drop", "malformed", "quota")},
                "malformed_orders": list(self.malformed_orders[-100:]),
                "malformed_lookups": list(self.malformed_lookups[-100:]),
                "orders": len(self.book),
            }


# --------------------------------------------------------------------------- XML answers


def statut_xml(code: int, description: str) -> str:
    """The ``<statut>`` envelope."""
    return f"<statut><id>{code}</id><description>{escape(description)}</description></statut>"


def xml_response(body: str, status_code: int = 200) -> Response:
    """A complete ``<root>`` document."""
    return Response(f"{XML_HEAD}<root>{body}</root>", status_code=status_code, media_type=XML_TYPE)


def error_response(code: int, description: str, status_code: int = 200) -> Response:
    """An error: ``<root><statut><id>N</id><description>...</description></statut></root>`` (HTTP 200)."""
    return xml_response(statut_xml(code, description), status_code)


async def request_fields(request: Request) -> dict[str, str]:
    """Query string and form fields merged (the form wins); ``partner``/``status`` alias the French names."""
    fields: dict[str, str] = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        try:
            fields.update({k: v for k, v in form.items() if isinstance(v, str)})
        finally:
            await form.close()
    if "partenaire" not in fields and "partner" in fields:
        fields["partenaire"] = fields["partner"]
    if "statut" not in fields and "status" in fields:
        fields["statut"] = fields["status"]
    return fields


def _check_partner(state: SandboxState, fields: dict[str, str]) -> Response | None:
    partner = fields.get("partenaire", "").strip().upper()
    if not partner:
        return error_response(E_MISSING_PARTNER, "Partner field (partenaire) missing or empty")
    if partner not in state.partners:
        return error_response(E_UNKNOWN_PARTNER, "Unknown partner ID")
    if partner in state.deactivated:
        return error_response(E_DEACTIVATED, "Account deactivated")
    if state.roll("quota") or not state.take_quota(partner):
        return error_response(E_QUOTA, "Too many requests in the current one-hour window")
    return None


# --------------------------------------------------------------------------- routes


def build_app(state: SandboxState) -> ASGIApp:
    """The sandbox application for ``state``, wrapped in its fault middleware."""

    async def script(request: Request) -> Response:
        site = request.path_params["site"]
        name = request.path_params["script"]
        if site not in state.book.sites:
            return Response(
                f"No Spartoo site {site!r} in this sandbox (sites: {', '.join(state.book.sites)})\n",
                status_code=404,
                media_type="text/plain",
            )
        fields = await request_fields(request)
        refused = _check_partner(state, fields)
        if refused is not None:
            return refused
        if name == "xml_export_orders.php":
            return export_orders(site, fields)
        if name == "xml_maj_orders.php":
            return update_order(site, fields)
        if name == "xml_export_products.php":
            lang = SITES[site].language
            return xml_response(statut_xml(1, "OK") + state.book.catalogue.xml(lang))
        return error_response(E_NO_SCRIPT, f"Script {name} is not implemented by the sandbox", 404)

    def export_orders(site: str, fields: dict[str, str]) -> Response:
        book = state.book
        status: int | None = None
        if fields.get("statut", "").strip():
            try:
                status = int(fields["statut"])
            except ValueError:
                return error_response(E_BAD_FILTER, f"statut filter {fields['statut']!r} is not a status code")
        oid = fields.get("oID", "").strip()
        if oid:
            index = book.index_of(oid)
            found = index is not None and book.site(index) == site and (status is None or book.status[index] == status)
            indices = [index] if found and index is not None else []
        elif fields.get("date", "").strip():
            try:
                since = parse_request_date(fields["date"])
            except ValueError:
                return error_response(E_BAD_DATE, "date must be YYYY-MM-DD:hh:mm:ss (Europe/Paris)")
            indices = book.select(site, since, status)
        else:
            return error_response(E_EXPORT_ARGS, "date or oID required")
        bad = state.pick(len(indices)) if indices and state.roll("malformed") else -1
        if bad >= 0:
            with state._lock:
                (state.malformed_lookups if oid else state.malformed_orders).append(book.order_key(indices[bad]))

        async def body() -> AsyncIterator[bytes]:
            yield f"{XML_HEAD}<root>{statut_xml(1, 'OK')}<orders>".encode()
            chunk: list[bytes] = []
            for pos, index in enumerate(indices):
                if pos == bad:
                    chunk.append(book.order_xml(index, malformed=True).encode())
                else:
                    chunk.append(book.order_bytes(index))
                if len(chunk) >= ORDERS_PER_CHUNK:
                    yield b"".join(chunk)
                    chunk = []
            chunk.append(b"</orders></root>")
            yield b"".join(chunk)

        return StreamingResponse(body(), media_type=XML_TYPE)

    def update_order(site: str, fields: dict[str, str]) -> Response:
        book = state.book
        oid = fields.get("oID", "").strip()
        if not oid:
            return error_response(E_NO_OID, "oID required")
        index = book.index_of(oid)
        if index is None or book.site(index) != site:
            return error_response(E_NO_ORDER, f"Order {oid} not found on spartoo.{site}")
        with book._lock:
            book.update_requests[index] += 1
        if "xml" in fields and "statut" not in fields:
            return error_response(E_XML_UNSUPPORTED, "Multi-parcel xml updates are not implemented by the sandbox")
        raw = fields.get("statut", "").strip()
        try:
            new = int(raw)
        except ValueError:
            new = 0
        if new not in SELLER_STATUSES:
            return error_response(E_NOT_SELLER_STATUS, f"statut {raw!r} cannot be set by a seller (only 2, 3, 41)")
        tracking = fields.get("tracking_number", "").strip()
        if new == 3 and not tracking:
            return error_response(E_NO_TRACKING, "tracking_number required with statut 3")
        with book._lock:
            current = book.status[index]
            if current == new and (new != 3 or book.tracking.get(index) == tracking):
                changed = False
            elif current == 3 and new == 3:
                return error_response(E_OTHER_TRACKING, f"Order {oid} already shipped with another tracking number")
            elif (new == 2 and current == 11) or (new == 3 and current == 2) or (new == 41 and current not in (3, 41)):
                changed = True
                book.status[index] = new
                if new == 3:
                    book.tracking[index] = tracking
                book.modified[index] = max(int(time.time()), book.modified[index] + 1)
                book.update_count[index] += 1
            else:
                return error_response(E_TRANSITION, f"Order {oid} cannot go from status {current} to {new}")
            modified = book.modified[index]
        description = (
            f"Order {oid} updated to status {new}" if changed else f"Order {oid} already in status {new}; unchanged"
        )
        track_xml = f"<tracking_number>{escape(tracking)}</tracking_number>" if new == 3 else ""
        return xml_response(
            statut_xml(1, description)
            + f"<order><orders_id>{oid}</orders_id><orders_status_id>{new}</orders_status_id>{track_xml}"
            f"<last_modified>{format_date(modified)}</last_modified><changed>{int(changed)}</changed></order>"
        )

    # ---- admin

    async def admin_orders(request: Request) -> Response:
        if request.method == "POST":
            try:
                count = int(request.query_params.get("count", "1"))
                if count < 0:
                    raise ValueError
            except ValueError:
                return JSONResponse({"error": "count must be a whole number >= 0"}, status_code=400)
            indices = state.book.add(count)
            return JSONResponse({"order_keys": [state.book.order_key(i) for i in indices]})
        site = request.query_params.get("site")
        return JSONResponse(admin_order_list(state.book, site))

    async def admin_order(request: Request) -> Response:
        book = state.book
        index = book.index_of(request.path_params["oid"])
        if index is None:
            return JSONResponse({"error": "no such order"}, status_code=404)
        data = book.order(index)
        meta = data.pop("_meta")
        return JSONResponse({**admin_order_row(book, index), "document": data, "currency": meta["currency"]})

    async def admin_faults(request: Request) -> Response:
        if request.method == "POST":
            values: dict[str, Any] = dict(request.query_params)
            if request.headers.get("content-type", "").startswith("application/json"):
                values.update(await request.json())
            try:
                return JSONResponse(state.set_faults(**values))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(dict(state.faults))

    async def admin_counters(request: Request) -> Response:
        return JSONResponse(state.counters())

    async def admin_info(request: Request) -> Response:
        return JSONResponse(
            {
                "sites": list(state.book.sites),
                "orders": len(state.book),
                "seed": state.book.seed,
                "quota_per_hour": state.quota_per_hour,
                "faults": dict(state.faults),
            }
        )

    app = Starlette(
        routes=[
            Route("/_admin/", admin_info),
            Route("/_admin/orders", admin_orders, methods=["GET", "POST"]),
            Route("/_admin/orders/{oid}", admin_order),
            Route("/_admin/faults", admin_faults, methods=["GET", "POST"]),
            Route("/_admin/counters", admin_counters),
            Route("/{site}/mp/{script}", script, methods=["GET", "POST"]),
        ]
    )
    return FaultMiddleware(app, state)


def admin_order_row(book: OrderBook, index: int) -> dict[str, Any]:
    """One order as the admin view shows it."""
    return {
        "order_key": book.order_key(index),
        "site": book.site(index),
        "orders_id": book.orders_id(index),
        "status": str(book.status[index]),
        "tracking_number": book.tracking.get(index),
        "update_count": book.update_count[index],
        "update_requests": book.update_requests[index],
        "valid": book.valid(index),
        "last_modified": format_date(book.modified[index]),
    }


def admin_order_list(book: OrderBook, site: str | None = None) -> list[dict[str, Any]]:
    """Every order (optionally of one site) as the admin view shows it."""
    with book._lock:
        return [admin_order_row(book, i) for i in range(len(book)) if site is None or book.site(i) == site]


class FaultMiddleware:
    """Outermost ASGI layer: counts Spartoo script requests and injects latency, 5xx and dropped connections."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or "/mp/" not in path or path.startswith("/_admin"):
            await self.app(scope, receive, send)
            return
        state = self.state
        with state._lock:
            state.requests[path.rsplit("/", 1)[-1]] += 1
        latency = state.faults["latency"]
        if latency > 0:
            with state._lock:
                state.injected["latency"] += 1
            await asyncio.sleep(latency / 1000.0)
        if state.roll("drop"):
            await self._drop(receive, send)
            return
        if state.roll("error"):
            code = 503 if state.pick(2) else 500
            text = b"Service Unavailable" if code == 503 else b"Internal Server Error"
            await send({"type": "http.response.start", "status": code, "headers": [(b"content-type", b"text/html")]})
            await send({"type": "http.response.body", "body": b"<html><body><h1>" + text + b"</h1></body></html>"})
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _drop(receive: Receive, send: Send) -> None:
        # uvicorn's ``send`` is a bound method of the request cycle that owns the transport: closing it
        # drops the connection before any byte of an answer. Elsewhere, fall back to a truncated answer.
        # The request is read to its end first: a socket closed with bytes of it still unread is reset,
        # and the client would see a reset (httpx ReadError) some of the time instead of a closed
        # connection with no answer (RemoteProtocolError).
        while (await receive()).get("more_body", False):
            pass
        cycle = getattr(send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if cycle is not None and transport is not None and hasattr(cycle, "disconnected"):
            transport.close()
            cycle.disconnected = True
            await asyncio.sleep(0)
            return
        await send(  # pragma: no cover - servers other than uvicorn
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]}
        )
        await send({"type": "http.response.body", "body": b"<?xml", "more_body": True})  # pragma: no cover

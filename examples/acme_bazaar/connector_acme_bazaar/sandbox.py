"""A local Acme Bazaar: the same JSON API, served on 127.0.0.1 from a background thread.

``with AcmeSandbox(orders=12) as sandbox:`` starts it on a free port;
``sandbox.settings()`` are store settings that connect to it. It implements
:class:`connector_core.testing.sandbox.Sandbox`, so the contract kit can drive it.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

API_KEY = "acme-sandbox-key-0001"
NAMES = ["Zoë Lefèvre", "Björn Ångström", "李小龍", "Ngozi Okonkwo", "Łukasz Żółć", "María José Núñez", "O'Brien"]
CITIES = [("Lyon", "69002", "FR"), ("Malmö", "211 22", "SE"), ("Kraków", "31-001", "PL"), ("Cork", "T12 X70", "IE")]
PRODUCTS = [
    ("TEE-RED-M", "T-shirt rouge M", "19.90"),
    ("MUG-01", "Mug émaillé", "8.50"),
    ("SOCK-3P", "Socks ×3", "12.00"),
]


class _Dropped(Exception):
    """Raised mid-answer to make the server close the connection (the drop fault)."""


class AcmeSandbox:
    """A running Acme Bazaar sandbox (use as a context manager)."""

    def __init__(self, *, orders: int = 12, seed: int = 0, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.url = ""
        self._rng = random.Random(seed)
        self._faults: dict[str, float] = {}
        self._lock = threading.Lock()
        self._orders: dict[str, dict[str, Any]] = {}
        self._seq = 0
        self._count = 0
        self._app = Starlette(
            routes=[
                Route("/api/v1/shop", self._shop),
                Route("/api/v1/orders", self._list_orders),
                Route("/api/v1/orders/{id}/accept", self._accept, methods=["POST"]),
                Route("/api/v1/orders/{id}/cancel", self._cancel, methods=["POST"]),
                Route("/api/v1/orders/{id}/shipment", self._ship, methods=["PUT"]),
                Route("/api/v1/orders/{id}/parcels", self._ship, methods=["POST"]),
            ]
        )
        self.add_orders(orders)

    # -- the Sandbox protocol ---------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Store settings that connect to this sandbox."""
        return {"api_key": self.api_key, "base_url": self.url + "/"}

    def bad_settings(self) -> dict[str, Any]:
        """The same settings with an API key the sandbox refuses."""
        return {**self.settings(), "api_key": "acme-revoked-key-9999"}

    def add_orders(self, count: int) -> list[str]:
        """Create ``count`` new orders; every fifth one has no shipping address."""
        with self._lock:
            return [self._new_order() for _ in range(count)]

    def orders(self) -> list[dict[str, Any]]:
        """Every order: key, status, tracking number, shipments received, and whether it is importable."""
        with self._lock:
            return [
                {
                    "order_key": o["id"],
                    "status": o["status"],
                    "tracking_number": o["tracking_number"],
                    "carrier": o["carrier"],
                    "shipments": len(o["_shipments"]),
                    "valid": o["shipping_address"] is not None,
                }
                for o in self._orders.values()
            ]

    def set_faults(self, **rates: float) -> None:
        """Fault rates per API call: ``error_rate`` (HTTP 503), ``drop_rate``, ``quota_rate`` (HTTP 429)."""
        unknown = set(rates) - {"error_rate", "drop_rate", "quota_rate"}
        if unknown:
            raise ValueError(f"the Acme sandbox has no fault {', '.join(sorted(unknown))}")
        self._faults = dict(rates)

    # -- orders -----------------------------------------------------------------

    def _new_order(self) -> str:
        self._count += 1
        n, rng = self._count, self._rng
        city, postcode, country = rng.choice(CITIES)
        name = rng.choice(NAMES)
        sample = rng.sample(PRODUCTS, rng.randint(1, 3))
        picked = [(sku, title, price, rng.randint(1, 3)) for sku, title, price in sample]
        lines: list[dict[str, Any]] = [
            {"line_id": str(i + 1), "sku": sku, "title": title, "qty": qty, "price": price}
            for i, (sku, title, price, qty) in enumerate(picked)
        ]
        shipping = Decimal("4.90")
        total = sum((Decimal(price) * qty for _, _, price, qty in picked), shipping)
        created = datetime(2024, 5, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=37 * n)
        order: dict[str, Any] = {
            "id": f"AB-{1000 + n}",
            "status": "new",
            "created_at": created.isoformat(),
            "updated_at": created.isoformat(),
            "currency": "EUR",
            "buyer": {"name": name, "email": f"buyer{n}@example.org", "phone": f"+33 6 12 34 {n % 100:02d} 00"},
            "shipping_address": None
            if n % 5 == 0
            else {"name": name, "street": f"{n} rue des Lilas", "city": city, "postcode": postcode, "country": country},
            "lines": lines,
            "shipping_price": str(shipping),
            "total": str(total),
            "note": "Leave at the door, please" if n % 3 == 0 else None,
            "tracking_number": None,
            "carrier": None,
            "_shipments": [],
        }
        self._orders[order["id"]] = order
        self._touch(order)
        return str(order["id"])

    def _touch(self, order: dict[str, Any]) -> None:
        self._seq += 1
        order["seq"] = self._seq
        if self._seq > self._count:  # a change after creation
            order["updated_at"] = datetime.now(UTC).isoformat()

    @staticmethod
    def _public(order: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in order.items() if not k.startswith("_")}

    # -- the HTTP API -----------------------------------------------------------

    def _refused(self, request: Request) -> JSONResponse | None:
        if request.headers.get("x-api-key") != self.api_key:
            return JSONResponse({"error": "unauthorized", "message": "unknown API key"}, status_code=401)
        return None

    async def _shop(self, request: Request) -> JSONResponse:
        return self._refused(request) or JSONResponse({"shop_id": "acme-demo", "name": "Acme Demo Shop"})

    async def _list_orders(self, request: Request) -> JSONResponse:
        if refused := self._refused(request):
            return refused
        after, limit = int(request.query_params.get("after", 0)), int(request.query_params.get("limit", 50))
        with self._lock:
            changed = sorted((o for o in self._orders.values() if o["seq"] > after), key=lambda o: o["seq"])
            page = [self._public(o) for o in changed[:limit]]
        nxt = page[-1]["seq"] if page else after
        return JSONResponse({"orders": page, "next": nxt, "has_more": len(changed) > limit})

    async def _change(self, request: Request, allowed: dict[str, str], done: str) -> JSONResponse:
        if refused := self._refused(request):
            return refused
        with self._lock:
            order = self._orders.get(request.path_params["id"])
            if order is None:
                return JSONResponse({"error": "not_found", "message": "no such order"}, status_code=404)
            if order["status"] == done:
                return JSONResponse({"status": done, "changed": False})
            if order["status"] not in allowed:
                message = f"order {order['id']} is {order['status']}: cannot become {done}"
                return JSONResponse({"error": "conflict", "message": message}, status_code=409)
            order["status"] = done
            self._touch(order)
            return JSONResponse({"status": done, "changed": True})

    async def _accept(self, request: Request) -> JSONResponse:
        return await self._change(request, {"new": "accept"}, "accepted")

    async def _cancel(self, request: Request) -> JSONResponse:
        return await self._change(request, {"new": "cancel", "accepted": "cancel"}, "cancelled")

    async def _ship(self, request: Request) -> JSONResponse:
        if refused := self._refused(request):
            return refused
        form = await request.form()
        tracking, carrier = str(form.get("tracking_number", "")), str(form.get("carrier", "")) or None
        with self._lock:
            order = self._orders.get(request.path_params["id"])
            if order is None:
                return JSONResponse({"error": "not_found", "message": "no such order"}, status_code=404)
            parcel = request.method == "POST"  # POST .../parcels adds a parcel every time: not idempotent
            if not parcel and order["status"] == "shipped" and order["tracking_number"] == tracking:
                return JSONResponse({"status": "shipped", "changed": False})
            if order["status"] not in ("accepted", "shipped") or not tracking:
                message = f"order {order['id']} is {order['status']}: accept it before shipping, with a tracking number"
                return JSONResponse({"error": "conflict", "message": message}, status_code=409)
            order.update(status="shipped", tracking_number=tracking, carrier=carrier)
            order["_shipments"].append({"tracking_number": tracking, "carrier": carrier})
            self._touch(order)
            return JSONResponse({"status": "shipped", "changed": True})

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self._fault() if scope["type"] == "http" else None
        if fault == "drop":  # start an answer, then hang up halfway through it
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
            await send({"type": "http.response.body", "body": b'{"orders": [', "more_body": True})
            raise _Dropped
        if fault == "error":
            await JSONResponse({"error": "unavailable"}, status_code=503)(scope, receive, send)
        elif fault == "quota":
            await JSONResponse({"error": "quota"}, status_code=429, headers={"Retry-After": "1"})(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    def _fault(self) -> str | None:
        roll = self._rng.random()
        for name in ("drop", "error", "quota"):
            rate = self._faults.get(f"{name}_rate", 0.0)
            if roll < rate:
                return name
            roll -= rate
        return None

    # -- running ----------------------------------------------------------------

    def __enter__(self) -> AcmeSandbox:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self._server = uvicorn.Server(
            uvicorn.Config(self._asgi, interface="asgi3", log_level="critical", lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the Acme sandbox server did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join()
        self._sock.close()

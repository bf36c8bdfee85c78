"""A local Acme Bazaar: the same JSON API, served on 127.0.0.1 from a background thread.

``with AcmeSandbox(orders=12) as sandbox:`` starts it on a free port;
``sandbox.settings()`` are store settings that connect to it. It implements
:class:`connector_core.testing.sandbox.Sandbox` and the optional
``expected_orders``, ``expire_credentials`` and ``issued_secrets``, so the
contract kit can drive it. Orders come in EUR, JPY and KWD (two, zero and
three minor units); dates are written in Paris time with their offset; a
page holds at most ``page_size`` orders, so a sync takes several.
"""

from __future__ import annotations

import random
import secrets
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

CLIENT_ID = "acme-demo-client"
CLIENT_SECRET = "acme-sandbox-secret-0001"
PARIS = ZoneInfo("Europe/Paris")
#: currency -> (minor units, how many minor units one euro cent is worth); the sandbox's own table
CURRENCIES = {"EUR": (2, Decimal(1)), "JPY": (0, Decimal("1.6")), "KWD": (3, Decimal("3.3"))}
NAMES = ["Zoë Lefèvre", "Björn Ångström", "李小龍", "Ngozi Okonkwo", "Łukasz Żółć", "María José Núñez", "O'Brien"]
CITIES = [("Lyon", "69002", "FR"), ("Malmö", "211 22", "SE"), ("Kraków", "31-001", "PL"), ("Cork", "T12 X70", "IE")]
PRODUCTS = [("TEE-RED-M", "T-shirt rouge M", 1990), ("MUG-01", "Mug émaillé", 850), ("SOCK-3P", "Socks ×3", 1200)]
SHIPPING_EUR_CENTS = 490


class _Dropped(Exception):
    """Raised mid-answer to make the server close the connection (the drop fault)."""


class AcmeSandbox:
    """A running Acme Bazaar sandbox (use as a context manager)."""

    def __init__(self, *, orders: int = 12, seed: int = 0, page_size: int = 5, token_ttl: int = 3600) -> None:
        self.client_id, self.client_secret = CLIENT_ID, CLIENT_SECRET
        self.page_size = page_size
        self.token_ttl = token_ttl
        self.url = ""
        self._tokens: dict[str, float] = {}  # live access token -> when it expires (time.time())
        self._issued: list[str] = []
        self._rng = random.Random(seed)
        self._faults: dict[str, float] = {}
        self._lock = threading.Lock()
        self._orders: dict[str, dict[str, Any]] = {}
        self._seq = 0
        self._count = 0
        self._app = Starlette(
            routes=[
                Route("/oauth/token", self._token, methods=["POST"]),
                Route("/api/v1/shop", self._shop),
                Route("/api/v1/orders", self._list_orders),
                Route("/api/v1/orders/{id}/accept", self._accept, methods=["POST"]),
                Route("/api/v1/orders/{id}/cancel", self._cancel, methods=["POST"]),
                Route("/api/v1/orders/{id}/shipments", self._ship, methods=["POST"]),
                Route("/api/v1/orders/{id}/parcels", self._ship, methods=["POST"]),
            ]
        )
        self.add_orders(orders)

    # -- the Sandbox protocol ---------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Store settings that connect to this sandbox."""
        return {"client_id": self.client_id, "client_secret": self.client_secret, "base_url": self.url + "/"}

    def bad_settings(self) -> dict[str, Any]:
        """The same settings with a client secret the sandbox refuses."""
        return {**self.settings(), "client_secret": "acme-revoked-secret-9999"}

    def add_orders(self, count: int) -> list[str]:
        """Create ``count`` new orders; every fifth one has no shipping address."""
        with self._lock:
            return [self._new_order() for _ in range(count)]

    def orders(self) -> list[dict[str, Any]]:
        """Every order: key, status, tracking number, shipments, quantities shipped per line, importable or not."""
        with self._lock:
            return [
                {
                    "order_key": o["id"],
                    "status": o["status"],
                    "tracking_number": o["tracking_number"],
                    "carrier": o["carrier"],
                    "shipments": len(o["_shipments"]),
                    "shipped": dict(o["shipped"]),
                    "valid": o["shipping_address"] is not None,
                }
                for o in self._orders.values()
            ]

    def expected_orders(self) -> dict[str, dict[str, Any]]:
        """The canonical truth of every importable order, from the sandbox's own figures and clock."""
        with self._lock:
            return {o["id"]: self._truth(o) for o in self._orders.values() if o["shipping_address"] is not None}

    def expire_credentials(self) -> None:
        """Every access token issued so far is refused from now on (``401 invalid_token``)."""
        with self._lock:
            self._tokens.clear()

    def issued_secrets(self) -> list[str]:
        """Every access token the sandbox handed out."""
        with self._lock:
            return list(self._issued)

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
        currency = list(CURRENCIES)[n % len(CURRENCIES)]
        rate = CURRENCIES[currency][1]
        sample = rng.sample(PRODUCTS, rng.randint(1, 3))
        lines: list[dict[str, Any]] = [
            {"line_id": str(i + 1), "sku": sku, "title": title, "qty": rng.randint(1, 3), "price": int(cents * rate)}
            for i, (sku, title, cents) in enumerate(sample)
        ]
        shipping = int(SHIPPING_EUR_CENTS * rate)
        created = datetime(2024, 5, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=37 * n)
        order: dict[str, Any] = {
            "id": f"AB-{1000 + n}",
            "status": "new",
            "created_at": created.astimezone(PARIS).isoformat(),
            "updated_at": created.astimezone(PARIS).isoformat(),
            "currency": currency,
            "buyer": {"name": name, "email": f"buyer{n}@example.org", "phone": f"+33 6 12 34 {n % 100:02d} 00"},
            "shipping_address": None
            if n % 5 == 0
            else {"name": name, "street": f"{n} rue des Lilas", "city": city, "postcode": postcode, "country": country},
            "lines": lines,
            "shipping_price": shipping,
            "total": sum(line["price"] * line["qty"] for line in lines) + shipping,
            "note": "Leave at the door, please" if n % 3 == 0 else None,
            "tracking_number": None,
            "carrier": None,
            "shipped": {},
            "_shipments": [],
            "_created": created,
        }
        self._orders[order["id"]] = order
        self._touch(order)
        return str(order["id"])

    @staticmethod
    def _truth(order: dict[str, Any]) -> dict[str, Any]:
        units = CURRENCIES[order["currency"]][0]

        def amount(minor: int) -> str:
            return str(Decimal(minor).scaleb(-units))

        return {
            "order_number": order["id"],
            "currency": order["currency"],
            "order_date": order["_created"].isoformat(),
            "total": amount(order["total"]),
            "shipping_amount": amount(order["shipping_price"]),
            "customer": {"name": order["buyer"]["name"], "email": order["buyer"]["email"]},
            "ship_to": {
                "country": order["shipping_address"]["country"],
                "postal_code": order["shipping_address"]["postcode"],
            },
            "customer_notes": order["note"],
            "items": [
                {
                    "line_key": line["line_id"],
                    "sku": line["sku"],
                    "quantity": line["qty"],
                    "unit_price": amount(line["price"]),
                }
                for line in order["lines"]
            ],
        }

    def _touch(self, order: dict[str, Any]) -> None:
        self._seq += 1
        order["seq"] = self._seq
        if self._seq > self._count:  # a change after creation
            order["updated_at"] = datetime.now(UTC).astimezone(PARIS).isoformat()

    @staticmethod
    def _public(order: dict[str, Any]) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in order.items() if not k.startswith("_")}

    # -- the HTTP API -----------------------------------------------------------

    def _refused(self, request: Request) -> JSONResponse | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            live = scheme.lower() == "bearer" and self._tokens.get(token, 0.0) > time.time()
        if not live:
            return JSONResponse({"error": "invalid_token", "message": "unknown or expired token"}, status_code=401)
        return None

    async def _token(self, request: Request) -> JSONResponse:
        form = await request.form()
        good = (form.get("client_id"), form.get("client_secret")) == (self.client_id, self.client_secret)
        if form.get("grant_type") != "client_credentials" or not good:
            return JSONResponse({"error": "invalid_client", "message": "unknown client"}, status_code=401)
        token = "acme_at_" + secrets.token_urlsafe(18)
        with self._lock:
            self._tokens[token] = time.time() + self.token_ttl
            self._issued.append(token)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl})

    async def _shop(self, request: Request) -> JSONResponse:
        return self._refused(request) or JSONResponse({"shop_id": "acme-demo", "name": "Acme Demo Shop"})

    async def _list_orders(self, request: Request) -> JSONResponse:
        if refused := self._refused(request):
            return refused
        after = int(request.query_params.get("after", 0))
        limit = min(int(request.query_params.get("limit", 50)), self.page_size)
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
        parcel = request.url.path.endswith("/parcels")  # POST .../parcels adds a parcel every time: not idempotent
        body: dict[str, Any] = dict(await request.form()) if parcel else await request.json()
        tracking, carrier = str(body.get("tracking_number", "")), str(body.get("carrier") or "") or None
        with self._lock:
            order = self._orders.get(request.path_params["id"])
            if order is None:
                return JSONResponse({"error": "not_found", "message": "no such order"}, status_code=404)
            if not parcel and any(s["tracking_number"] == tracking for s in order["_shipments"]):
                return JSONResponse({"status": order["status"], "changed": False})
            if order["status"] not in ("accepted", "shipped") or not tracking:
                message = f"order {order['id']} is {order['status']}: accept it before shipping, with a tracking number"
                return JSONResponse({"error": "conflict", "message": message}, status_code=409)
            ordered = {line["line_id"]: line["qty"] for line in order["lines"]}
            left = {key: qty - order["shipped"].get(key, 0) for key, qty in ordered.items()}
            wanted = {str(x["line_id"]): int(x["qty"]) for x in body.get("lines") or []} or {
                k: q for k, q in left.items() if q > 0
            }
            if parcel:
                wanted = {}
            if any(key not in left or qty < 1 or qty > left[key] for key, qty in wanted.items()):
                message = f"order {order['id']}: lines {wanted} exceed what is left to ship {left}"
                return JSONResponse({"error": "conflict", "message": message}, status_code=409)
            for key, qty in wanted.items():
                order["shipped"][key] = order["shipped"].get(key, 0) + qty
            done = all(order["shipped"].get(key, 0) >= qty for key, qty in ordered.items())
            order.update(status="shipped" if done or parcel else "accepted", tracking_number=tracking, carrier=carrier)
            order["_shipments"].append({"tracking_number": tracking, "carrier": carrier, "lines": wanted})
            self._touch(order)
            return JSONResponse({"status": order["status"], "changed": True})

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

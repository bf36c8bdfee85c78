"""A tiny in-process Spartoo for httpx.MockTransport unit tests (the sandbox covers the real HTTP path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
from spartoo_docs import document, envelope, simple_order

from connector_core.http import HttpPolicy, RetryingClient
from connector_core.store_context import StoreContext

PARTNER = "EF40F969744AF620"
BASE = "https://sws.spartoo.{site}/mp/"

ALLOWED = {"2": {"11"}, "3": {"2"}, "41": {"11", "2", "45", "47"}}


class FakeSpartoo:
    """Orders per site with Spartoo's transition rules; records every request's form."""

    def __init__(self) -> None:
        self.orders: dict[tuple[str, str], dict[str, str]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (site, script, form)
        self.before: list[Callable[[str, str, dict[str, str]], httpx.Response | None]] = []
        self.products = b"<root><products></products></root>"

    def add(self, site: str, order_id: str, status: str = "11") -> None:
        self.orders[(site, order_id)] = {"status": status, "tracking": ""}

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        site = request.url.host.removeprefix("sws.spartoo.")
        script = request.url.path.rsplit("/", 1)[-1]
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.requests.append((site, script, form))
        for hook in list(self.before):
            answer = hook(site, script, form)
            if answer is not None:
                return answer
        if form.get("partenaire") != PARTNER:
            return httpx.Response(200, content=envelope(-2 if form.get("partenaire") else -1, "partenaire inconnu"))
        if script == "xml_export_orders.php":
            chosen = [oid for (s, oid) in self.orders if s == site and ("oID" not in form or form["oID"] == oid)]
            xml = []
            for oid in chosen:
                state = self.orders[(site, oid)]
                order = simple_order(oid, state["status"])
                if state["tracking"]:
                    order = order.replace("</order>", f"<tracking_number>{state['tracking']}</tracking_number></order>")
                xml.append(order)
            return httpx.Response(200, content=document(*xml))
        if script == "xml_maj_orders.php":
            state = self.orders.get((site, form.get("oID", "")))
            if state is None:
                return httpx.Response(200, content=envelope(-3, "commande inconnue"))
            target = form.get("statut", "")
            if state["status"] not in ALLOWED.get(target, set()):
                return httpx.Response(200, content=envelope(-4, f"transition {state['status']} -> {target} interdite"))
            state["status"] = target
            if target == "3":
                state["tracking"] = form.get("tracking_number", "")
            return httpx.Response(200, content=envelope(1, "OK"))
        if script == "xml_export_products.php":
            return httpx.Response(200, content=self.products)
        return httpx.Response(404)

    def scripts(self, script: str) -> list[dict[str, str]]:
        return [form for _, s, form in self.requests if s == script]


def make_store(fake: FakeSpartoo, **settings: Any) -> StoreContext:
    """A store on the fake, with a retry policy that does not wait."""
    http = RetryingClient(HttpPolicy(max_attempts=4), transport=fake.transport(), sleep=lambda _s: None)
    values = {"partner_id": PARTNER, "base_url": BASE} | settings
    return StoreContext(name="shop", marketplace="spartoo", settings=values, http=http)

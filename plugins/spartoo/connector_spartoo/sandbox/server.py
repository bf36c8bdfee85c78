"""Run the Spartoo sandbox on loopback in a background thread.

>>> with SpartooSandbox(orders=50, seed=3) as sandbox:      # doctest: +SKIP
...     settings = sandbox.settings()   # partner_id, sites, base_url = f"{sandbox.url}/{{site}}/mp/"

:class:`SpartooSandbox` implements :class:`connector_core.testing.sandbox.Sandbox`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import uvicorn

from connector_spartoo.sandbox.app import (
    DEACTIVATED_PARTNER_ID,
    DEFAULT_PARTNER_ID,
    DEFAULT_QUOTA_PER_HOUR,
    SandboxState,
    admin_order_list,
    build_app,
)
from connector_spartoo.sandbox.data import SITES, OrderBook

BAD_PARTNER_ID = "0BADC0DE0BADC0DE"
"""A partner ID no sandbox knows (answers -2)."""


class SpartooSandbox:
    """A Spartoo seller web service on ``127.0.0.1`` (port 0 = a free port), in a background thread."""

    def __init__(
        self,
        *,
        orders: int = 100,
        seed: int = 1,
        sites: Sequence[str] | None = None,
        partner_ids: Iterable[str] = (DEFAULT_PARTNER_ID,),
        deactivated_ids: Iterable[str] = (DEACTIVATED_PARTNER_ID,),
        quota_per_hour: int = DEFAULT_QUOTA_PER_HOUR,
        host: str = "127.0.0.1",
        port: int = 0,
        anchor: int | None = None,
        history_days: float = 30.0,
        catalogue_size: int = 240,
        xml_cache: int = 4096,
        **faults: float,
    ) -> None:
        self.book = OrderBook(
            seed,
            orders,
            sites=sites,
            anchor=anchor,
            history_days=history_days,
            catalogue_size=catalogue_size,
            xml_cache=xml_cache,
        )
        self.partner_ids = [p.strip().upper() for p in partner_ids] or [DEFAULT_PARTNER_ID]
        self.state = SandboxState(
            self.book,
            partner_ids=self.partner_ids,
            deactivated_ids=deactivated_ids,
            quota_per_hour=quota_per_hour,
            faults=faults,
        )
        self.host = host
        self._port = port
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SpartooSandbox(url={self.url!r}, orders={len(self.book)}, sites={list(self.book.sites)})"

    # ---- lifecycle

    def start(self) -> SpartooSandbox:
        """Start serving; return once the port is bound (``self.url`` is then set)."""
        if self._thread is not None:
            return self
        config = uvicorn.Config(
            build_app(self.state),
            host=self.host,
            port=self._port,
            lifespan="off",
            access_log=False,
            log_level="critical",
            log_config=None,
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="spartoo-sandbox", daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                thread.join()
                raise RuntimeError(f"the Spartoo sandbox could not start on {self.host}:{self._port}")
            thread.join(0.01)
        sockets = [s for srv in server.servers for s in srv.sockets]
        port = sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}"
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread to end."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(10)
        self._server, self._thread = None, None

    def __enter__(self) -> SpartooSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the Sandbox protocol

    def settings(self) -> dict[str, Any]:
        """Store settings for ``connector-host stores add spartoo`` that reach this sandbox."""
        return {
            "partner_id": self.partner_ids[0],
            "sites": list(self.book.sites),
            "base_url": f"{self.url}/{{site}}/mp/",
            "timezone": "Europe/Paris",
        }

    def bad_settings(self) -> dict[str, Any]:
        """The same settings with a partner ID the sandbox refuses (-2)."""
        return {**self.settings(), "partner_id": BAD_PARTNER_ID}

    def add_orders(self, count: int) -> list[str]:
        """Create ``count`` new status-11 orders dated now; return their keys (``site:orders_id``)."""
        return [self.book.order_key(i) for i in self.book.add(count)]

    def orders(self) -> list[dict[str, Any]]:
        """Every order: order_key, site, orders_id, status, tracking_number, update_count, valid, ..."""
        return admin_order_list(self.book)

    def order_document(self, order_key: str) -> dict[str, Any]:
        """The order's export content as a dict keyed by Spartoo tag names (plus ``_meta``)."""
        site, _, oid = order_key.partition(":")
        index = self.book.index_of(oid)
        if index is None or self.book.site(index) != site:
            raise KeyError(order_key)
        return self.book.order(index)

    def expected_orders(self) -> dict[str, dict[str, Any]]:
        """The canonical truth of every importable order, from the generator's own epochs and figures.

        Dates come from the epochs the sandbox keeps (the XML writes them in
        Paris wall-clock time), the currency from the site, money from the
        exact figures; a line's discount is (unit price - reduced price) x quantity.
        """
        truth = {}
        for index in range(len(self.book)):
            if not self.book.valid(index):
                continue
            doc = self.book.order(index)
            _status, purchased, modified, _tracking = self.book._state(index)
            items = []
            for line in doc["products"]["product"]:
                unit, reduced = Decimal(line["products_price_unit"]), Decimal(line["products_price_unit_with_reduce"])
                qty = int(line["products_qty"])
                items.append({"quantity": qty, "unit_price": str(unit), "discount": str((unit - reduced) * qty)})
            truth[self.book.order_key(index)] = {
                "order_number": doc["orders_id"],
                "currency": doc["_meta"]["currency"],
                "order_date": datetime.fromtimestamp(purchased, UTC).isoformat(),
                "modified_date": datetime.fromtimestamp(modified, UTC).isoformat(),
                "total": doc["order_total"],
                "shipping_amount": doc["shipping_price"],
                "payment_fee": doc["payment_price"],
                "items": items,
            }
        return truth

    def set_faults(self, **rates: float) -> None:
        """Make the faults exactly ``rates``: ``error_rate``, ``drop_rate``, ``malformed_rate``, ``quota_rate``
        (shares in [0, 1]) and ``latency`` (ms); those not given go back to 0, so ``set_faults()`` clears them."""
        self.state.set_faults(**rates)

    def counters(self) -> dict[str, Any]:
        """Requests served and faults injected, by kind."""
        return self.state.counters()


@contextmanager
def sandbox_factory(*, orders: int = 100, seed: int = 1, **options: Any) -> Iterator[SpartooSandbox]:
    """Start a :class:`SpartooSandbox` with ``options``; stop it on exit (the contract kit's factory).

    ``options`` are :class:`SpartooSandbox`'s keyword arguments (``sites``,
    ``partner_ids``, ``quota_per_hour``, fault rates...).
    """
    sandbox = SpartooSandbox(orders=orders, seed=seed, **options).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


__all__ = ["BAD_PARTNER_ID", "DEFAULT_PARTNER_ID", "SITES", "SpartooSandbox", "sandbox_factory"]

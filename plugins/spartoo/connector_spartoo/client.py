"""A typed client of Spartoo's seller web service (XML over form-encoded POST).

Every call is a ``POST`` to ``<base_url with site>/<script>.php`` with the
partner ID in the form field ``partenaire``. The partner ID travels in the
request body only (never in a URL, so httpx's request log lines do not show
it) and is registered with :mod:`connector_core.secrets` so that any message
that might echo it is masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from lxml import etree

from connector_core.errors import MarketplaceError, TransitionError
from connector_core.http import RetryingClient, iter_body
from connector_core.models import RawReject
from connector_core.secrets import register_secret
from connector_spartoo.settings import SpartooSettings
from connector_spartoo.xmlstream import (
    DEFAULT_MAX_DEPTH,
    ENVELOPE_MAX_BYTES,
    OrderStream,
    UnusableElement,
    element_to_json,
    parse_envelope,
    stream_elements,
)

EXPORT_ORDERS = "xml_export_orders.php"
UPDATE_ORDER = "xml_maj_orders.php"
EXPORT_PRODUCTS = "xml_export_products.php"

#: Statuses a seller may send with ``xml_maj_orders.php``.
SELLER_STATUSES = ("2", "3", "41")

_END = object()


def format_date(when: datetime, settings: SpartooSettings) -> str:
    """``when`` as Spartoo's ``date`` field: ``YYYY-MM-DD:hh:mm:ss`` in the store's time zone."""
    if when.tzinfo is None:
        raise ValueError("format_date needs an aware datetime")
    return when.astimezone(settings.zone).strftime("%Y-%m-%d:%H:%M:%S")


def _check_http(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise MarketplaceError(
            f"Spartoo answered HTTP {response.status_code} for {response.request.url.path}: check base_url and sites",
            code=response.status_code,
        )


class OrderExport:
    """One streamed ``xml_export_orders.php`` answer: iterate it for orders and rejects.

    The request and the parse up to the first order run under the store's
    retry policy (a -429 envelope, a 5xx or a dropped connection before any
    order is retried). :attr:`complete` tells, after iteration, whether the
    whole document was read; :attr:`started` is when the request was sent.
    """

    def __init__(self, client: SpartooClient, site: str, form: dict[str, str]) -> None:
        self._client = client
        self.site = site
        self._form = form
        self.complete = False
        self.failure: str | None = None
        self.started: datetime | None = None

    def _open(self) -> tuple[ExitStack, OrderStream, Iterator[dict[str, Any] | RawReject], Any]:
        c = self._client
        stack = ExitStack()
        try:
            self.started = datetime.now(UTC)
            response = stack.enter_context(
                c.http.stream(
                    "POST", c.settings.url(self.site, EXPORT_ORDERS), data=self._form, timeout=c.settings.timeout
                )
            )
            _check_http(response)
            stream = OrderStream(iter_body(response), site=self.site, max_bytes=c.max_bytes, max_depth=c.max_depth)
            it = iter(stream)
            head = next(it, _END)
        except BaseException:
            stack.close()
            raise
        return stack, stream, it, head

    def __iter__(self) -> Iterator[dict[str, Any] | RawReject]:
        stack, stream, it, head = self._client.http.retrying(f"Spartoo {self.site} export orders", self._open)
        with stack:
            if head is not _END:
                yield head
                yield from it
            self.complete = stream.complete
            self.failure = stream.failure


class SpartooClient:
    """Spartoo's seller web service for one store (all its sites)."""

    def __init__(
        self,
        settings: SpartooSettings,
        http: RetryingClient,
        *,
        max_bytes: int | None = None,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.settings = settings
        self.http = http
        self.max_bytes = settings.max_bytes if max_bytes is None else max_bytes  # the store's max_document_mb
        self.max_depth = max_depth
        register_secret(settings.partner_id)

    def __repr__(self) -> str:
        return f"SpartooClient(sites={list(self.settings.sites)!r})"

    def _form(self, **fields: str | None) -> dict[str, str]:
        form = {"partenaire": self.settings.partner_id}
        form.update({k: v for k, v in fields.items() if v is not None})
        return form

    def _post(
        self, site: str, script: str, *, max_bytes: int = ENVELOPE_MAX_BYTES, **fields: str | None
    ) -> etree._Element:
        parsed: list[etree._Element] = []

        def check(response: httpx.Response) -> None:
            # inside the retry loop, so a -429 envelope in a 200 answer is waited for and retried
            _check_http(response)
            parsed.append(parse_envelope(response.content, site=site, max_bytes=max_bytes))

        self.http.request(  # the body is streamed and refused past max_bytes before it is held whole
            "POST",
            self.settings.url(site, script),
            data=self._form(**fields),
            timeout=self.settings.timeout,
            check=check,
            max_bytes=max_bytes,
        )
        return parsed[-1]

    def check_auth(self, site: str) -> None:
        """A cheap authenticated call on ``site``: raise the matching error if refused.

        It asks ``xml_export_orders.php`` for orders since *tomorrow* (an
        empty document: orders changed this very second stay out of it):
        every field is documented, nothing is changed, and a bad partner ID
        answers with the ``statut`` envelope.
        """
        for _ in self.export_orders(site, datetime.now(UTC) + timedelta(days=1)):
            pass

    def export_orders(
        self, site: str, since: datetime | None = None, *, statut: str | None = None, order_id: str | None = None
    ) -> OrderExport:
        """Orders of ``site`` changed since ``since`` (or the one order ``order_id``), streamed."""
        if (since is None) == (order_id is None):
            raise ValueError("export_orders needs exactly one of since or order_id")
        form = self._form(
            date=format_date(since, self.settings) if since is not None else None, oID=order_id, statut=statut
        )
        return OrderExport(self, site, form)

    def get_order(self, site: str, order_id: str) -> dict[str, Any] | None:
        """The current document of one order, or ``None`` if Spartoo does not return it.

        The push reads an order before each update, so this one-order answer
        is read whole (under the store's size cap) and parsed in one go
        rather than streamed: the same parser and checks as
        :meth:`export_orders`, without a stream's per-chunk machinery. The
        parse runs inside the retry loop, so a ``-429`` envelope or a
        truncated answer is retried like any transient failure.
        """
        found: list[dict[str, Any]] = []

        def check(response: httpx.Response) -> None:
            _check_http(response)
            stream = OrderStream((response.content,), site=site, max_bytes=self.max_bytes, max_depth=self.max_depth)
            found[:] = [item for item in stream if isinstance(item, dict) and item.get("orders_id") == order_id][:1]

        self.http.request(
            "POST",
            self.settings.url(site, EXPORT_ORDERS),
            data=self._form(oID=order_id),
            timeout=self.settings.timeout,
            check=check,
            max_bytes=self.max_bytes,
        )
        return found[0] if found else None

    def update_order(self, site: str, order_id: str, statut: str, tracking_number: str | None = None) -> None:
        """Set an order's status (2 accept, 3 ship with ``tracking_number``, 41 cancel).

        A negative answer other than auth/account/quota is a
        :class:`TransitionError` carrying Spartoo's description.
        """
        if statut not in SELLER_STATUSES:
            raise ValueError(f"a seller may only set status 2, 3 or 41, not {statut!r}")
        if statut == "3" and not tracking_number:
            raise ValueError("status 3 (shipped) needs a tracking number")
        try:
            self._post(site, UPDATE_ORDER, oID=order_id, statut=statut, tracking_number=tracking_number)
        except MarketplaceError as err:
            if type(err) is MarketplaceError and isinstance(err.code, int) and err.code < 0:
                raise TransitionError(
                    f"Spartoo refused to set order {site}:{order_id} to status {statut}: {err.message}",
                    code=err.code,
                    order_key=f"{site}:{order_id}",
                ) from None
            raise

    def export_products(self, site: str) -> Iterator[dict[str, Any]]:
        """The seller's online catalogue on ``site`` (``xml_export_products.php``), streamed.

        Each product is the JSON form of its ``<product>`` element (photos
        ``url1..url8``, ``product_url``, ``size_list/size`` with
        ``size_name``, ``size_quantity``, ``size_reference``, ``ean``). The
        answer is parsed as it arrives and each product freed once read
        (:func:`~connector_spartoo.xmlstream.stream_elements`), under the
        store's size cap and the request's deadline.
        """
        c = self.http
        with c.stream(
            "POST", self.settings.url(site, EXPORT_PRODUCTS), data=self._form(), timeout=self.settings.timeout
        ) as r:
            _check_http(r)
            for elem in stream_elements(
                iter_body(r), "product", site=site, max_bytes=self.max_bytes, max_depth=self.max_depth
            ):
                try:
                    doc = element_to_json(elem, max_depth=self.max_depth)
                except UnusableElement:
                    continue  # a product we cannot read is left out of the catalogue import
                if isinstance(doc, dict):
                    yield doc

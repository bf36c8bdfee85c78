"""The HTTP retry policy (with httpx.MockTransport) and the canonical models' JSON round trips."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from bazaar_plugin import Bazaar, make_order

from connector_core.errors import AuthError, ConfigError, QuotaError, TransientError
from connector_core.http import HttpPolicy, RetryingClient
from connector_core.models import (
    FieldOutcome,
    FieldResult,
    Order,
    PushResult,
    RawOrder,
    Shipment,
    ShipmentItem,
    from_json,
    to_json,
)
from connector_core.schema_registry import canonical_registry
from connector_core.store_context import StoreContext

URL = "http://127.0.0.1:9/mp/export.php"


def _client(
    handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float], attempts: int = 4
) -> RetryingClient:
    policy = HttpPolicy(max_attempts=attempts, backoff_base=0.01, backoff_max=0.05)
    return RetryingClient(policy, transport=httpx.MockTransport(handler), sleep=sleeps.append)


def test_retries_5xx_and_dropped_connections() -> None:
    """5xx answers and dropped connections are retried until an answer comes."""
    answers = iter(["drop", 503, 500, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        step = next(answers)
        if step == "drop":
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return httpx.Response(int(step), text="ok" if step == 200 else "boom")

    sleeps: list[float] = []
    with _client(handler, sleeps) as client:
        response = client.request("GET", URL)
        assert (response.status_code, response.text) == (200, "ok")
        assert client.attempts == 4
    assert len(sleeps) == 3


def test_honours_a_short_429_retry_after() -> None:
    """A 429 answer naming a wait within max_quota_wait waits exactly that long, then retries."""
    answers = iter([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200)])
    sleeps: list[float] = []
    with _client(lambda r: next(answers), sleeps) as client:
        assert client.request("GET", URL).status_code == 200
    assert sleeps == [3.0]


def test_auth_errors_are_never_retried() -> None:
    """An AuthError raised by the plugin's check stops at the first attempt."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, text="<error>bad partner</error>")

    def check(response: httpx.Response) -> None:
        raise AuthError("could not authorise: your partner ID may be wrong")

    sleeps: list[float] = []
    with _client(handler, sleeps) as client, pytest.raises(AuthError):
        client.request("POST", URL, data={"partenaireId": "x"}, check=check)
    assert (len(calls), sleeps) == (1, [])


def test_attempts_are_bounded() -> None:
    """A marketplace that keeps failing is tried max_attempts times, then TransientError."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(502)

    sleeps: list[float] = []
    with _client(handler, sleeps, attempts=3) as client, pytest.raises(TransientError, match="HTTP 502"):
        client.request("GET", URL)
    assert (len(calls), len(sleeps)) == (3, 2)


def test_quota_inside_200_is_retried_through_check() -> None:
    """A quota error found by the plugin's check in a 200 answer is retried after its wait."""
    bodies = iter(["quota", "fine"])

    def check(response: httpx.Response) -> None:
        if response.text == "quota":
            raise QuotaError("quota reached", retry_after=2)

    sleeps: list[float] = []
    with _client(lambda r: httpx.Response(200, text=next(bodies)), sleeps) as client:
        assert client.request("GET", URL, check=check).text == "fine"
    assert sleeps == [2]


def test_plain_http_refused_off_loopback() -> None:
    """Plain HTTP to a non-loopback host is refused before any request."""
    client = RetryingClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with client, pytest.raises(ConfigError, match="use https://"):
        client.request("GET", "http://example.com/x")


def _order() -> Order:
    ctx = StoreContext(name="shop", marketplace="bazaar", settings={})
    try:
        return Bazaar().map_order(ctx, RawOrder(order_key="BZ0003", payload=make_order(3)))
    finally:
        ctx.http.close()


def test_order_json_round_trip_is_exact_and_valid() -> None:
    """Order -> JSON -> Order gives the same order, and the JSON passes the canonical schema."""
    order = _order()
    data = to_json(order)
    assert from_json(data, Order) == order
    assert data["total"] == "19.90"
    canonical_registry().validate("canonical/order", data)


def test_shipment_and_push_result_round_trip() -> None:
    """Shipments and push results survive JSON exactly and match their schemas."""
    shipment = Shipment(
        store="shop",
        order_key="BZ0003",
        tracking_number="TR9",
        ship_date=datetime(2024, 5, 2, 8, 30, tzinfo=UTC),
        carrier_fee="4.90",
        items=[ShipmentItem("1", 2)],
    )
    result = PushResult(accepted=True, fields=[FieldResult("carrier", FieldOutcome.UNSUPPORTED, "no field")])
    assert from_json(to_json(shipment), Shipment) == shipment
    assert from_json(to_json(result), PushResult) == result
    canonical_registry().validate("canonical/shipment", to_json(shipment))
    canonical_registry().validate("canonical/push_result", to_json(result))


def test_clients_share_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every RetryingClient is built on the same SSLContext (loading the CA bundle takes ~20 ms each time)."""
    import ssl

    from connector_core import http as http_module

    seen: list[object] = []
    real = http_module.httpx.Client

    def client(**kwargs: object) -> httpx.Client:
        seen.append(kwargs.get("verify"))
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(http_module.httpx, "Client", client)
    for _ in range(3):
        http_module.RetryingClient().close()
    assert len(seen) == 3 and isinstance(seen[0], ssl.SSLContext)
    assert seen[0] is seen[1] is seen[2] is http_module.default_ssl_context()
    assert seen[0].verify_mode is ssl.CERT_REQUIRED and seen[0].check_hostname  # still httpx's verifying defaults

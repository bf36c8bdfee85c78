"""The HTTP policy beyond the basics: real timeouts, jitter, the total-time bound, quota waits, one retry budget."""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from connector_spartoo.client import SpartooClient
from connector_spartoo.settings import SpartooSettings

from connector_core.errors import AuthError, ConfigError, QuotaError, TransientError
from connector_core.http import HttpPolicy, RetryingClient

ENVELOPE = "<root><statut><id>{code}</id><description>x</description></statut></root>"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback server that accepts connections and never answers (a hung marketplace)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/mp/x.php"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def test_read_timeouts_are_retried_then_reported(silent_server: str, caplog: pytest.LogCaptureFixture) -> None:
    """A marketplace that never answers times out on every attempt; each attempt is logged; then TransientError."""
    caplog.set_level(logging.INFO, logger="connector_core.http")
    sleeps: list[float] = []
    policy = HttpPolicy(connect_timeout=0.5, read_timeout=0.2, max_attempts=3, backoff_base=0.01)
    with RetryingClient(policy, sleep=sleeps.append) as client:
        with pytest.raises(TransientError, match="timed out"):
            client.request("GET", silent_server)
        assert client.attempts == 3
    assert len(sleeps) == 2
    lines = [r.getMessage() for r in caplog.records]
    assert sum("attempt" in line and "of 3 failed" in line for line in lines) == 2
    assert any("giving up after 3 attempt(s)" in line for line in lines)


def test_backoff_is_exponential_with_full_jitter() -> None:
    """Each wait is drawn in [0, min(backoff_max, base * 2^(n-1))], and the draws differ."""
    policy = HttpPolicy(backoff_base=0.5, backoff_max=4.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        draws = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8 and min(draws) < ceiling * 0.2  # spread over the whole range
        assert len(set(draws)) == len(draws)


def test_total_waiting_time_is_bounded() -> None:
    """However many attempts are allowed, the sum of waits never passes max_total_wait."""
    sleeps: list[float] = []
    policy = HttpPolicy(max_attempts=1000, backoff_base=0.4, backoff_max=0.4, max_total_wait=2.0)
    transport = httpx.MockTransport(lambda r: httpx.Response(503))
    with RetryingClient(policy, transport=transport, sleep=sleeps.append) as client, pytest.raises(TransientError):
        client.request("GET", "http://127.0.0.1:9/x")
    assert sum(sleeps) <= 2.0 + 1e-9
    assert sum(sleeps) > 1.5  # the budget was used, then the client gave up
    assert len(sleeps) < 1000


def test_retry_after_as_http_date_and_quota_over_budget() -> None:
    """Retry-After may be an HTTP date; a quota wait beyond max_quota_wait is raised at once, never slept."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    answers = iter([httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200)])
    sleeps: list[float] = []
    policy = HttpPolicy(max_total_wait=120, max_quota_wait=40)
    with RetryingClient(policy, transport=httpx.MockTransport(lambda r: next(answers)), sleep=sleeps.append) as c:
        assert c.request("GET", "http://127.0.0.1:9/x").status_code == 200
    assert len(sleeps) == 1 and 25 <= sleeps[0] <= 30
    sleeps.clear()
    policy = HttpPolicy(max_total_wait=120)  # the default max_quota_wait: 5 s
    answers = iter([httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200)])
    with RetryingClient(policy, transport=httpx.MockTransport(lambda r: next(answers)), sleep=sleeps.append) as c:
        with pytest.raises(QuotaError) as caught:
            c.request("GET", "http://127.0.0.1:9/x")
        assert c.attempts == 1 and caught.value.retry_after is not None and caught.value.retry_after > 20
    sleeps.clear()
    hour = httpx.Response(429, headers={"Retry-After": "3600"})
    with RetryingClient(policy, transport=httpx.MockTransport(lambda r: hour), sleep=sleeps.append) as client:
        with pytest.raises(QuotaError):
            client.request("GET", "http://127.0.0.1:9/x")
        assert client.attempts == 1
    assert sleeps == []


def _spartoo(handler: httpx.MockTransport, sleeps: list[float], **policy: float) -> SpartooClient:
    settings = SpartooSettings.from_dict({"partner_id": "ABCDEF0123456789", "base_url": "http://127.0.0.1:9/{site}/"})
    http = RetryingClient(HttpPolicy(**policy), transport=handler, sleep=sleeps.append)  # type: ignore[arg-type]
    return SpartooClient(settings, http)


def test_spartoo_minus_429_on_an_update_is_raised_at_once() -> None:
    """Spartoo's -429 envelope (HTTP 200) on xml_maj_orders is a QuotaError after one request and no sleep."""
    codes = iter(["-429", "1"])
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, text=ENVELOPE.format(code=next(codes)))

    sleeps: list[float] = []
    client = _spartoo(httpx.MockTransport(handler), sleeps)
    with pytest.raises(QuotaError, match="-429"):
        client.update_order("com", "A1", "2")
    assert sleeps == []
    assert seen == ["/com/xml_maj_orders.php"]
    client.http.close()


def test_spartoo_auth_error_is_never_retried() -> None:
    """A -2 envelope (bad partner ID) raises AuthError after exactly one request."""
    sleeps: list[float] = []
    client = _spartoo(httpx.MockTransport(lambda r: httpx.Response(200, text=ENVELOPE.format(code="-2"))), sleeps)
    with pytest.raises(AuthError, match="partner ID may be wrong"):
        client.update_order("com", "A1", "2")
    assert (client.http.attempts, sleeps) == (1, [])
    client.http.close()


def test_a_streamed_export_has_one_retry_budget() -> None:
    """Requests inside retrying() make one attempt each: the export is tried max_attempts times, not squared."""
    sleeps: list[float] = []
    client = _spartoo(httpx.MockTransport(lambda r: httpx.Response(503)), sleeps, max_attempts=4, backoff_base=0.01)
    with pytest.raises(TransientError):
        list(client.export_orders("com", datetime.now(UTC)))
    assert client.http.attempts == 4
    assert len(sleeps) == 3
    client.http.close()


def test_policy_from_environment() -> None:
    """CONNECTOR_HOST_HTTP_POLICY overrides policy fields; a bad value is a ConfigError naming the variable."""
    env = {"CONNECTOR_HOST_HTTP_POLICY": '{"max_attempts": 3, "max_total_wait": 9}'}
    assert HttpPolicy.from_environ(env) == HttpPolicy(max_attempts=3, max_total_wait=9.0)
    assert HttpPolicy.from_environ({}) == HttpPolicy()
    for bad in ('{"retries": 3}', "[1]", "nope"):
        with pytest.raises(ConfigError, match="CONNECTOR_HOST_HTTP_POLICY"):
            HttpPolicy.from_environ({"CONNECTOR_HOST_HTTP_POLICY": bad})

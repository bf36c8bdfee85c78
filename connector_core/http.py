"""The HTTP policy every plugin uses: timeouts, retries, backoff, quotas, HTTPS.

:class:`RetryingClient` wraps an ``httpx.Client``. It retries timeouts,
dropped connections and 5xx answers with exponential backoff and full
jitter, honours ``429 Retry-After``, and lets the plugin turn a
marketplace's own error envelope into :class:`~connector_core.errors.TransientError`
or :class:`~connector_core.errors.QuotaError` through a ``check`` callback, so
quota codes inside a 200 answer are retried the same way. Auth errors are
never retried. Attempts are bounded in count and in total waiting time, and
each retry is logged (without the form data, which may hold secrets).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx

from connector_core.errors import ConfigError, QuotaError, TransientError

log = logging.getLogger("connector_core.http")

POLICY_ENV = "CONNECTOR_HOST_HTTP_POLICY"
"""Environment variable: a JSON object overriding :class:`HttpPolicy` fields, e.g. ``{"max_total_wait": 10}``."""

Check = Callable[[httpx.Response], None]


@attrs.frozen
class HttpPolicy:
    """Timeouts and retry bounds. All durations are seconds."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_total_wait: float = 120.0
    quota_wait_default: float = 60.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> HttpPolicy:
        """The default policy with the overrides of ``$CONNECTOR_HOST_HTTP_POLICY`` (a JSON object)."""
        raw = (os.environ if environ is None else environ).get(POLICY_ENV, "").strip()
        if not raw:
            return cls()
        try:
            values = json.loads(raw)
            if not isinstance(values, dict):
                raise TypeError("not a JSON object")
            known = {a.name for a in attrs.fields(cls)}
            unknown = sorted(set(values) - known)
            if unknown:
                raise TypeError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
            fields: dict[str, Any] = {k: int(v) if k == "max_attempts" else float(v) for k, v in values.items()}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{POLICY_ENV} must be a JSON object of HTTP policy fields: {exc}") from None
        return cls(**fields)

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter exponential backoff before retry number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return (rng or random).uniform(0, ceiling)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (localhost or a loopback address)."""
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_safe_url(url: str) -> str:
    """Refuse plain HTTP to anything but loopback; return ``url`` unchanged."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{url!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"refusing plain HTTP to {parts.hostname}: use https:// (plain http is allowed only on loopback)"
        )
    return url


@functools.lru_cache(maxsize=1)
def default_ssl_context() -> ssl.SSLContext:
    """The TLS settings every store's client shares: httpx's defaults (certifi's CA bundle), made once.

    Building them loads the CA bundle, about 20 ms of CPU; each sync opens a
    client of its own, so a host syncing 200 stores would spend 4 s on it.
    An ``SSLContext`` may serve many connections and threads at once.
    """
    return httpx.create_ssl_context()


class RetryingClient:
    """An ``httpx.Client`` with the host's retry policy.

    ``transport`` is injectable (``httpx.MockTransport`` in unit tests);
    ``sleep`` too, so tests need not wait.
    """

    def __init__(
        self,
        policy: HttpPolicy | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        client: httpx.Client | None = None,
        max_connections: int = 20,
    ) -> None:
        self.policy = policy or HttpPolicy()
        self._sleep = sleep
        self._rng = random.Random()
        self._client = client or httpx.Client(
            transport=transport,
            verify=default_ssl_context(),
            timeout=httpx.Timeout(self.policy.read_timeout, connect=self.policy.connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
        )
        self.attempts = 0  # total attempts made, for reports and tests
        self.retries = 0
        self.waited = 0.0  # seconds spent waiting between attempts, for reports and tests
        self._local = threading.local()  # inside retrying(), requests make one attempt each

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._client.close()

    def __enter__(self) -> RetryingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        check: Check | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
    ) -> httpx.Response:
        """Send a request, retrying transient failures; return the (read) response.

        ``method`` is any HTTP verb (``GET``, ``POST``, ``PUT``, ``PATCH``,
        ``DELETE``...). The body is one of ``data`` (form fields), ``json``
        (any JSON-able value, sent as ``application/json``) or ``content``
        (bytes or text as they are, e.g. an XML document; set its
        ``Content-Type`` in ``headers``). ``headers`` are sent with every
        attempt and never logged.
        """
        body = _body(data=data, json=json, content=content)
        with self._attempts(
            method, url, body=body, params=params, check=check, timeout=timeout, stream=False, headers=headers
        ) as r:
            return r

    @contextmanager
    def stream(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        check: Check | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
    ) -> Iterator[httpx.Response]:
        """Like :meth:`request` but the body is left unread, to be parsed as a stream.

        Retries cover everything up to the response headers; a connection
        dropped while the body streams surfaces as :class:`TransientError`.
        """
        body = _body(data=data, json=json, content=content)
        with self._attempts(
            method, url, body=body, params=params, check=check, timeout=timeout, stream=True, headers=headers
        ) as r:
            try:
                yield r
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                raise TransientError(
                    f"connection to {urlsplit(url).hostname} dropped while reading the answer ({type(exc).__name__})"
                ) from None

    def retrying(self, where: str, fn: Callable[[], Any]) -> Any:
        """Call ``fn()`` and retry it under this policy while it raises :class:`TransientError`.

        For work that cannot go through :meth:`request`, e.g. streaming and
        parsing a whole document whose error envelope is only known once read.
        """
        if getattr(self._local, "outer", False):  # already inside a retry loop: it owns the attempts
            return fn()
        attempt = 0
        waited = 0.0
        self._local.outer = True
        try:
            while True:
                attempt += 1
                try:
                    return fn()
                except TransientError as err:
                    wait = self._next_wait(where, err, attempt, waited)
                    if wait is None:
                        raise
                    waited += wait
        finally:
            self._local.outer = False

    def _next_wait(self, where: str, err: TransientError, attempt: int, waited: float) -> float | None:
        """Decide on a retry after failed ``attempt``: log it, sleep, return the wait; ``None`` = give up.

        Backoff waits are cut to what is left of ``max_total_wait``; a quota
        wait is never cut (retrying before the marketplace allows it is
        pointless), so a quota wait beyond the budget means giving up.
        """
        policy = self.policy
        left = policy.max_total_wait - waited
        if isinstance(err, QuotaError):
            wait = err.retry_after if err.retry_after is not None else policy.quota_wait_default
            over = wait > left
        else:
            wait = min(policy.backoff(attempt, self._rng), max(left, 0.0))
            over = left <= 0
        if attempt >= policy.max_attempts or over:
            log.warning("%s: giving up after %d attempt(s), %.2fs waited: %s", where, attempt, waited, err)
            return None
        log.info("%s: attempt %d of %d failed (%s); retrying in %.2fs", where, attempt, policy.max_attempts, err, wait)
        self.retries += 1
        self.waited += wait
        self._sleep(wait)
        return wait

    @contextmanager
    def _attempts(
        self,
        method: str,
        url: str,
        *,
        body: dict[str, Any],
        params: Mapping[str, Any] | None,
        check: Check | None,
        timeout: float | None,
        stream: bool,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        require_safe_url(url)
        policy = self.policy
        waited = 0.0
        where = f"{method} {urlsplit(url).hostname}{urlsplit(url).path}"
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            response: httpx.Response | None = None
            try:
                kwargs: dict[str, Any] = {**body, "params": params, "headers": headers}
                if timeout is not None:
                    kwargs["timeout"] = httpx.Timeout(timeout, connect=min(timeout, policy.connect_timeout))
                request = self._client.build_request(method, url, **kwargs)
                response = self._client.send(request, stream=stream)
                if response.status_code == 429:
                    raise QuotaError(
                        f"{where}: HTTP 429 too many requests",
                        retry_after=_retry_after(response.headers.get("Retry-After")),
                    )
                if response.status_code >= 500:
                    raise TransientError(f"{where}: HTTP {response.status_code}")
                if check is not None and not stream:  # a streamed body is checked by its reader
                    check(response)
            except (httpx.TimeoutException, httpx.TransportError, TransientError) as exc:
                if response is not None:
                    response.close()
                what = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
                err = (
                    exc
                    if isinstance(exc, TransientError)
                    else TransientError(f"{where}: {type(exc).__name__} ({what})")
                )
                if getattr(self._local, "outer", False):  # the enclosing retrying() decides
                    raise err from None
                wait = self._next_wait(where, err, attempt, waited)
                if wait is None:
                    raise err from None
                waited += wait
                continue
            try:
                yield response
            finally:
                response.close()
            return


def _body(*, data: Mapping[str, Any] | None, json: Any, content: bytes | str | None) -> dict[str, Any]:
    """The one body of a request as ``httpx.Client.build_request`` arguments; two bodies are a plugin bug."""
    given = {k: v for k, v in (("data", data), ("json", json), ("content", content)) if v is not None}
    if len(given) > 1:
        raise TypeError(f"give one request body, not {' and '.join(given)}")
    return given


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())

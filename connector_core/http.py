"""The HTTP policy every plugin uses: timeouts, deadlines, retries, backoff, quotas, HTTPS.

:class:`RetryingClient` wraps an ``httpx.Client``. It retries timeouts,
dropped connections and 5xx answers with exponential backoff and full
jitter, and lets the plugin turn a marketplace's own error envelope into
:class:`~connector_core.errors.TransientError` or
:class:`~connector_core.errors.QuotaError` through a ``check`` callback. Auth
errors are never retried. Attempts are bounded in count and in total waiting
time, and each retry is logged (without the form data, which may hold
secrets) and told to the client's ``notice`` callback (the CLI shows it).

Bounded waits:

* every request has a total deadline (``request_deadline``: connect, send,
  every attempt and the whole answer); a client may also carry an absolute
  deadline (:attr:`RetryingClient.until`, the sync's); each read waits at most
  ``read_timeout`` and never past the deadline that was left when the attempt
  began, so a request ends at the latest one read after its deadline, with a
  :class:`~connector_core.errors.DeadlineError` naming the site;
* a quota answer is *not* waited for inline unless it names a wait of at most
  ``max_quota_wait`` seconds: a marketplace hour is the engine's to defer
  (:mod:`connector_core.quota`), so :class:`QuotaError` is raised at once;
* a client's :attr:`~RetryingClient.gate` (the quota ledger of
  :mod:`connector_core.quota`) is asked before every attempt, retries
  included, and refuses with :class:`QuotaError` before anything is sent;
* backoff waits end within a second of :func:`interrupt` (SIGTERM, Ctrl-C in
  ``run``), raising :class:`~connector_core.errors.Interrupted`; a read in
  progress on the main thread is cut by :func:`cut_request` (``run`` calls
  it from a timer one second after the signal, so a page that is nearly
  read still lands).
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
from typing import Any, Protocol
from urllib.parse import urlsplit

import attrs
import httpx

from connector_core.errors import ConfigError, DeadlineError, HostileInputError, Interrupted, QuotaError, TransientError

log = logging.getLogger("connector_core.http")

POLICY_ENV = "CONNECTOR_HOST_HTTP_POLICY"
"""Environment variable: a JSON object overriding :class:`HttpPolicy` fields, e.g. ``{"max_total_wait": 10}``."""

Check = Callable[[httpx.Response], None]
Notice = Callable[[str], None]


class Gate(Protocol):
    """What a client asks before each request: return to send it, raise :class:`QuotaError` to refuse it."""

    def __call__(self) -> None: ...

    def close(self) -> None: ...


_STOP = threading.Event()
_DEADLINE = "connector_core.deadline"  # response extension: the monotonic time its body must be read by


def interrupt() -> None:
    """End every backoff wait of this process within a second (they raise :class:`Interrupted`)."""
    _STOP.set()


_REQUESTING = threading.local()  # .depth: requests of this thread in progress (sending or reading the answer)


def cut_request() -> None:
    """From a signal handler (it runs on the main thread): end the main thread's request in progress, if any.

    Raising :class:`Interrupted` here makes the blocking socket read return
    with it (PEP 475 retries a read only when the handler returns); the
    connection is closed and nothing of the answer is kept: the page it
    carried is fetched again by the next sync, from the saved cursor.
    """
    if getattr(_REQUESTING, "depth", 0) > 0:
        raise Interrupted("interrupted while waiting for an answer; the work done so far is kept")


@contextmanager
def _requesting() -> Iterator[None]:
    _REQUESTING.depth = getattr(_REQUESTING, "depth", 0) + 1
    try:
        yield
    finally:
        _REQUESTING.depth -= 1


def resume() -> None:
    """Undo :func:`interrupt` (a new ``run`` in the same process, tests)."""
    _STOP.clear()


def interruptible_sleep(seconds: float) -> None:
    """Sleep ``seconds``, or raise :class:`Interrupted` as soon as :func:`interrupt` is called."""
    if _STOP.wait(max(0.0, seconds)):
        raise Interrupted("interrupted while waiting to retry; the work done so far is kept")


@attrs.frozen
class HttpPolicy:
    """Timeouts and retry bounds. All durations are seconds."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_total_wait: float = 120.0
    max_quota_wait: float = 5.0
    """A quota answer naming a wait up to this long is waited for inline; anything else is deferred."""
    request_deadline: float = 600.0
    """Seconds for one request in all: connect, send, every attempt, the whole answer."""
    sync_deadline: float = 1800.0
    """Seconds for one store's sync: no request of it runs past this, and no new page is fetched after it."""

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
        sleep: Callable[[float], None] = interruptible_sleep,
        client: httpx.Client | None = None,
        max_connections: int = 20,
    ) -> None:
        self.policy = policy or HttpPolicy()
        self._sleep = sleep
        self._clock = time.monotonic
        self.until: float | None = None
        """An absolute deadline (``time.monotonic()``) no request of this client runs past, e.g. the sync's."""
        self.notice: Notice | None = None
        """Told, in one line, why nothing moves: a retry and its wait, a deadline (the CLI shows it)."""
        self.gate: Gate | None = None
        """Asked before every attempt; raises :class:`QuotaError` when the request may not go (the quota ledger)."""
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
        self._targets: dict[str, tuple[httpx.URL, str]] = {}

    def close(self) -> None:
        """Close the underlying connection pool (and the gate's connection, if it has one)."""
        self._client.close()
        if self.gate is not None:
            self.gate.close()

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
        max_bytes: int | None = None,
        json: Any = None,
        content: bytes | str | None = None,
    ) -> httpx.Response:
        """Send a request, retrying transient failures; return the response, read whole.

        ``method`` is any HTTP verb (``GET``, ``POST``, ``PUT``, ``PATCH``,
        ``DELETE``...). The body is one of ``data`` (form fields), ``json``
        (any JSON-able value, sent as ``application/json``) or ``content``
        (bytes or text as they are, e.g. an XML document; set its
        ``Content-Type`` in ``headers``). ``headers`` are sent with every
        attempt and never logged.

        The answer is streamed under the request's deadline and, when
        ``max_bytes`` is given, refused (:class:`HostileInputError`) as soon as
        it grows past it, so no answer is held whole before its size is known.
        ``check`` sees the read response inside the retry loop.
        """
        body = _body(data=data, json=json, content=content)

        def read(response: httpx.Response) -> httpx.Response:
            whole_body = b"".join(iter_body(response, max_bytes=max_bytes))
            whole = httpx.Response(
                response.status_code, headers=response.headers, content=whole_body, request=response.request
            )
            if check is not None:
                check(whole)
            return whole

        with self._attempts(
            method, url, body=body, params=params, check=read, timeout=timeout, stream=True, headers=headers
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
        """Like :meth:`request` but the body is left unread, to be read with :func:`iter_body`.

        Retries cover everything up to the response headers; a connection
        dropped while the body streams surfaces as :class:`TransientError`,
        a body still unread at the deadline as :class:`DeadlineError`.
        """
        body = _body(data=data, json=json, content=content)
        with self._attempts(
            method, url, body=body, params=params, check=None, timeout=timeout, stream=True, headers=headers
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
        The whole loop is bounded by ``request_deadline`` (and :attr:`until`).
        """
        if getattr(self._local, "outer", False):  # already inside a retry loop: it owns the attempts
            return fn()
        attempt = 0
        waited = 0.0
        deadline = self._deadline()
        self._local.outer = True
        self._local.deadline = deadline
        try:
            while True:
                attempt += 1
                try:
                    return fn()
                except TransientError as err:
                    wait = self._next_wait(where, err, attempt, waited, deadline)
                    if wait is None:
                        raise
                    waited += wait
        finally:
            self._local.outer = False
            self._local.deadline = None

    def _deadline(self) -> float:
        """The deadline of a request starting now: ``request_deadline`` from now, never past :attr:`until`."""
        deadline = self._clock() + self.policy.request_deadline
        return deadline if self.until is None else min(deadline, self.until)

    def _tell(self, message: str) -> None:
        if self.notice is not None:
            try:
                self.notice(message)
            except Exception:  # a broken progress display never stops a request
                log.debug("notice callback failed", exc_info=True)

    def _next_wait(self, where: str, err: TransientError, attempt: int, waited: float, deadline: float) -> float | None:
        """Decide on a retry after failed ``attempt``: log it, sleep, return the wait; ``None`` = give up.

        Backoff waits are cut to what is left of ``max_total_wait`` and of the
        deadline. A quota answer is retried inline only when it names a wait
        of at most ``max_quota_wait`` that fits; otherwise it is raised at
        once, for the engine to defer the work past the marketplace's window.
        """
        policy = self.policy
        left = min(policy.max_total_wait - waited, deadline - self._clock())
        if isinstance(err, DeadlineError):
            return None
        if isinstance(err, QuotaError):
            wait = err.retry_after if err.retry_after is not None else float("inf")
            over = wait > min(left, policy.max_quota_wait)
        else:
            wait = min(policy.backoff(attempt, self._rng), max(left, 0.0))
            over = left <= 0
        if attempt >= policy.max_attempts or over:
            log.warning("%s: giving up after %d attempt(s), %.2fs waited: %s", where, attempt, waited, err)
            if not isinstance(err, QuotaError):
                self._tell(f"{where}: giving up after {attempt} attempt(s): {err}")
            return None
        log.info("%s: attempt %d of %d failed (%s); retrying in %.2fs", where, attempt, policy.max_attempts, err, wait)
        self._tell(f"{where}: {err}; retrying in {wait:.0f}s (attempt {attempt + 1} of {policy.max_attempts})")
        self.retries += 1
        self.waited += wait
        self._sleep(wait)
        return wait

    def _target(self, url: str) -> tuple[httpx.URL, str]:
        """``url`` checked (:func:`require_safe_url`) and parsed once, and its ``host/path`` for messages.

        A client sends to a handful of URLs over and over (one per marketplace
        script); httpx builds a request about twice as fast from a parsed URL.
        """
        known = self._targets.get(url)
        if known is None:
            require_safe_url(url)
            parts = urlsplit(url)
            known = (httpx.URL(url), f"{parts.hostname}{parts.path}")
            if len(self._targets) >= 256:  # URLs with changing parts: keep the cache small
                self._targets.clear()
            self._targets[url] = known
        return known

    @contextmanager
    def _attempts(self, method: str, url: str, **options: Any) -> Iterator[httpx.Response]:
        """:meth:`_attempt_loop`, counted as a request in progress until the caller has read the answer."""
        with _requesting():  # cut_request() may end it meanwhile
            yield from self._attempt_loop(method, url, **options)

    def _attempt_loop(
        self,
        method: str,
        url: str,
        *,
        body: dict[str, Any],
        params: Mapping[str, Any] | None,
        check: Callable[[httpx.Response], httpx.Response] | None,
        timeout: float | None,
        stream: bool,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        target, place = self._target(url)
        policy = self.policy
        waited = 0.0
        where = f"{method} {place}"
        outer_deadline = getattr(self._local, "deadline", None)
        deadline = self._deadline() if outer_deadline is None else outer_deadline
        attempt = 0
        while True:
            attempt += 1
            response: httpx.Response | None = None
            if self.gate is not None:  # before the retries below: a refusal (QuotaError) defers the work at once
                self.gate()
            try:
                left = deadline - self._clock()
                if left <= 0:
                    raise DeadlineError(
                        f"{where}: no complete answer within the request deadline "
                        f"({policy.request_deadline:.0f}s, or the sync's): the site is slow or not answering; "
                        "try again later, or raise request_deadline in $" + POLICY_ENV
                    )
                self.attempts += 1
                read = min(timeout if timeout is not None else policy.read_timeout, left)
                kwargs: dict[str, Any] = {
                    **body,
                    "params": params,
                    "headers": headers,
                    "timeout": httpx.Timeout(read, connect=min(read, policy.connect_timeout)),
                }
                request = self._client.build_request(method, target, **kwargs)
                response = self._client.send(request, stream=stream)
                response.extensions = {**response.extensions, _DEADLINE: (deadline, where)}
                if response.status_code == 429:
                    raise QuotaError(
                        f"{where}: HTTP 429 too many requests",
                        retry_after=_retry_after(response.headers.get("Retry-After")),
                    )
                if response.status_code >= 500:
                    raise TransientError(f"{where}: HTTP {response.status_code}")
                if check is not None:
                    streamed = response
                    try:
                        response = check(streamed)
                    finally:
                        streamed.close()
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
                wait = self._next_wait(where, err, attempt, waited, deadline)
                if wait is None:
                    raise err from None
                waited += wait
                continue
            try:
                yield response
            finally:
                response.close()
            return


def iter_body(response: httpx.Response, *, max_bytes: int | None = None) -> Iterator[bytes]:
    """The body of a streamed response, chunk by chunk, under its request's deadline and ``max_bytes``.

    A body still coming at the deadline raises :class:`DeadlineError`; one
    over ``max_bytes`` raises :class:`HostileInputError` before the rest is
    read; a connection lost mid-body raises :class:`TransientError`.
    """
    deadline, where = response.extensions.get(_DEADLINE, (None, str(response.request.url.host)))
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise HostileInputError(f"{where}: the answer is over the {max_bytes}-byte cap; refusing the rest")
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineError(
                    f"{where}: the answer was still arriving at the request deadline ({size} bytes read): "
                    "the site is trickling its answer; try again later, or raise request_deadline in $" + POLICY_ENV
                )
            yield chunk
    except (httpx.TransportError, httpx.TimeoutException) as exc:
        raise TransientError(f"{where}: connection dropped while reading the answer ({type(exc).__name__})") from None


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

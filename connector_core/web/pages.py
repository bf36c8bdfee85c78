"""What every page shares: the app's state, its middleware, its error pages and the request helpers.

The app itself is built by :func:`connector_core.web.app.create_app` over one
order book and one plugin host. Pages are rendered on the server from ``templates/`` (Jinja2, escaped);
``static/app.js`` only improves them (partial updates of the orders list,
select-all, image placeholders): every page works with plain forms.

Middleware, outermost first: security headers (CSP without inline scripts,
``X-Frame-Options``), signed-cookie sessions (Starlette's
``SessionMiddleware``: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when the
app is not served on loopback), then the login requirement (every page but
``/login``, ``/health`` and ``/static``). Every POST handler reads its form
through :func:`read_form`, which refuses a missing or wrong CSRF token with
403.

Each request thread has its own connection to the order book
(:meth:`WebState.book`); syncs, pushes and connection checks run on a small
thread pool (:meth:`WebState.start_job`) with their own connections, and are
recorded in ``web_runs``.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector_core.db import OrderBook, open_book
from connector_core.engine import Engine
from connector_core.errors import ConnectorError, StoreError
from connector_core.plugins import PluginHost
from connector_core.runtime import per_thread
from connector_core.secrets import redact
from connector_core.web import records

log = logging.getLogger("connector_core.web")

HERE = Path(__file__).parent
PUBLIC_PATHS = ("/login", "/health", "/static/")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SESSION_COOKIE = "connector_session"


@attrs.define
class WebConfig:
    """How the app runs. ``secure_cookies`` is on whenever it is served beyond loopback."""

    db: str | Path | None = None
    host_factory: Callable[[], PluginHost] | None = None
    secure_cookies: bool = False
    session_max_age: int = 12 * 3600
    page_size: int = 50
    login_attempts: int = 5
    """Failed logins of one user name allowed per ``login_window`` seconds (and 4x that per client address)."""
    login_window: float = 300.0
    image_timeout: float = 5.0
    image_max_bytes: int = 2_000_000
    image_allow_private: bool = False
    """Let packing slips fetch item images from loopback and private addresses (a sandbox, a local server)."""
    job_threads: int = 2
    inline_jobs: bool = False
    """Run syncs and pushes inside the request (tests); otherwise on the job threads."""


class LoginLimiter:
    """Failed logins per user name and per client address in a sliding window."""

    def __init__(self, per_user: int, window: float) -> None:
        self.per_user = per_user
        self.per_client = per_user * 4
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, user: str, client: str) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key, limit in ((f"u:{user.lower()}", self.per_user), (f"c:{client}", self.per_client)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(q[0] + self.window - now)
            return int(max(waits)) + 1 if waits else 0

    def failed(self, user: str, client: str) -> None:
        """Count a failed attempt."""
        now = time.monotonic()
        with self._lock:
            for key in (f"u:{user.lower()}", f"c:{client}"):
                self._recent(key, now).append(now)

    def succeeded(self, user: str) -> None:
        """Forget a user's failures after a good password."""
        with self._lock:
            self._failures.pop(f"u:{user.lower()}", None)


class WebState:
    """What the pages share: config, plugin host, an engine per thread (each on its own connection), the job threads."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        if config.host_factory is not None:
            self.host = config.host_factory()
        else:
            from connector_core.plugins import get_plugin_manager

            self.host = PluginHost(get_plugin_manager())
        self.limiter = LoginLimiter(config.login_attempts, config.login_window)
        self.jobs = ThreadPoolExecutor(max_workers=config.job_threads, thread_name_prefix="web-job")
        self.futures: dict[int, Future[None]] = {}
        book = open_book(str(config.db) if config.db is not None else None)
        assert isinstance(book, OrderBook)  # the PostgreSQL book is one too
        self.db_path = book.path
        self.secret_key = records.session_key(book.conn)
        # the server runs threads, so the engine maps in process (no fork); a page waits 5 s at most for a lease
        self._base = Engine(self.host, book, workers=0, lease_wait=5.0)
        self._stack = contextlib.ExitStack()
        self._per_thread = self._stack.enter_context(per_thread(self._base))

    def engine(self) -> Engine:
        """This thread's engine, on this thread's connection to the order book."""
        engine = self._per_thread()
        assert isinstance(engine, Engine)  # a copy of the engine given to per_thread
        return engine

    def book(self) -> OrderBook:
        """This thread's connection to the order book."""
        book = self.engine().book
        assert isinstance(book, OrderBook)
        return book

    def start_job(self, store: str, kind: str, user: str | None, work: Callable[[Engine], Mapping[str, Any]]) -> int:
        """Record a run of ``kind`` for ``store`` and do ``work`` on a job thread (or inline); return its id."""
        run_id = records.start_run(self.book().conn, store, kind, user)

        def job() -> None:
            engine = self.engine()
            conn = self.book().conn
            try:
                summary = work(engine)
            except ConnectorError as err:
                records.finish_run(conn, run_id, error=err.message)
            except Exception as exc:  # one failed run never takes the app down
                log.warning("%s %s failed: %s", kind, store, redact(repr(exc)))
                message = f"internal error ({type(exc).__name__}); see the server log"
                records.finish_run(conn, run_id, error=message)
            else:
                records.finish_run(conn, run_id, summary=summary)

        if self.config.inline_jobs:
            job()
        else:
            self.futures[run_id] = self.jobs.submit(job)
        return run_id

    def close(self) -> None:
        """Wait for running jobs, then close every connection."""
        self.jobs.shutdown(wait=True, cancel_futures=True)
        self._stack.close()
        self._base.book.close()


# -- middleware ------------------------------------------------------------------


class SecurityHeaders:
    """Adds CSP, ``X-Frame-Options`` and friends to every answer (a route may set its own CSP)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in (
                    (b"content-security-policy", CSP.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cache-control", b"no-store"),
                ):
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequireLogin:
    """Every path but the public ones needs a logged-in operator who still exists."""

    def __init__(self, app: ASGIApp, state: WebState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(PUBLIC_PATHS) or scope["path"] == "/login":
            await self.app(scope, receive, send)
            return
        session = scope.get("session") or {}
        user = session.get("user")
        if user and self._exists(user):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if wants_json(request):
            response: Response = JSONResponse({"error": "log in first"}, status_code=401)
        else:
            target = scope["path"] + (("?" + scope["query_string"].decode()) if scope.get("query_string") else "")
            response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        await response(scope, receive, send)

    def _exists(self, user: str) -> bool:
        conn = self.state.book().conn
        return conn.execute("SELECT 1 FROM users WHERE name = ?", (user,)).fetchone() is not None


# -- helpers for the pages ---------------------------------------------------------


def state_of(request: Request) -> WebState:
    """The app's :class:`WebState`."""
    return request.app.state.web  # type: ignore[no-any-return]


def current_user(request: Request) -> str | None:
    """The logged-in operator's name."""
    user = request.session.get("user")
    return str(user) if user else None


def csrf_token(request: Request) -> str:
    """This session's CSRF token (made on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = records.new_token()
        request.session["csrf"] = token
    return str(token)


def wants_json(request: Request) -> bool:
    """Whether the client asked for JSON (``Accept: application/json``) rather than a page."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


async def read_form(request: Request) -> FormData:
    """The submitted form, once its CSRF token (field ``csrf_token`` or header ``X-CSRF-Token``) is checked."""
    form = await request.form()
    sent = request.headers.get("x-csrf-token") or str(form.get("csrf_token") or "")
    expected = str(request.session.get("csrf") or "")
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(403, "the form has expired or did not come from this site: reload the page and try again")
    return form


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """Show ``message`` on the next page rendered for this session."""
    messages = list(request.session.get("flash", []))
    messages.append([kind, redact(message)])
    request.session["flash"] = messages[-5:]


def is_partial(request: Request) -> bool:
    """Whether the page's own script asked for a fragment only."""
    return request.headers.get("x-partial") == "1"


def render(request: Request, template: str, context: Mapping[str, Any], status_code: int = 200) -> Response:
    """Render ``template`` with the page context (user, CSRF token, flashed messages)."""
    templates: Jinja2Templates = request.app.state.templates
    flashed = request.session.pop("flash", []) if not is_partial(request) else []
    full = {
        "user": current_user(request),
        "csrf_token": csrf_token(request),
        "flashed": flashed,
        "path": request.url.path,
        **context,
    }
    return templates.TemplateResponse(request, template, full, status_code=status_code)


def redirect(url: str) -> RedirectResponse:
    """A 303 redirect (after a POST)."""
    return RedirectResponse(url, status_code=303)


def fail(status: int, message: str) -> HTTPException:
    """An HTTP error whose message is safe to show."""
    return HTTPException(status, redact(message))


# -- error pages -------------------------------------------------------------------


async def http_error(request: Request, exc: Exception) -> Response:
    """The error page (or JSON) of an :class:`HTTPException`, its message redacted."""
    assert isinstance(exc, HTTPException)
    message = redact(str(exc.detail))
    if wants_json(request) or request.url.path.endswith(".pdf"):
        return JSONResponse({"error": message}, status_code=exc.status_code)
    return render(request, "error.html", {"status": exc.status_code, "message": message}, exc.status_code)


async def connector_error(request: Request, exc: Exception) -> Response:
    """A :class:`ConnectorError` from a page: 404 for something missing from the book, else 400."""
    assert isinstance(exc, ConnectorError)
    status = 404 if isinstance(exc, StoreError) and "no " in exc.message[:12] else 400
    return await http_error(request, HTTPException(status, exc.message))


async def server_error(request: Request, exc: Exception) -> Response:
    """Anything else: logged (redacted), and a page that says no more than that it failed."""
    log.error("%s %s failed: %s", request.method, request.url.path, redact(repr(exc)))
    message = "something went wrong on the server; the error is in its log"
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=500)
    return Response(f"<!DOCTYPE html><title>Error</title><p>{message}</p>", 500, media_type="text/html")

"""``/login``, ``/logout``, ``/health`` and the home page."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector_core.web import records
from connector_core.web.pages import (
    WebState,
    csrf_token,
    current_user,
    flash,
    read_form,
    redirect,
    render,
    state_of,
)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (``//evil``, ``https://...``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/orders"
    return target


async def health(request: Request) -> Response:
    """Up or not; nothing else (no login)."""
    return JSONResponse({"status": "ok"})


async def home(request: Request) -> Response:
    """Orders when stores exist, else the marketplace tiles."""
    has_stores = bool(state_of(request).book().list_stores())
    return redirect("/orders" if has_stores else "/connect")


async def login_page(request: Request) -> Response:
    """The login form."""
    if current_user(request):
        return redirect(_safe_next(request.query_params.get("next")))
    csrf_token(request)
    return render(request, "login.html", {"next": _safe_next(request.query_params.get("next")), "error": None})


async def login(request: Request) -> Response:
    """Check the password; rate-limited per user name and per client address."""
    state = state_of(request)
    form = await read_form(request)
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    target = _safe_next(str(form.get("next") or ""))
    client = request.client.host if request.client else "?"
    wait = state.limiter.retry_after(username, client)
    if wait:
        message = f"too many failed logins: wait {wait} seconds and try again"
        return render(request, "login.html", {"next": target, "error": message, "username": username}, 429)
    book = state.book()
    ok = bool(username and password) and await run_in_threadpool(_verify, state, username, password)
    if not ok:
        state.limiter.failed(username, client)
        message = "wrong user name or password"
        if not records.list_users(book.conn):
            message = "no operator exists yet: run `connector-host users add NAME` on the server"
        return render(request, "login.html", {"next": target, "error": message, "username": username}, 401)
    state.limiter.succeeded(username)
    request.session.clear()  # a new session (and CSRF token) for the logged-in operator
    request.session["user"] = username
    request.session["csrf"] = records.new_token()
    return redirect(target)


def _verify(state: WebState, username: str, password: str) -> bool:
    return records.verify_user(state.book().conn, username, password)


async def logout(request: Request) -> Response:
    """End the session."""
    await read_form(request)
    request.session.clear()
    flash(request, "logged out")
    return redirect("/login")


def routes() -> list[BaseRoute]:
    """The routes of this module."""
    return [
        Route("/", home),
        Route("/health", health),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]

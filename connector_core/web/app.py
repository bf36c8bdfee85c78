"""The operator web app's factory: :func:`create_app`.

It builds a Starlette app over one order book and one plugin host from the
routes of the page modules (``routes_*``), the middleware and error pages of
:mod:`connector_core.web.pages`, the templates of ``templates/`` and the
files of ``static/``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from connector_core.errors import ConnectorError
from connector_core.secrets import redact
from connector_core.web import routes_auth, routes_connect, routes_ops, routes_orders, routes_stores
from connector_core.web.pages import (
    HERE,
    SESSION_COOKIE,
    RequireLogin,
    SecurityHeaders,
    WebConfig,
    WebState,
    connector_error,
    http_error,
    server_error,
)

__all__ = ["WebConfig", "create_app"]


# -- the factory -------------------------------------------------------------------


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["urlq"] = lambda value: quote(str(value), safe="")
    env.filters["redact"] = lambda value: redact(str(value))
    env.filters["money"] = lambda value, currency="": f"{value} {currency}".strip() if value is not None else ""
    env.filters["day"] = lambda value: str(value or "")[:10]
    env.filters["stamp"] = lambda value: str(value or "").replace("T", " ")[:19]
    return Jinja2Templates(env=env)


def create_app(config: WebConfig | None = None) -> Starlette:
    """The web app over ``config.db`` with the plugins of ``config.host_factory`` (installed ones by default)."""
    config = config or WebConfig()
    state = WebState(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    routes: list[BaseRoute] = [
        *routes_auth.routes(),
        *routes_connect.routes(),
        *routes_stores.routes(),
        *routes_orders.routes(),
        *routes_ops.routes(),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPException: http_error,
        ConnectorError: connector_error,
        Exception: server_error,
    }
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=state.secret_key,
                session_cookie=SESSION_COOKIE,
                max_age=config.session_max_age,
                same_site="lax",
                https_only=config.secure_cookies,
            ),
            Middleware(RequireLogin, state=state),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    app.state.web = state
    app.state.templates = _templates()
    return app

"""``connector-host web`` and ``connector-host users add|list|remove``.

This module is a plugin of the project's own ``register_commands`` hook,
registered by the core distribution's entry point (``web`` in the
``connector_core`` group), so the command line gets these commands the way
it gets an installed plugin's, and nothing outside the web package imports
it. The commands read the order book and the plugin host from the click
context's object (the command line's ``App``). Starlette, uvicorn and argon2
are imported when a command runs, so the rest of the command line works
without the ``web`` extra.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Any, Protocol

import click

from connector_core import hookimpl
from connector_core.db import OrderBook
from connector_core.errors import ConfigError
from connector_core.plugins import PluginHost

WEB_EXTRA = "the web app needs its extra: pip install 'connector-core[web]'"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class _AppLike(Protocol):
    db: str | None

    @property
    def host(self) -> PluginHost: ...

    @property
    def book(self) -> OrderBook: ...


def _app(ctx: click.Context) -> _AppLike:
    return ctx.find_root().obj  # type: ignore[no-any-return]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _records() -> Any:
    try:
        from connector_core.web import records
    except ImportError:
        raise ConfigError(WEB_EXTRA) from None
    return records


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``web`` and ``users`` to the command line."""
    add_web_commands(cli)


def add_web_commands(group: click.Group) -> None:
    """Add ``web`` and ``users`` to ``group``."""

    @group.command("web")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
    @click.option(
        "--allow-private-images",
        is_flag=True,
        help="Let packing slips fetch item images from loopback and private addresses (a sandbox, a local "
        "image server); by default only public addresses are fetched.",
    )
    @click.pass_context
    def web(ctx: click.Context, host: str, port: int, allow_private_images: bool) -> None:
        """Serve the operator web app (log in with a user from `users add`)."""
        try:
            import uvicorn

            from connector_core.web.app import WebConfig, create_app
        except ImportError:
            raise ConfigError(WEB_EXTRA) from None
        app_obj = _app(ctx)
        loopback = is_loopback(host)
        if not loopback:
            click.echo(
                f"warning: serving on {host}, beyond this machine: put a TLS proxy in front "
                "(session cookies are sent over HTTPS only)",
                err=True,
            )
        plugin_host = app_obj.host
        book = app_obj.book
        records = _records()
        if not records.list_users(book.conn):
            click.echo("note: no operator yet: add one with `connector-host users add NAME`", err=True)
        config = WebConfig(
            db=book.path,
            host_factory=lambda: plugin_host,
            secure_cookies=not loopback,
            image_allow_private=allow_private_images,
        )
        application = create_app(config)
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"connector-host web on http://{shown}:{port} (order book {book.path}); Ctrl-C stops")
        uvicorn.run(
            application,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
            proxy_headers=False,
        )

    @group.group("users")
    def users() -> None:
        """Operators who may log in to the web app."""

    @users.command("add")
    @click.argument("name")
    @click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
    @click.option("--replace", is_flag=True, help="Set a new password for an existing user.")
    @click.pass_context
    def users_add(ctx: click.Context, name: str, password_stdin: bool, replace: bool) -> None:
        """Add an operator; the password is asked for (or read from stdin), never taken from the command line."""
        records = _records()
        book = _app(ctx).book
        name = records.check_username(name)
        password = _read_password(password_stdin)
        records.add_user(book.conn, name, password, replace=replace)
        click.echo(f"user {name} {'updated' if replace else 'added'}")

    @users.command("list")
    @click.pass_context
    def users_list(ctx: click.Context) -> None:
        """List the operators."""
        records = _records()
        book = _app(ctx).book
        for name in records.list_users(book.conn):
            click.echo(name)

    @users.command("remove")
    @click.argument("name")
    @click.pass_context
    def users_remove(ctx: click.Context, name: str) -> None:
        """Remove an operator (their sessions end at their next request)."""
        records = _records()
        book = _app(ctx).book
        if not records.remove_user(book.conn, name):
            raise ConfigError(f"no user named {name!r}: see `connector-host users list`")
        click.echo(f"user {name} removed")

"""The ``connector-host`` command line.

One module per command group (:mod:`.stores`, :mod:`.sync`, :mod:`.orders`,
:mod:`.rejected`, :mod:`.ship`, :mod:`.shipments`, :mod:`.runs`, :mod:`.run`, :mod:`.demo`, :mod:`.settings`,
:mod:`.contract`, :mod:`.marketplaces`), each a plugin of the project's own
``register_commands`` hook: the built-in commands are registered through it
when this package is imported, exactly as an installed plugin adds its own
(:func:`build_cli`). The shared state is :mod:`.app`; output helpers, at the
bottom, are :mod:`.output`.

The plugin host comes from the :class:`App` in the click context. ``main()``
builds it from the installed entry points plus any plugins named in
``CONNECTOR_HOST_EXTRA`` (comma-separated ``module`` or ``module:attribute``);
tests pass their own: ``CliRunner().invoke(cli, args, obj=App(host_factory=...))``.

Every line printed goes through :func:`connector_core.secrets.redact`. A
:class:`~connector_core.errors.ConnectorError` becomes one line
``error: ...`` on stderr and exit status 1; usage errors exit with 2.
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Sequence
from typing import Any

import click
import pluggy

from connector_core import __version__, hookspecs
from connector_core.cli import (
    contract,
    demo,
    jobs,
    marketplaces,
    orders,
    rejected,
    run,
    runs,
    settings,
    ship,
    shipments,
    stores,
    sync,
)
from connector_core.cli.app import App, HostGroup, default_host, extra_plugins, pass_app
from connector_core.cli.output import UserError, out, out_json, table
from connector_core.errors import ConnectorError
from connector_core.plugins import PluginHost
from connector_core.secrets import install_log_redaction, redact

__all__ = [
    "App",
    "UserError",
    "build_cli",
    "cli",
    "default_host",
    "extra_plugins",
    "main",
    "out",
    "out_json",
    "pass_app",
    "table",
]

BUILTIN_COMMANDS = (
    marketplaces,
    stores,
    sync,
    orders,
    rejected,
    ship,
    shipments,
    runs,
    run,
    demo,
    settings,
    contract,
    jobs,
)
"""The built-in command modules, in the order their groups are added (``settings`` extends ``stores``)."""


@click.group(cls=HostGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="connector-host")
@click.option(
    "--db",
    envvar="CONNECTOR_HOST_DB",
    type=click.Path(dir_okay=False),
    help="Order book file, in a folder that exists, or a postgresql:// URL [env CONNECTOR_HOST_DB;"
    " default $XDG_DATA_HOME/connector-host/orders.sqlite3, created if need be].",
)
@click.option("-v", "--verbose", count=True, help="Log progress (-v) or everything (-vv) to stderr.")
@click.pass_context
def cli(ctx: click.Context, db: str | None, verbose: int) -> None:
    """Import marketplace orders into one order book, map statuses, push shipments back."""
    app = ctx.obj if isinstance(ctx.obj, App) else App()
    if db is not None:
        app.db = db
        app.db_typed = ctx.get_parameter_source("db") is click.core.ParameterSource.COMMANDLINE
    ctx.obj = app
    ctx.call_on_close(app.close)
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        install_log_redaction([logging.getLogger("connector_core")])


def _register_builtins(group: click.Group) -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module in reversed(BUILTIN_COMMANDS):  # pluggy calls the last registered first
        pm.register(module, name=f"connector_core.cli.{module.__name__.rsplit('.', 1)[-1]}")
    pm.hook.register_commands(cli=group)


_register_builtins(cli)

_registered: weakref.WeakSet[Any] = weakref.WeakSet()


def build_cli(host: PluginHost) -> click.Group:
    """Let the host's plugins add their commands to :data:`cli` (once per host); return it."""
    if host.pm not in _registered:
        _registered.add(host.pm)
        host.register_commands(cli)
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``connector-host``."""
    try:
        host = default_host()
    except ConnectorError as err:
        click.echo(f"error: {redact(err.message)}", err=True)
        sys.exit(1)
    build_cli(host)
    cli.main(
        args=list(argv) if argv is not None else None, prog_name="connector-host", obj=App(host_factory=lambda: host)
    )

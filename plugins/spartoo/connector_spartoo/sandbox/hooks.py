"""Hook implementations of the Spartoo sandbox: the contract kit's factory and ``connector-host sandbox spartoo``."""

from __future__ import annotations

import json
import threading
from typing import Any

import click

from connector_core import hookimpl
from connector_core.secrets import MASK
from connector_core.testing.sandbox import SandboxFactory
from connector_spartoo.sandbox import require_extra
from connector_spartoo.sandbox.data import SITES
from connector_spartoo.sandbox.defaults import DEACTIVATED_PARTNER_ID, DEFAULT_PARTNER_ID, DEFAULT_QUOTA_PER_HOUR


@hookimpl
def sandbox_factory() -> SandboxFactory:
    """The Spartoo sandbox factory: ``factory(orders=N, seed=S, ...)`` is a context manager of a running sandbox."""
    require_extra()
    from connector_spartoo.sandbox.server import sandbox_factory as factory  # the server needs the sandbox extra

    return factory


def _rate(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise click.BadParameter(f"must be a share between 0 and 1, got {value}")
    return value


def _sites(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    sites = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in sites if s not in SITES]
    if unknown or not sites:
        raise click.BadParameter(f"unknown site(s) {', '.join(unknown) or '(none)'}; known: {', '.join(SITES)}")
    return sites


@click.command("spartoo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (keep it loopback).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 = a free port.")
@click.option("--orders", type=click.IntRange(min=0), default=100, show_default=True, help="Orders at start.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same orders.")
@click.option(
    "--partner-id",
    "partner_ids",
    multiple=True,
    metavar="ID",
    help=f"A partner ID the sandbox accepts; repeat. Default: the public test ID {DEFAULT_PARTNER_ID}.",
)
@click.option("--sites", default=",".join(SITES), show_default=True, callback=_sites, help="Sites served.")
@click.option("--quota", type=click.IntRange(min=1), default=DEFAULT_QUOTA_PER_HOUR, show_default=True,
              help="Requests per partner per clock hour before -429.")  # fmt: skip
@click.option("--latency", type=click.FloatRange(min=0), default=0.0, help="Added to every request (ms).")
@click.option("--error-rate", type=float, default=0.0, callback=_rate, help="Share of HTTP 500/503 answers.")
@click.option("--drop-rate", type=float, default=0.0, callback=_rate, help="Share of connections dropped.")
@click.option("--malformed-rate", type=float, default=0.0, callback=_rate, help="Share of exports with a broken order.")
@click.option("--quota-rate", type=float, default=0.0, callback=_rate, help="Share of requests answered -429.")
@click.option("--show-partner-id", is_flag=True, help="Print the partner ID in clear (it is masked by default).")
@click.option("--json", "as_json", is_flag=True, help="Print the URL and settings as one JSON line.")
def spartoo_sandbox(
    host: str,
    port: int,
    orders: int,
    seed: int,
    partner_ids: tuple[str, ...],
    sites: list[str],
    quota: int,
    latency: float,
    error_rate: float,
    drop_rate: float,
    malformed_rate: float,
    quota_rate: float,
    show_partner_id: bool,
    as_json: bool,
) -> None:
    """Serve a local Spartoo seller web service until Ctrl-C (see plugins/spartoo/SANDBOX.md)."""
    require_extra()
    from connector_spartoo.sandbox.server import SpartooSandbox  # the server needs the sandbox extra

    sandbox = SpartooSandbox(
        orders=orders,
        seed=seed,
        sites=sites,
        partner_ids=partner_ids or (DEFAULT_PARTNER_ID,),
        quota_per_hour=quota,
        host=host,
        port=port,
        latency=latency,
        error_rate=error_rate,
        drop_rate=drop_rate,
        malformed_rate=malformed_rate,
        quota_rate=quota_rate,
    )
    # the sandbox's own test IDs are public (they are in its source): printed so the line below works
    # when pasted; an ID the user chose with --partner-id is theirs and stays masked unless asked for
    clear = show_partner_id or not partner_ids
    with sandbox:
        settings: dict[str, Any] = sandbox.settings()
        if not clear:
            settings["partner_id"] = MASK
        if as_json:
            click.echo(json.dumps({"url": sandbox.url, "admin": f"{sandbox.url}/_admin/", "settings": settings}))
        else:
            click.echo(f"Spartoo sandbox on {sandbox.url}  ({orders} orders, seed {seed}, sites {','.join(sites)})")
            click.echo(
                f"admin: {sandbox.url}/_admin/orders  {sandbox.url}/_admin/counters  {sandbox.url}/_admin/faults"
            )
            click.echo("add a store with:")
            click.echo(
                "  connector-host stores add spartoo --name spartoo-sandbox"
                f" --set partner_id={settings['partner_id'] if clear else 'YOUR_PARTNER_ID'}"
                f" --set sites={','.join(sites)} --set base_url={settings['base_url']}"
            )
            if not clear:
                click.echo(
                    "  (YOUR_PARTNER_ID: the --partner-id you started the sandbox with; --show-partner-id prints it)"
                )
            click.echo(f"deactivated test partner ID (answers -428): {DEACTIVATED_PARTNER_ID}")
            click.echo("Ctrl-C to stop")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            click.echo("stopping", err=True)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``spartoo`` to the ``sandbox`` group (created here when the core CLI has none)."""
    group = cli.commands.get("sandbox")
    if not isinstance(group, click.Group):

        @cli.group("sandbox")
        def sandbox_group() -> None:
            """Local marketplace sandboxes."""

        group = sandbox_group
    group.add_command(spartoo_sandbox)

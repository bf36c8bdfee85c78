"""``connector-host contract MARKETPLACE``: the contract suite from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from connector_core import hookimpl
from connector_core.cli.output import out, out_json, table
from connector_core.errors import ConfigError
from connector_core.plugins import PluginHost
from connector_core.testing.contract import CHECKS, FAILED, ContractHarness

LIVE_HELP = """Run the plugin contract suite on MARKETPLACE; exit 1 if any check fails.

By default every check runs against a fresh local sandbox of the marketplace
(the plugin's sandbox_factory), so nothing real is touched.

Live mode (--settings FILE): the checks run against the real marketplace with
the store settings in FILE (a JSON object, as for `stores add --settings`).
Read-only by default: the kit connects (also once with deliberately wrong
credentials), fetches and maps every order the account gives, resumes from
each cursor, and skips the checks that write. Checks that need a sandbox
(adding orders, injecting faults, expiring tokens, reading the marketplace's
state back) are skipped too.

--allow-writes (live mode only) also runs push_shipment and capabilities on
real orders of that account: each takes the first order awaiting shipment,
accepts it if it still needs accepting, and ships it with a made-up
tracking number (CT followed by 10 hex digits, carrier "Colissimo", service
"Expert", fee 6.40, a note to the buyer); push_shipment then pushes its
shipment twice more. So two real orders end up shipped, and the marketplace
may e-mail their buyers. The checks that cancel orders or ship parts of them
read the marketplace's state back and run on the sandbox only. Use a test
account.
"""


def _host(ctx: click.Context) -> PluginHost:
    app = ctx.find_root().obj
    host = getattr(app, "host", None)
    return host if isinstance(host, PluginHost) else PluginHost.create()


def _read_settings(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the settings file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the settings file {path} must hold a JSON object")
    return data


@click.command("contract", help=LIVE_HELP)
@click.argument("marketplace")
@click.option(
    "--settings",
    "settings_file",
    type=click.Path(dir_okay=False, exists=True),
    help="JSON file of live store settings: run against the real marketplace, read-only (default: the sandbox).",
)
@click.option(
    "--allow-writes",
    is_flag=True,
    help="With --settings: also accept and ship two real orders (made-up tracking numbers CT...).",
)
@click.option(
    "--check",
    "only",
    multiple=True,
    type=click.Choice([c.id for c in CHECKS]),
    help="Run only this check (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def contract(
    ctx: click.Context,
    marketplace: str,
    settings_file: str | None,
    allow_writes: bool,
    only: tuple[str, ...],
    as_json: bool,
) -> None:
    if allow_writes and settings_file is None:
        raise click.UsageError("--allow-writes only applies with --settings (the sandbox always allows writes)")
    harness = ContractHarness(
        marketplace, host=_host(ctx), settings=_read_settings(settings_file), allow_writes=allow_writes
    )
    results = harness.run_all(list(only) or None)
    failed = sum(r.outcome == FAILED for r in results)
    unexercised = harness.unexercised()
    warnings = [(r.check, w) for r in results for w in r.warnings]
    if as_json:
        document = {
            "marketplace": marketplace,
            "mode": "sandbox" if settings_file is None else ("live, writes" if allow_writes else "live, read-only"),
            "passed": not failed,
            "checks": [
                {"number": r.number, "check": r.check, "title": r.title, "outcome": r.outcome, "message": r.message}
                for r in results
            ],
            "not_exercised": [{"hook": name, "why": why} for name, why in unexercised],
            "warnings": [{"check": check, "warning": w} for check, w in warnings],
        }
        out_json(document)
    else:
        rows = [(r.number, r.check, r.outcome.upper(), r.message) for r in results]
        table(f"Contract suite: {marketplace}", ["#", "check", "result", "details / what to fix"], rows)
        for name, why in unexercised:
            out(f"hook not exercised: {name} ({why})")
        for check, warning in warnings:
            out(f"warning during {check}: {warning}")
        out(f"{failed} of {len(results)} checks failed" if failed else "no check failed")
    if failed:
        ctx.exit(1)


def add_contract_command(group: click.Group) -> None:
    """Add ``contract`` to the ``connector-host`` group."""
    group.add_command(contract)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``contract`` to the ``connector-host`` group."""
    add_contract_command(cli)

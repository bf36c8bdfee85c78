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


@click.command("contract")
@click.argument("marketplace")
@click.option(
    "--settings",
    "settings_file",
    type=click.Path(dir_okay=False, exists=True),
    help="JSON file of live store settings (default: run against the plugin's sandbox).",
)
@click.option("--allow-writes", is_flag=True, help="With --settings: also run the checks that write (push, accept).")
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
    """Run the plugin contract suite on MARKETPLACE; exit 1 if any check fails."""
    harness = ContractHarness(
        marketplace, host=_host(ctx), settings=_read_settings(settings_file), allow_writes=allow_writes
    )
    results = harness.run_all(list(only) or None)
    if as_json:
        out_json(
            {
                "marketplace": marketplace,
                "passed": not any(r.outcome == FAILED for r in results),
                "checks": [
                    {"number": r.number, "check": r.check, "title": r.title, "outcome": r.outcome, "message": r.message}
                    for r in results
                ],
            }
        )
    else:
        rows = [(r.number, r.check, r.outcome.upper(), r.message) for r in results]
        table(f"Contract suite: {marketplace}", ["#", "check", "result", "details / what to fix"], rows)
        failed = sum(r.outcome == FAILED for r in results)
        out(f"{failed} of {len(results)} checks failed" if failed else "no check failed")
    if any(r.outcome == FAILED for r in results):
        ctx.exit(1)


def add_contract_command(group: click.Group) -> None:
    """Add ``contract`` to the ``connector-host`` group."""
    group.add_command(contract)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``contract`` to the ``connector-host`` group."""
    add_contract_command(cli)

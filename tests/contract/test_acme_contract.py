"""The Acme Bazaar example plugin keeps the contract, through pytest and through the CLI."""

from __future__ import annotations

import json

from click.testing import CliRunner

from connector_core.cli import App, cli
from connector_core.plugins import PluginHost
from connector_core.testing.contract import CHECKS
from connector_core.testing.pytest_plugin import ContractSuite


class TestAcmeContract(ContractSuite):
    """Every contract check, run on the installed acme plugin against its sandbox."""

    marketplace = "acme"


def test_cli_contract_json_reports_every_check_passed() -> None:
    """`connector-host contract acme --json` runs every check, each passed, exit 0, with nothing left unexercised."""
    host = PluginHost.create()
    result = CliRunner().invoke(cli, ["contract", "acme", "--json"], obj=App(host_factory=lambda: host))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(c["check"], c["outcome"]) for c in report["checks"]] == [(c.id, "passed") for c in CHECKS]
    assert report["passed"] is True
    assert (report["not_exercised"], report["warnings"]) == ([], [])


def test_cli_contract_table_names_checks() -> None:
    """The table output names each selected check with its result."""
    host = PluginHost.create()
    args = ["contract", "acme", "--check", "describes_itself", "--check", "status_mapping"]
    result = CliRunner().invoke(cli, args, obj=App(host_factory=lambda: host))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "PASSED" in line]
    assert ["describes_itself" in rows[0], "status_mapping" in rows[1]] == [True, True]
    assert result.output.strip().endswith("no check failed")


def test_cli_contract_unknown_marketplace_is_one_line_error() -> None:
    """An unknown marketplace exits 1 with the installed ones listed, no traceback."""
    host = PluginHost.create()
    result = CliRunner().invoke(cli, ["contract", "nosuch"], obj=App(host_factory=lambda: host))
    assert result.exit_code == 1
    assert "no marketplace plugin named 'nosuch'" in result.output
    assert "Traceback" not in result.output

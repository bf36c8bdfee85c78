"""The Spartoo plugin keeps the contract against its sandbox, like any other plugin."""

from __future__ import annotations

import json

import connector_spartoo.plugin as spartoo_plugin
from click.testing import CliRunner
from connector_spartoo.sandbox.server import SpartooSandbox

from connector_core.cli import App, cli
from connector_core.plugins import PluginHost
from connector_core.testing.contract import FAILED, PASSED, SKIPPED, ContractHarness, feature_key
from connector_core.testing.pytest_plugin import ContractSuite
from tests.contract.variants import module_variant, no_overlap


class TestSpartooContract(ContractSuite):
    """Every contract check, run on the installed spartoo plugin against the Spartoo sandbox."""

    marketplace = "spartoo"


def test_shipment_capabilities_are_checked_against_pushes() -> None:
    """Spartoo's `shipment_*` capability names fold onto the shipment fields the kit verifies."""
    names = ["shipment_tracking_number", "shipment_carrier_fee", "Customer e-mail", "item options"]
    assert [feature_key(n) for n in names] == ["tracking_number", "carrier_fee", "customer_email", "item_options"]


def _live_run(plugin_host: PluginHost, checks: list[str]) -> dict[str, str]:
    """Run ``checks`` in live mode (read-only) against a sandbox whose orders all changed minutes ago."""
    with SpartooSandbox(orders=30, seed=5, history_days=0.003) as sandbox:
        harness = ContractHarness("spartoo", host=plugin_host, settings=sandbox.settings())
        return {r.check: r.outcome for r in harness.run_all(checks)}


def test_live_mode_accepts_the_declared_refetch_overlap() -> None:
    """Live and read-only, orders re-exported inside Spartoo's 10-minute overlap pass incremental and cursors."""
    outcomes = _live_run(PluginHost.create(), ["incremental", "cursors", "push_shipment"])
    assert outcomes == {"incremental": PASSED, "cursors": PASSED, "push_shipment": SKIPPED}


def test_undeclared_overlap_is_the_ignores_the_cursor_bug() -> None:
    """The same live run fails incremental when the plugin does not declare the overlap it re-asks."""
    variant = module_variant(spartoo_plugin, contract_profile=no_overlap)
    host = PluginHost.create(plugins=[variant], load_entrypoints=False)
    assert _live_run(host, ["incremental"]) == {"incremental": FAILED}


def test_spartoo_sandbox_declares_the_truth_of_its_orders() -> None:
    """expected_orders covers every importable order, with UTC instants and the site's currency."""
    with SpartooSandbox(orders=20, seed=2) as sandbox:
        truth = sandbox.expected_orders()
        valid = {o["order_key"] for o in sandbox.orders() if o["valid"]}
    assert set(truth) == valid
    sample = next(iter(truth.values()))
    assert sample["order_date"].endswith("+00:00") and sample["currency"] in ("EUR", "GBP", "SEK", "PLN", "CHF")


def test_contract_json_lists_hooks_not_exercised() -> None:
    """`contract spartoo --json` names the implemented hooks no check called, each with the reason."""
    host = PluginHost.create()
    args = ["contract", "spartoo", "--json", "--check", "describes_itself"]
    result = CliRunner().invoke(cli, args, obj=App(host_factory=lambda: host))
    assert result.exit_code == 0, result.output
    hooks = {h["hook"]: h["why"] for h in json.loads(result.output)["not_exercised"]}
    assert {"fetch_catalogue", "fetch_order", "register_commands", "connect"} <= set(hooks)
    assert "no check damages one" in hooks["fetch_order"]

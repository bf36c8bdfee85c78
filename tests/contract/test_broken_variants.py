"""Each deliberately broken acme variant fails the contract checks its bug breaks, and only those."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector_core.cli import App, cli
from connector_core.testing.contract import CHECKS, FAILED, PASSED, ContractHarness
from tests.contract.variants import VARIANTS, WIDE_VARIANTS, host_for

ROOT = Path(__file__).resolve().parents[2]
#: Checks run beside a variant's own, to show the rest of the plugin still keeps the contract.
CORE = {"describes_itself", "connect", "fetch_and_map", "status_mapping"}


def _checks(ids: set[str]) -> list[str]:
    return [c.id for c in CHECKS if c.id in ids]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_broken_variant_fails_exactly_its_checks(variant: str) -> None:
    """The variant's broken checks fail with a message; the core checks it does not break pass."""
    plugin, broken = VARIANTS[variant]
    results = ContractHarness("acme", host=host_for(plugin)).run_all(_checks(broken | CORE))
    assert {r.check: r.outcome for r in results} == {
        c: FAILED if c in broken else PASSED for c in _checks(broken | CORE)
    }
    assert all(len(r.message) > 20 for r in results if r.outcome == FAILED)


def test_leaked_secret_is_never_printed() -> None:
    """The leaking variant's failure message shows neither the secret nor the raw error text."""
    plugin, _ = VARIANTS["leaks_secret"]
    result = ContractHarness("acme", host=host_for(plugin)).run_check("connect")
    assert result.outcome == FAILED
    assert "acme-revoked-secret-9999" not in result.message
    assert "build the message without it" in result.message


def test_values_that_look_right_are_shown_with_the_difference() -> None:
    """Money through float, yen divided by 100 and Paris time labelled UTC each name the field and the truth."""
    messages = {
        name: ContractHarness("acme", host=host_for(VARIANTS[name][0])).run_check("expected_records").message
        for name in ("money_through_float", "cents_everywhere", "local_time_as_utc", "float_without_truth")
    }
    assert "total is" in messages["money_through_float"] and "off by" in messages["money_through_float"]
    assert "AB-1001: total is '130.56' but should be '13056'" in messages["cents_everywhere"]  # JPY: no minor unit
    assert "order_date is the instant" in messages["local_time_as_utc"] and "+2 h" in messages["local_time_as_utc"]
    assert "more decimals than EUR allows (2)" in messages["float_without_truth"]
    assert "declares no expected_orders" not in messages["float_without_truth"]


def test_token_in_a_log_record_fails_every_check_that_logs_it() -> None:
    """A bearer token logged at DEBUG in a header is found (base64 or plain) and named by logger and level."""
    plugin, must_fail = WIDE_VARIANTS["logs_request_headers"]
    results = ContractHarness("acme", host=host_for(plugin)).run_all(_checks(must_fail | {"describes_itself"}))
    outcomes = {r.check: r.outcome for r in results}
    assert outcomes == {"describes_itself": PASSED, "connect": FAILED, "secrets": FAILED}
    message = next(r.message for r in results if r.check == "connect")
    assert "log record of connector_acme_variant at DEBUG shows a secret (ac" in message
    assert "acme_at_" not in message


def test_crash_names_the_order_and_the_plugin_line() -> None:
    """A mapping that raises KeyError on some orders names one of them and the variant's line that raised."""
    plugin, _ = WIDE_VARIANTS["crashes_on_notes"]
    result = ContractHarness("acme", host=host_for(plugin)).run_check("fetch_and_map")
    assert result.outcome == FAILED
    assert result.message.startswith("the check stopped on KeyError: 'note_text' while handling order AB-100")
    assert "tests/contract/variants.py:" in result.message and "in crashes_on_notes" in result.message


def test_token_in_an_exception_is_found() -> None:
    """A RuntimeError quoting the bearer token fails the check, and the report names where the secret showed."""
    plugin, _ = VARIANTS["token_in_refusal"]
    result = ContractHarness("acme", host=host_for(plugin)).run_check("order_transitions")
    assert result.outcome == FAILED
    assert "secrets leaked: the exception that stopped the check shows a secret (ac" in result.message
    assert "acme_at_" not in result.message


def test_cli_exits_1_when_a_check_fails() -> None:
    """`connector-host contract` exits 1 and marks the failed check in its table."""
    plugin, _ = VARIANTS["partial_status_map"]
    host = host_for(plugin)
    args = ["contract", "acme", "--check", "status_mapping", "--check", "describes_itself"]
    result = CliRunner().invoke(cli, args, obj=App(host_factory=lambda: host))
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "status_mapping" in failed[0] and "cancelled" in failed[0]
    assert "1 of 2 checks failed" in result.output


def test_cli_json_reports_a_wrong_value() -> None:
    """`contract --json --check expected_records` on the float variant reports the failure and exits 1."""
    host = host_for(VARIANTS["money_through_float"][0])
    args = ["contract", "acme", "--json", "--check", "expected_records"]
    result = CliRunner().invoke(cli, args, obj=App(host_factory=lambda: host))
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert [(c["check"], c["outcome"]) for c in report["checks"]] == [("expected_records", "failed")]
    assert "but should be" in report["checks"][0]["message"] and "off by" in report["checks"][0]["message"]


def test_pytest_plugin_fails_the_broken_check(tmp_path: Path) -> None:
    """A ContractSuite run by pytest on the clock variant fails test_08_cursors and passes test_01."""
    (tmp_path / "test_variant_suite.py").write_text(
        textwrap.dedent(
            '''
            from connector_core.testing.pytest_plugin import ContractSuite
            from tests.contract.variants import VARIANTS, host_for


            class TestClockVariant(ContractSuite):
                """The acme variant that stamps modified_date with the clock."""

                marketplace = "acme"

                def contract_host(self):
                    return host_for(VARIANTS["mapping_uses_the_clock"][0])
            '''
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "01 or 08", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr
    assert "contract check 8 (cursors) failed: two full reads mapped" in run.stdout

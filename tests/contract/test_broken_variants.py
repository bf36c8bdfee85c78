"""Each deliberately broken acme variant fails exactly the contract check it breaks."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from connector_core.cli import App, cli
from connector_core.testing.contract import CHECKS, FAILED, PASSED, ContractHarness
from tests.contract.variants import VARIANTS, host_for


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_broken_variant_fails_the_right_check(variant: str) -> None:
    """The variant's broken check fails with a message; every other check passes."""
    plugin, broken = VARIANTS[variant]
    results = ContractHarness("acme", host=host_for(plugin)).run_all()
    outcomes = {r.check: r.outcome for r in results}
    assert outcomes == {c.id: (FAILED if c.id == broken else PASSED) for c in CHECKS}
    message = next(r.message for r in results if r.check == broken)
    assert len(message) > 20


def test_leaked_secret_is_never_printed() -> None:
    """The leaking variant's failure message shows neither the key nor the raw error text."""
    plugin, _ = VARIANTS["leaks_secret"]
    result = ContractHarness("acme", host=host_for(plugin)).run_check("connect")
    assert result.outcome == FAILED
    assert "acme-revoked-key-9999" not in result.message
    assert "build the message without it" in result.message


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

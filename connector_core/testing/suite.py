""":class:`ContractSuite`: one pytest test per contract check (import it from ``...testing.pytest_plugin``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from connector_core.plugins import PluginHost
from connector_core.testing.contract import CHECKS, FAILED, SKIPPED, Check, ContractHarness


def _contract_test(check: Check) -> Callable[[Any, ContractHarness], None]:
    def test(self: Any, contract_harness: ContractHarness) -> None:
        result = contract_harness.run_check(check.id)
        if result.outcome == SKIPPED:
            pytest.skip(result.message)
        if result.outcome == FAILED:
            pytest.fail(f"contract check {check.number} ({check.id}) failed: {result.message}", pytrace=False)

    test.__name__ = f"test_{check.number:02d}_{check.id}"
    test.__qualname__ = f"ContractSuite.{test.__name__}"
    test.__doc__ = f"Contract check {check.number}: {check.title}."
    return test


class ContractSuite:
    """Subclass as ``Test...`` and set ``marketplace``: one test per contract check."""

    marketplace: ClassVar[str] = ""
    settings: ClassVar[dict[str, Any] | None] = None
    allow_writes: ClassVar[bool] = False

    def contract_host(self) -> PluginHost:
        """The plugin host to test through (default: installed plugins)."""
        return PluginHost.create()


for _check in CHECKS:
    _test = _contract_test(_check)
    setattr(ContractSuite, _test.__name__, _test)

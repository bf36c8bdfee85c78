"""The contract suite as a pytest plugin (registered through the ``pytest11`` entry point).

A connector author gets every check as its own named test::

    from connector_core.testing.pytest_plugin import ContractSuite

    class TestAcmeContract(ContractSuite):
        marketplace = "acme"

Against a live endpoint instead of the sandbox, set ``settings`` (a dict of
store settings); checks that write (push, accept) run live only with
``allow_writes = True``. Override :meth:`ContractSuite.contract_host` to
test a plugin that is not installed through an entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from connector_core.plugins import PluginHost
from connector_core.testing.contract import CHECKS, FAILED, SKIPPED, Check, ContractHarness


@pytest.fixture(scope="class")
def contract_harness(request: pytest.FixtureRequest) -> ContractHarness:
    """A :class:`ContractHarness` for the test class's ``marketplace`` (see :class:`ContractSuite`)."""
    suite = request.cls
    if suite is None or not getattr(suite, "marketplace", ""):
        raise pytest.UsageError("contract_harness is for ContractSuite subclasses that set `marketplace`")
    instance = suite()
    return ContractHarness(
        suite.marketplace,
        host=instance.contract_host(),
        settings=suite.settings,
        allow_writes=suite.allow_writes,
    )


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

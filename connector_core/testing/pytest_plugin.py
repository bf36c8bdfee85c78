"""The contract suite as a pytest plugin (registered through the ``pytest11`` entry point).

A connector author gets every check as its own named test::

    from connector_core.testing.pytest_plugin import ContractSuite

    class TestAcmeContract(ContractSuite):
        marketplace = "acme"

Against a live endpoint instead of the sandbox, set ``settings`` (a dict of
store settings); the checks that write (they accept and ship two orders)
run live only with ``allow_writes = True`` and then really change orders of
that account (see ``connector-host contract --help``). Override
:meth:`ContractSuite.contract_host` to test a plugin that is not installed
through an entry point.

Registering this module costs nothing measurable when a test run does not
use it: it imports only pytest. The kit (and with it the host, httpx,
jsonschema) is imported when :class:`ContractSuite` is first named, or when
the ``contract_harness`` fixture first runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from connector_core.testing.contract import ContractHarness
    from connector_core.testing.suite import ContractSuite

__all__ = ["ContractSuite", "contract_harness"]


@pytest.fixture(scope="class")
def contract_harness(request: pytest.FixtureRequest) -> ContractHarness:
    """A :class:`ContractHarness` for the test class's ``marketplace`` (see :class:`ContractSuite`)."""
    from connector_core.testing.contract import ContractHarness

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


def __getattr__(name: str) -> Any:
    if name == "ContractSuite":
        from connector_core.testing.suite import ContractSuite

        return ContractSuite
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

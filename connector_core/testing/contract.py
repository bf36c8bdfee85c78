"""The plugin contract: sixteen named checks any marketplace plugin must pass, and the harness that runs them.

Each check drives the plugin through the host's own machinery
(:class:`~connector_core.plugins.PluginHost`, and for the checks that sync,
:class:`~connector_core.db.OrderBook` on a temporary SQLite file and
:class:`~connector_core.engine.Engine`) and compares real
values. A failure carries a message that says what to fix; a check that
stops on an exception names the order it was handling and the last frame of
the traceback in the plugin's code. Every check runs with every log record
(any logger, any level), printed output, warning and exception captured, and
fails if a secret (a settings secret, a token the sandbox issued, a value
registered with ``store.secrets.add``) shows in any of it.

By default every check runs against a fresh sandbox of the marketplace (the
plugin's ``sandbox_factory`` hook). With live ``settings`` the checks run
against the real endpoint and only read, unless ``allow_writes`` is set:
then the push_shipment and capabilities checks each accept (when needed) and
ship one live order, with a made-up tracking number (``CT`` + 10 hex
digits). Checks that need a sandbox (adding orders, injecting faults,
expiring tokens, reading the marketplace's state back: partial shipments,
transitions) are skipped in live mode.

Use it from pytest (:class:`connector_core.testing.pytest_plugin.ContractSuite`),
from the command line (``connector-host contract NAME``), or directly::

    harness = ContractHarness("acme")
    results = harness.run_all()
    harness.unexercised()   # hooks the plugin implements that no check called, and why
"""

from __future__ import annotations

import sysconfig
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import attrs

from connector_core.plugins import PluginHost
from connector_core.secrets import redact
from connector_core.testing import checks_basic, checks_cursor, checks_faults, checks_push, checks_values
from connector_core.testing.checks_push import feature_key
from connector_core.testing.env import ContractFailure, ContractSkip, Env
from connector_core.testing.scan import Capture, leaks

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"

#: Why the kit leaves a hook alone (shown for the hooks a plugin implements that no check called).
NOT_EXERCISED = {
    "fetch_order": "called by the host only for a payload that failed its schema or mapping; no check damages one",
    "fetch_catalogue": "the product catalogue export has no contract check yet",
    "register_commands": "adds CLI commands; the kit does not run a plugin's commands",
}

__all__ = [
    "CHECKS",
    "CHECKS_BY_ID",
    "FAILED",
    "PASSED",
    "SKIPPED",
    "Check",
    "CheckResult",
    "ContractFailure",
    "ContractHarness",
    "ContractSkip",
    "Env",
    "feature_key",
]


@attrs.frozen
class CheckResult:
    """The outcome of one check: ``passed``, ``failed`` or ``skipped``, with its message and warnings seen."""

    check: str
    number: int
    title: str
    outcome: str
    message: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Whether the check passed."""
        return self.outcome == PASSED


@attrs.frozen
class Check:
    """One named check of the contract."""

    id: str
    number: int
    title: str
    run: Callable[[Env], str]


def _library_dirs() -> tuple[str, ...]:
    import attr
    import httpcore
    import httpx
    import pluggy

    import connector_core

    dirs = [Path(m.__file__).parent for m in (connector_core, pluggy, httpx, httpcore, attr) if m.__file__]
    return (*(str(d) for d in dirs), sysconfig.get_paths()["stdlib"])


def plugin_frame(exc: BaseException) -> str | None:
    """The last frame of ``exc``'s traceback outside the host, pluggy, httpx and the standard library."""
    frames = traceback.extract_tb(exc.__traceback__)
    skip = _library_dirs()
    mine = [f for f in frames if not f.filename.startswith(skip)]
    if not mine:
        return None
    frame = mine[-1]
    return f"{frame.filename}:{frame.lineno} in {frame.name}" + (f": {frame.line}" if frame.line else "")


class ContractHarness:
    """Runs the contract checks on one marketplace plugin."""

    def __init__(
        self,
        marketplace: str,
        *,
        host: PluginHost | None = None,
        settings: Mapping[str, Any] | None = None,
        allow_writes: bool = False,
    ) -> None:
        self.marketplace = marketplace
        self.host = host if host is not None else PluginHost.create()
        self.settings = dict(settings) if settings is not None else None
        self.allow_writes = allow_writes
        self.exercised: set[str] = set()
        self.host.info(marketplace)  # an unknown marketplace fails here, with the installed ones listed

    def target_plugin(self) -> object:
        """The plugin object that implements this marketplace."""
        return next(
            impl.plugin
            for impl in self.host.pm.hook.marketplace_info.get_hookimpls()
            if getattr(impl.function(), "name", None) == self.marketplace
        )

    def implemented(self) -> list[str]:
        """The hooks this marketplace's plugin implements."""
        target = self.target_plugin()
        return sorted(
            name
            for name, caller in vars(self.host.pm.hook).items()
            if not name.startswith("_") and any(i.plugin is target for i in caller.get_hookimpls())
        )

    def unexercised(self) -> list[tuple[str, str]]:
        """Hooks the plugin implements that no check run so far called, each with the reason."""
        return [
            (name, NOT_EXERCISED.get(name, "no check of the kit calls it"))
            for name in self.implemented()
            if name not in self.exercised and name != "marketplace_info"
        ]

    @contextmanager
    def _monitor(self) -> Iterator[None]:
        target = self.target_plugin()

        def before(hook_name: str, hook_impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
            if any(i.plugin is target for i in hook_impls):
                self.exercised.add(hook_name)

        undo = self.host.pm.add_hookcall_monitoring(before, lambda *args: None)
        try:
            yield
        finally:
            undo()

    @contextmanager
    def environment(self, capture: Capture | None = None) -> Iterator[Env]:
        """A fresh sandbox (or the live endpoint) for one check."""
        capture = capture or Capture()
        with ExitStack() as stack:
            if self.settings is not None:
                env = Env(self, None, self.settings, capture)
            else:
                factory = self.host.sandbox_factory(self.marketplace)
                if factory is None:
                    raise ContractSkip(
                        f"the {self.marketplace} plugin ships no sandbox_factory: give live settings to run this check"
                    )
                sandbox = stack.enter_context(factory())
                module = type(sandbox).__module__
                capture.ignore = (module, module.rpartition(".")[0] + ".", "uvicorn")
                env = Env(self, sandbox, sandbox.settings(), capture)
            stack.callback(env.close)
            yield env

    def run_check(self, check_id: str) -> CheckResult:
        """Run one check by its id."""
        check = CHECKS_BY_ID[check_id]
        capture = Capture()
        secrets: list[str] = []
        with capture.active(), self._monitor():
            try:
                with self.environment(capture) as env:
                    try:
                        outcome, message = PASSED, check.run(env)
                    except ContractFailure as failure:
                        outcome, message = FAILED, str(failure)
                    except ContractSkip:
                        raise
                    except Exception as exc:  # the plugin broke in a way no check expected: a failure too
                        capture.add_exception("the exception that stopped the check", exc)
                        outcome, message = FAILED, _crash(exc, env.crashed_on(exc))
                    finally:
                        secrets = env.all_secrets()
            except ContractSkip as skip:
                outcome, message = SKIPPED, str(skip)
            except Exception as exc:  # the sandbox or the plugin's set-up failed
                outcome, message = FAILED, _crash(exc, None)
        if outcome != SKIPPED and (found := leaks(capture.seen, secrets)):
            shown = "; ".join(found[:3]) + (f" (+{len(found) - 3} more)" if len(found) > 3 else "")
            leak = f"secrets leaked: {shown}; never log, print or raise with a secret or a token derived from one"
            message = f"{message}; {leak}" if outcome == FAILED else leak
            outcome = FAILED
        return CheckResult(check.id, check.number, check.title, outcome, redact(message), tuple(capture.warnings))

    def run_all(self, only: list[str] | None = None) -> list[CheckResult]:
        """Run every check (or those in ``only``) in order."""
        return [self.run_check(c.id) for c in CHECKS if only is None or c.id in only]


def _crash(exc: BaseException, order_key: str | None) -> str:
    where = f" while handling order {order_key}" if order_key else ""
    frame = plugin_frame(exc)
    return f"the check stopped on {type(exc).__name__}: {exc}{where}" + (f"; at {frame}" if frame else "")


CHECKS: tuple[Check, ...] = (
    Check("describes_itself", 1, "The plugin describes itself", checks_basic.check_describes_itself),
    Check(
        "connect",
        2,
        "connect: good settings work, bad credentials give an actionable AuthError",
        checks_basic.check_connect,
    ),
    Check(
        "fetch_and_map",
        3,
        "fetch_orders: raw and mapped orders validate, keys unique",
        checks_basic.check_fetch_and_map,
    ),
    Check(
        "no_address_rejected",
        4,
        "Orders without a shipping address are rejected",
        checks_basic.check_no_address_rejected,
    ),
    Check(
        "expected_records",
        5,
        "Mapped values equal the sandbox's truth; money fits its currency",
        checks_values.check_expected_records,
    ),
    Check(
        "pure_mapping",
        6,
        "Mapping hooks do no I/O, repeat exactly and leave the payload as it is",
        checks_values.check_pure_mapping,
    ),
    Check(
        "incremental",
        7,
        "Incremental fetch: nothing lost, nothing repeated beyond the overlap",
        checks_cursor.check_incremental,
    ),
    Check("cursors", 8, "Every intermediate cursor resumes; full reads repeat exactly", checks_cursor.check_cursors),
    Check("status_mapping", 9, "map_status is total; custom mapping wins", checks_basic.check_status_mapping),
    Check(
        "push_shipment",
        10,
        "push_shipment is visible, idempotent (also after a re-sync), reported per field",
        checks_push.check_push_shipment,
    ),
    Check("partial_shipment", 11, "A partial shipment ships exactly its lines", checks_push.check_partial_shipment),
    Check(
        "order_transitions",
        12,
        "accept/cancel change the marketplace; illegal ones raise TransitionError",
        checks_push.check_order_transitions,
    ),
    Check("capabilities", 13, "The capability table is truthful", checks_push.check_capabilities),
    Check("faults", 14, "Transient faults are survived; a permanent one is a clear error", checks_faults.check_faults),
    Check(
        "credentials_expire",
        15,
        "Expired tokens are renewed mid-run, nothing lost or doubled",
        checks_faults.check_credentials_expire,
    ),
    Check(
        "secrets",
        16,
        "Run-time tokens are registered; no secret in logs, errors or output",
        checks_faults.check_secrets,
    ),
)
CHECKS_BY_ID: dict[str, Check] = {c.id: c for c in CHECKS}

"""``connector-host run``: sync and push every store on a loop until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from connector_core import hookimpl, http, schedule
from connector_core.cli.app import App, pass_app
from connector_core.cli.output import out
from connector_core.cli.ship import push_lines
from connector_core.cli.sync import WORKERS_OPTION, interrupted_line, sync_line, sync_stores
from connector_core.clock import now_iso
from connector_core.errors import ConnectorError, Interrupted
from connector_core.push.outbox import PushReport
from connector_core.secrets import redact
from connector_core.sync.runner import SyncReport

CUT_AFTER = 1.0
"""Seconds after SIGTERM or Ctrl-C at which a request still in progress on the main thread is cut."""


def add_run_command(group: click.Group) -> None:
    """``run``: sync and push on a loop."""

    @group.command("run")
    @click.option("--interval", type=click.FloatRange(min=0), default=300, show_default=True, help="Seconds.")
    @click.option("--max-cycles", type=click.IntRange(min=1), help="Stop after this many cycles.")
    @WORKERS_OPTION
    @pass_app
    def run(app: App, interval: float, max_cycles: int | None, workers: int | None) -> None:
        """Sync and push every store on a loop until Ctrl-C or SIGTERM.

        Each cycle syncs the stores that are due (a store's `schedule.sync_interval`
        host setting, 0 by default: every cycle), the most out-of-date first,
        then waits --interval seconds.
        """
        stop = threading.Event()

        def handler(signum: int, frame: FrameType | None) -> None:
            stop.set()
            http.interrupt()  # a retry wait in progress ends within a second
            signal.setitimer(signal.ITIMER_REAL, CUT_AFTER)  # and a read still going then is cut

        def cut(signum: int, frame: FrameType | None) -> None:
            http.cut_request()

        previous = {}
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, handler)
            previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, cut)
        cycles = 0
        http.resume()
        try:
            while not stop.is_set():
                cycles += 1
                names = [s.name for s in app.book.list_stores()]
                due = schedule.due_stores(app.book)  # each store's sync_interval; the most out-of-date first
                synced: list[SyncReport] = []
                pushed: list[PushReport] = []
                errors = 0
                for name in due:
                    if stop.is_set():
                        break
                    errors += _run_store(app, name, workers, stop, synced, pushed)
                out(_cycle_line(cycles, names, synced, pushed, errors, not_due=len(names) - len(due)))
                if max_cycles is not None and cycles >= max_cycles:
                    break
                stop.wait(interval)
        except Interrupted:
            pass  # the signal's own stop: what is done is kept
        finally:
            if in_main:
                signal.setitimer(signal.ITIMER_REAL, 0)
            for sig, old in previous.items():
                signal.signal(sig, old)
            http.resume()
        out(f"stopped after {cycles} cycle(s)")


def _cycle_line(
    cycle: int, names: list[str], synced: list[SyncReport], pushed: list[PushReport], errors: int, *, not_due: int = 0
) -> str:
    """One timestamped line per cycle: what it did in all."""
    new = sum(r.inserted for r in synced)
    updated = sum(r.updated for r in synced)
    rejected = sum(r.rejected for r in synced)
    accepted = sum(r.accepted for r in synced)
    sent = sum(r.pushed for r in pushed)
    refused = sum(r.failed + r.conflicts for r in pushed)
    return (
        f"{now_iso()} cycle {cycle}: {len(synced)} of {len(names)} store(s) synced"
        f"{f' ({not_due} not due yet)' if not_due else ''}, {new} new, {updated} updated,"
        f" {rejected} rejected, {accepted} accepted; {sent} shipment(s) pushed, {refused} not accepted;"
        f" {errors} error(s)"
    )


def _run_store(
    app: App,
    name: str,
    workers: int | None,
    stop: threading.Event,
    synced: list[SyncReport],
    pushed: list[PushReport],
) -> int:
    """Sync and push one store; return 1 if it failed (the error is printed), else 0.

    Whatever fails is one line on stderr and the loop goes on with the next store: a bug met by one
    store (any exception) never ends the loop; only Interrupted (SIGTERM during a wait) does.
    """
    try:
        reports, failures = sync_stores(app, [name], workers, stop=stop)
        if not reports:
            return 0
        synced.append(reports[0])
        out(interrupted_line(reports[0]) if reports[0].interrupted else sync_line(reports[0]))
        for failure in failures:
            out(f"error: {failure}", err=True)
        if stop.is_set():
            return 0
        report = app.engine.push(name)
        pushed.append(report)
        for line in push_lines(report):
            out(line)
    except ConnectorError as err:
        out(f"error: {name}: {err.message}", err=True)
        return 1
    except Interrupted:
        raise
    except Exception as exc:  # a bug met by one store never ends the loop
        out(f"error: {name}: internal error {type(exc).__name__}: {redact(str(exc))}", err=True)
        return 1
    return 1 if failures else 0


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_run_command(cli)

"""``connector-host run``: sync and push every store on a loop until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from connector_core import hookimpl
from connector_core.cli.app import App, pass_app
from connector_core.cli.output import out
from connector_core.cli.ship import push_lines
from connector_core.cli.sync import WORKERS_OPTION, sync_line, sync_stores
from connector_core.errors import ConnectorError


def add_run_command(group: click.Group) -> None:
    """``run``: sync and push on a loop."""

    @group.command("run")
    @click.option("--interval", type=click.FloatRange(min=0), default=300, show_default=True, help="Seconds.")
    @click.option("--max-cycles", type=click.IntRange(min=1), help="Stop after this many cycles.")
    @WORKERS_OPTION
    @pass_app
    def run(app: App, interval: float, max_cycles: int | None, workers: int | None) -> None:
        """Sync and push every store on a loop until Ctrl-C or SIGTERM."""
        stop = threading.Event()

        def handler(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {}
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, handler)
        cycles = 0
        try:
            while not stop.is_set():
                cycles += 1
                names = [s.name for s in app.book.list_stores()]
                for name in names:
                    if stop.is_set():
                        break
                    _run_store(app, name, workers)
                if max_cycles is not None and cycles >= max_cycles:
                    break
                stop.wait(interval)
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        out(f"stopped after {cycles} cycle(s)")


def _run_store(app: App, name: str, workers: int | None) -> None:
    try:
        reports, _ = sync_stores(app, [name], workers)
        out(sync_line(reports[0]))
        for line in push_lines(app.engine.push(name)):
            out(line)
    except ConnectorError as err:
        out(f"error: {name}: {err.message}", err=True)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_run_command(cli)

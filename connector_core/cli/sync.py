"""``connector-host sync``: import new and changed orders, with progress on a terminal."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from types import FrameType
from typing import Any

import attrs
import click
from rich.console import Console

from connector_core import hookimpl
from connector_core.cli.app import App, pass_app, store_names, store_option
from connector_core.cli.jobs import QUEUE_OPTION
from connector_core.cli.jobs import enqueue as enqueue_jobs
from connector_core.cli.output import UserError, out, out_json
from connector_core.errors import ConnectorError, Interrupted
from connector_core.forking import MAX_PROCESSES, MAX_WORKERS, WORKERS_ENV
from connector_core.quota import clock_time
from connector_core.secrets import redact
from connector_core.sync.runner import StopSignal, SyncReport

INTERRUPTED_EXIT = 130
"""Exit status of a sync stopped by Ctrl-C (128 + SIGINT), as shells report it."""


def sync_line(r: SyncReport) -> str:
    line = (
        f"{r.store}: {r.fetched} fetched, {r.inserted} new, {r.updated} updated, {r.unchanged} unchanged, "
        f"{r.rejected} rejected, {r.accepted} accepted"
        + (f", {r.accept_errors} not accepted" if r.accept_errors else "")
    )
    if r.quota_until is not None:
        until = datetime.fromisoformat(r.quota_until.replace("Z", "+00:00"))
        line += f"; quota used up until {clock_time(until)}; {r.deferred} accepts deferred"
    return line


def failure_lines(r: SyncReport) -> list[str]:
    """One ``store: what failed`` line per failure of the sync (a site's unreadable document, the deadline)."""
    return [f"{r.store}: {failure}" for failure in r.failures]


def _notice(line: str) -> None:
    """A retry or a deadline, told on stderr as it happens, so a terminal user sees why nothing moves."""
    click.echo(redact(f"  ... {line}"), err=True)


@contextlib.contextmanager
def _progress(store: str) -> Iterator[Callable[[SyncReport], None] | None]:
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    # refreshed by each page rather than by rich's refresh thread: a sync may fork map workers,
    # and a fork copies only the calling thread (a thread holding the terminal's lock must not be one)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
        auto_refresh=False,
    ) as p:
        task = p.add_task(f"{store}: connecting")
        p.refresh()

        def update(r: SyncReport) -> None:
            p.update(task, description=redact(sync_line(r) + f" (page {r.pages})"), refresh=True)

        yield update


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by the first Ctrl-C or SIGTERM (the work stops at its next page boundary).

    A second Ctrl-C stops at once (``KeyboardInterrupt``). Outside the main
    thread no handler can be installed: the event is then never set by a signal.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        stop.set()
        click.echo("stopping after the page being stored (Ctrl-C again to stop at once)", err=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def interrupted_line(r: SyncReport) -> str:
    """What an interrupted sync kept, and how to go on."""
    return (
        f"{r.store}: interrupted after {r.pages} page(s): {r.stored} orders stored, each page with its cursor"
        f" ({json_cursor(r.cursor)}); run `connector-host sync` again to go on from there"
    )


def json_cursor(cursor: Any) -> str:
    return "cursor " + json.dumps(cursor, default=str) if cursor is not None else "no cursor saved yet"


def sync_stores(
    app: App,
    names: Sequence[str],
    workers: int | None = None,
    *,
    concurrency: int = 1,
    processes: int = 1,
    stop: StopSignal | None = None,
) -> tuple[list[SyncReport], list[str]]:
    """Sync each store; return the reports and one error line per store that failed.

    With ``concurrency`` or ``processes`` above 1 and several stores, they are
    synced at once (:func:`connector_core.sync.many.sync_all`), without
    per-page progress.
    """
    reports: list[SyncReport] = []
    errors: list[str] = []
    engine = app.engine
    engine.workers = workers
    if sys.stderr.isatty():
        engine.notice = _notice
    if len(names) > 1 and (concurrency > 1 or processes > 1):
        for name, result in zip(
            names, engine.sync_all(names, concurrency=concurrency, processes=processes), strict=True
        ):
            if isinstance(result, ConnectorError):
                errors.append(f"{name}: {result.message}")
            else:
                reports.append(result)
                errors.extend(failure_lines(result))
        return reports, errors
    for name in names:
        if stop is not None and stop.is_set():
            break
        try:
            with _progress(name) as progress:
                report = engine.sync(name, progress=progress, stop=stop)
            reports.append(report)
            errors.extend(failure_lines(report))
        except ConnectorError as err:
            if len(names) == 1:
                raise
            errors.append(f"{name}: {err.message}")
        except Interrupted:
            raise
        except Exception as exc:  # a bug met by one store never stops the others: it is that store's error
            if len(names) == 1:
                raise
            errors.append(f"{name}: internal error {type(exc).__name__}: {redact(str(exc))}")
    return reports, errors


WORKERS_OPTION = click.option(
    "--workers",
    type=click.IntRange(0, MAX_WORKERS),
    help="Worker processes that map a large sync's pages while this one fetches and stores"
    f" (0: map in this process; default: ${WORKERS_ENV}, else 1 on a machine of 2+ cores).",
)
"""``--workers`` of ``sync`` and ``run``."""


def concurrency_options(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--concurrency`` and ``--processes``, shared by ``sync`` and ``push``."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--processes",
            type=click.IntRange(1, MAX_PROCESSES),
            default=1,
            show_default=True,
            help="Forked processes sharing that work (the threads split between them), to use more than one"
            " core; plugins' hooks then run in those processes.",
        )(command)
        return click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=1,
            show_default=True,
            help=f"Threads in all: {what} (marketplace calls mostly wait on the network).",
        )(command)

    return decorate


def add_sync_commands(group: click.Group) -> None:
    """``sync``."""

    @group.command("sync")
    @store_option("Only this store (default: every store).")
    @WORKERS_OPTION
    @concurrency_options("stores synced at once")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.option("--enqueue", is_flag=True, help="Queue one sync job per store for `worker` instead of syncing here.")
    @QUEUE_OPTION
    @pass_app
    def sync(
        app: App,
        store: str | None,
        workers: int | None,
        concurrency: int,
        processes: int,
        as_json: bool,
        enqueue: bool,
        queue: str | None,
    ) -> None:
        """Import new and changed orders from the marketplaces.

        Ctrl-C (or SIGTERM) stops after the page being stored: every page
        stored so far is kept with its cursor, and the next sync goes on.
        (Many stores synced at once with --concurrency/--processes stop on
        Ctrl-C at once instead, each page stored so far kept likewise.)
        """
        names = store_names(app, store)
        if enqueue:
            enqueue_jobs(app, "sync", names, queue)
            return
        at_once = len(names) > 1 and (concurrency > 1 or processes > 1)
        with contextlib.nullcontext(threading.Event()) if at_once else stop_on_signals() as stop:
            reports, errors = sync_stores(app, names, workers, concurrency=concurrency, processes=processes, stop=stop)
        if as_json:
            out_json([attrs.asdict(r) for r in reports])
        else:
            for r in reports:
                out(interrupted_line(r) if r.interrupted else sync_line(r))
        if errors:
            raise UserError("; ".join(errors))
        if stop.is_set():
            left = [n for n in names if n not in {r.store for r in reports}]
            if left:
                out(f"not synced: {', '.join(left)}", err=True)
            raise SystemExit(INTERRUPTED_EXIT)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_sync_commands(cli)

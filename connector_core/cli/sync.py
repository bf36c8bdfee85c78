"""``connector-host sync``: import new and changed orders, with progress on a terminal."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import click
from rich.console import Console

from connector_core import hookimpl
from connector_core.cli.app import App, pass_app, store_names
from connector_core.cli.output import UserError, out, out_json
from connector_core.errors import ConnectorError
from connector_core.forking import MAX_PROCESSES, MAX_WORKERS, WORKERS_ENV
from connector_core.secrets import redact
from connector_core.sync.runner import SyncReport


def sync_line(r: SyncReport) -> str:
    return (
        f"{r.store}: {r.fetched} fetched, {r.inserted} new, {r.updated} updated, {r.unchanged} unchanged, "
        f"{r.rejected} rejected, {r.accepted} accepted"
        + (f", {r.accept_errors} not accepted" if r.accept_errors else "")
    )


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


def sync_stores(
    app: App, names: Sequence[str], workers: int | None = None, *, concurrency: int = 1, processes: int = 1
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
    if len(names) > 1 and (concurrency > 1 or processes > 1):
        for name, result in zip(
            names, engine.sync_all(names, concurrency=concurrency, processes=processes), strict=True
        ):
            if isinstance(result, ConnectorError):
                errors.append(f"{name}: {result.message}")
            else:
                reports.append(result)
        return reports, errors
    for name in names:
        try:
            with _progress(name) as progress:
                reports.append(engine.sync(name, progress=progress))
        except ConnectorError as err:
            if len(names) == 1:
                raise
            errors.append(f"{name}: {err.message}")
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
    @click.option("--store", help="Only this store (default: every store).")
    @WORKERS_OPTION
    @concurrency_options("stores synced at once")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def sync(app: App, store: str | None, workers: int | None, concurrency: int, processes: int, as_json: bool) -> None:
        """Import new and changed orders from the marketplaces."""
        reports, errors = sync_stores(
            app, store_names(app, store), workers, concurrency=concurrency, processes=processes
        )
        if as_json:
            out_json([attrs.asdict(r) for r in reports])
        else:
            for r in reports:
                out(sync_line(r))
        if errors:
            raise UserError("; ".join(errors))


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_sync_commands(cli)

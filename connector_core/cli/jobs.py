"""``worker``, ``jobs list/init/enqueue-due``, ``sync``/``push --enqueue``: background jobs on a PostgreSQL queue."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import click

from connector_core import hookimpl
from connector_core.cli.app import App, pass_app
from connector_core.cli.output import out, out_json, table

QUEUE_OPTION = click.option(
    "--queue",
    metavar="URL",
    help="PostgreSQL URL of the job queue [env CONNECTOR_HOST_QUEUE; default: --db when that is PostgreSQL].",
)

STATES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")


def queue_app(app: App, queue: str | None) -> Any:
    """The procrastinate app on the queue ``--queue`` (or the env, or the PostgreSQL ``--db``) names, checked."""
    from connector_core import jobs

    url = jobs.queue_url(queue, app.db)
    jobs.check_queue(url)
    return jobs.make_app(url, app.db)


def enqueue(app: App, kind: str, names: Sequence[str], queue: str | None) -> None:
    """Defer one ``kind`` job per store and print one line each (a store with a job already waiting is said so)."""
    from connector_core import jobs

    defer: Callable[[Any, str], int | None] = jobs.defer_sync if kind == "sync" else jobs.defer_push
    papp = queue_app(app, queue)
    with papp.open():
        for name in names:
            job_id = defer(papp, name)
            if job_id is None:
                out(f"{name}: a {kind} is already waiting; not queued again")
            else:
                out(f"{name}: {kind} queued as job {job_id}")


def add_job_commands(group: click.Group) -> None:
    """``worker`` and ``jobs``."""

    @group.command("worker")
    @QUEUE_OPTION
    @click.option(
        "--concurrency",
        type=click.IntRange(1, 64),
        default=1,
        show_default=True,
        help="Jobs run at once by this worker (never two of one store).",
    )
    @pass_app
    def worker(app: App, queue: str | None, concurrency: int) -> None:
        """Run queued syncs and pushes until stopped (Ctrl-C or SIGTERM ends it after the jobs running)."""
        papp = queue_app(app, queue)
        with papp.open():
            papp.run_worker(concurrency=concurrency, wait=True, install_signal_handlers=True)

    @group.group("jobs")
    def jobs_group() -> None:
        """The background job queue."""

    @jobs_group.command("list")
    @QUEUE_OPTION
    @click.option("--state", type=click.Choice(STATES), help="Only jobs in this state.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def jobs_list(app: App, queue: str | None, state: str | None, as_json: bool) -> None:
        """List the queued, running and finished jobs, oldest first."""
        from connector_core import jobs

        papp = queue_app(app, queue)
        with papp.open():
            lines = jobs.list_jobs(papp, state)
        if as_json:
            out_json([attrs.asdict(j) for j in lines])
        elif lines:
            table(
                None,
                ["ID", "KIND", "STORE", "STATE", "ATTEMPTS", "NOT BEFORE"],
                [[j.id, j.kind, j.store, j.state, j.attempts, j.not_before or ""] for j in lines],
            )
        else:
            out("no jobs")

    @jobs_group.command("init")
    @QUEUE_OPTION
    @pass_app
    def jobs_init(app: App, queue: str | None) -> None:
        """Create the queue's tables in the PostgreSQL database (once, before the first worker)."""
        papp = queue_app(app, queue)
        with papp.open():
            papp.schema_manager.apply_schema()
        out("job queue ready")

    @jobs_group.command("enqueue-due")
    @QUEUE_OPTION
    @pass_app
    def jobs_enqueue_due(app: App, queue: str | None) -> None:
        """Queue a sync of each store that is due (schedule.sync_interval), most out-of-date first, and a
        push of each store with shipments waiting.

        Workers do this every minute on their own; this command does it once (from cron, or by hand).
        """
        from connector_core.jobs import enqueue_due
        from connector_core.jobs.queue import enqueue_pending_pushes

        papp = queue_app(app, queue)
        with papp.open():
            queued = enqueue_due(papp, app.db)
            pushes = enqueue_pending_pushes(papp, app.db)
        out(f"queued a sync of {len(queued)} store(s){': ' + ', '.join(queued) if queued else ''}")
        if pushes:
            out(f"queued a push of {len(pushes)} store(s) with shipments waiting: {', '.join(pushes)}")


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_job_commands(cli)

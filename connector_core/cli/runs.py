"""``connector-host runs list|show``: the history of every sync and push."""

from __future__ import annotations

import json

import attrs
import click

from connector_core import hookimpl
from connector_core.cli.app import App, check_store, pass_app, store_option
from connector_core.cli.output import out, out_json, showing, table
from connector_core.db.history import RUN_COUNTS


def _short(stamp: str | None) -> str:
    """``2026-12-02T07:00:36.204306Z`` as ``2026-12-02 07:00:36`` (UTC), for tables."""
    return "" if not stamp else stamp.replace("T", " ")[:19]


def add_run_history_commands(group: click.Group) -> None:
    """``runs list|show``."""

    @group.group("runs")
    def runs() -> None:
        """The history of syncs and pushes: when, what they did, how they ended."""

    @runs.command("list")
    @store_option()
    @click.option("--kind", type=click.Choice(["sync", "push"]), help="Only syncs or only pushes.")
    @click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
    @click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many (to page on).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def runs_list(app: App, store: str | None, kind: str | None, limit: int, offset: int, as_json: bool) -> None:
        """List syncs and pushes, newest first."""
        page = app.book.list_runs(store=check_store(app, store), kind=kind, limit=limit, offset=offset)
        if as_json:
            out_json([attrs.asdict(r) for r in page.rows])
            showing(page.showing("runs"), as_json=True)
            return
        if page.rows:
            table(
                None,
                [
                    "id",
                    "kind",
                    "store",
                    "state",
                    "started",
                    "ended",
                    "fetched",
                    "stored",
                    "rejected",
                    "accepted",
                    "pushed",
                    "deferred",
                    "errors",
                ],
                [
                    (
                        r.id,
                        r.kind,
                        r.store,
                        r.state,
                        _short(r.started_at),
                        _short(r.ended_at),
                        r.fetched,
                        r.stored,
                        r.rejected,
                        r.accepted,
                        r.pushed,
                        r.deferred,
                        r.errors,
                    )
                    for r in page.rows
                ],
                keep=("id", "store"),
            )
        showing(page.showing("runs"))

    @runs.command("show")
    @click.argument("run_id", metavar="ID", type=int)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def runs_show(app: App, run_id: int, as_json: bool) -> None:
        """Show one sync or push."""
        r = app.book.get_run(run_id)
        if as_json:
            out_json(attrs.asdict(r))
            return
        out(f"{r.kind} #{r.id} of {r.store}{' (sites ' + r.sites + ')' if r.sites else ''}: {r.state}")
        out(f"  started: {r.started_at}")
        out(f"  ended:   {r.ended_at or '(still running, or the process died)'}")
        for name in RUN_COUNTS:
            out(f"  {name + ':':9} {getattr(r, name)}")
        if r.error:
            out(f"  error:   {r.error}")
        if r.kind == "sync":
            out(f"  cursor:  {json.dumps(r.cursor)}")


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_run_history_commands(cli)

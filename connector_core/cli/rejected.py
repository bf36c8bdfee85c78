"""``connector-host rejected list|show|retry``: the quarantine."""

from __future__ import annotations

import json
from typing import Any

import attrs
import click

from connector_core import hookimpl
from connector_core.cli.app import App, check_store, parse_when, pass_app, store_option
from connector_core.cli.output import out, out_json, showing, table
from connector_core.db.rows import RejectedRow
from connector_core.errors import ConfigError


def _payload(r: RejectedRow) -> Any:
    """The quarantined payload as the object it is (a JSON document), else its text as it came."""
    if r.payload is None:
        return None
    try:
        return json.loads(r.payload)
    except ValueError:
        return r.payload


def add_rejected_commands(group: click.Group) -> None:
    """``rejected list|show|retry``."""

    @group.group("rejected")
    def rejected() -> None:
        """Payloads quarantined during sync, with their reason."""

    @rejected.command("list")
    @store_option()
    @click.option("--since", metavar="DATE", help="Quarantined on or after (YYYY-MM-DD[THH:MM], UTC).")
    @click.option("--until", metavar="DATE", help="Quarantined before (YYYY-MM-DD[THH:MM], UTC).")
    @click.option("--search", metavar="TEXT", help="A part of the order key, the reason or the payload.")
    @click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
    @click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many (to page on).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def rejected_list(
        app: App,
        store: str | None,
        since: str | None,
        until: str | None,
        search: str | None,
        limit: int,
        offset: int,
        as_json: bool,
    ) -> None:
        """List quarantined payloads, newest first."""
        page = app.book.page_rejected(
            store=check_store(app, store),
            since=parse_when(since, "--since"),
            until=parse_when(until, "--until"),
            search=search,
            limit=limit,
            offset=offset,
        )
        if as_json:
            out_json([{k: v for k, v in attrs.asdict(r).items() if k != "payload"} for r in page.rows])
            showing(page.showing("rejected payloads"), as_json=True)
            return
        if page.rows:
            table(
                None,
                ["id", "store", "order key", "stage", "path", "reason", "when"],
                [(r.id, r.store, r.order_key, r.stage, r.path, r.reason, r.created_at) for r in page.rows],
                keep=("id", "order key"),
            )
        showing(page.showing("rejected payloads"))

    @rejected.command("show")
    @click.argument("reject_id", metavar="ID", type=int)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def rejected_show(app: App, reject_id: int, as_json: bool) -> None:
        """Show one quarantined payload with its reason."""
        r = app.book.get_rejected(reject_id)
        if as_json:
            out_json({**attrs.asdict(r), "payload": _payload(r)})
            return
        out(f"rejected #{r.id} ({r.store}, order {r.order_key or '?'}), {r.created_at}")
        out(f"  stage:  {r.stage}")
        out(f"  path:   {r.path or '-'}")
        out(f"  reason: {r.reason}")
        out("  payload:")
        out(r.payload or "")

    @rejected.command("retry")
    @click.argument("reject_ids", metavar="ID...", type=int, nargs=-1)
    @click.option("--all", "retry_all", is_flag=True, help="Every payload not yet retried (of --store, if given).")
    @store_option("With --all: only this store.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def rejected_retry(
        app: App, reject_ids: tuple[int, ...], retry_all: bool, store: str | None, as_json: bool
    ) -> None:
        """Re-validate and re-map quarantined payloads with the current plugin; import those that pass."""
        ids = list(reject_ids)
        check_store(app, store)
        if retry_all:
            ids += [r.id for r in app.book.list_rejected(store=store) if r.retried_at is None and r.id not in ids]
        if not ids:
            raise ConfigError("name the payloads to retry (IDs from `rejected list`), or pass --all")
        engine = app.engine
        outcomes = [engine.retry_rejected(i) for i in ids]
        if as_json:
            out_json([attrs.asdict(o) for o in outcomes])
        else:
            for o in outcomes:
                where = f" at {o.path}" if o.path else ""
                why = f": {o.reason}{where}" if o.reason else ""
                out(f"#{o.reject_id} {o.order_key or '?'}: {o.state}{why}")


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_rejected_commands(cli)

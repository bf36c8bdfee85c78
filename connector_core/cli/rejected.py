"""``connector-host rejected list|show|retry``: the quarantine."""

from __future__ import annotations

import attrs
import click

from connector_core import hookimpl
from connector_core.cli.app import App, pass_app
from connector_core.cli.output import out, out_json, table
from connector_core.errors import ConfigError


def add_rejected_commands(group: click.Group) -> None:
    """``rejected list|show|retry``."""

    @group.group("rejected")
    def rejected() -> None:
        """Payloads quarantined during sync, with their reason."""

    @rejected.command("list")
    @click.option("--store", help="Only this store.")
    @click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def rejected_list(app: App, store: str | None, limit: int, as_json: bool) -> None:
        """List quarantined payloads, newest first."""
        rows = app.book.list_rejected(store=store, limit=limit)
        if as_json:
            out_json([{k: v for k, v in attrs.asdict(r).items() if k != "payload"} for r in rows])
            return
        if not rows:
            out("no rejected payloads")
            return
        table(
            None,
            ["id", "store", "order key", "stage", "path", "reason", "when"],
            [(r.id, r.store, r.order_key, r.stage, r.path, r.reason, r.created_at) for r in rows],
        )

    @rejected.command("show")
    @click.argument("reject_id", metavar="ID", type=int)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def rejected_show(app: App, reject_id: int, as_json: bool) -> None:
        """Show one quarantined payload with its reason."""
        r = app.book.get_rejected(reject_id)
        if as_json:
            out_json(attrs.asdict(r))
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
    @click.option("--store", help="With --all: only this store.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def rejected_retry(
        app: App, reject_ids: tuple[int, ...], retry_all: bool, store: str | None, as_json: bool
    ) -> None:
        """Re-validate and re-map quarantined payloads with the current plugin; import those that pass."""
        ids = list(reject_ids)
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

"""``connector-host plugins``: installed marketplaces, versions and capability tables."""

from __future__ import annotations

import click

from connector_core import hookimpl
from connector_core.cli.app import App, pass_app
from connector_core.cli.output import out, out_json, table
from connector_core.models import to_json


def add_plugin_commands(group: click.Group) -> None:
    """``plugins``: installed marketplaces, versions and capability tables."""

    @group.command("plugins")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_app
    def plugins(app: App, as_json: bool) -> None:
        """List installed marketplace plugins and what each supports."""
        infos = app.host.marketplaces()
        if as_json:
            out_json(
                [
                    {
                        "name": i.name,
                        "version": i.version,
                        "title": i.title,
                        "description": i.description,
                        "settings_schema": i.settings_schema,
                        "capabilities": [to_json(c) for c in i.capabilities],
                        "statuses": i.statuses,
                    }
                    for i in infos.values()
                ]
            )
            return
        if not infos:
            out("no marketplace plugins installed")
            return
        table(
            "Marketplace plugins", ["name", "version", "title"], [(i.name, i.version, i.title) for i in infos.values()]
        )
        for info in infos.values():
            if info.capabilities:
                table(
                    f"{info.name} capabilities",
                    ["feature", "support", "note"],
                    [(c.feature, c.support.value, c.note) for c in info.capabilities],
                )


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add these commands to the ``connector-host`` group."""
    add_plugin_commands(cli)

"""Output helpers of the command line: every line printed goes through secret redaction.

A :class:`UserError` is one line ``error: ...`` on stderr and exit status 1.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from connector_core.secrets import redact, redact_obj


class UserError(click.ClickException):
    """A failure the user can fix: one line on stderr, exit status 1, no traceback."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {redact(self.format_message())}", err=True)


def out(text: str = "", *, err: bool = False) -> None:
    """Print one line, secrets redacted."""
    click.echo(redact(text), err=err)


def out_json(value: Any) -> None:
    """Print a JSON document, secrets redacted."""
    click.echo(redact(json.dumps(redact_obj(value), indent=2, ensure_ascii=False, default=str)))


def console() -> Console:
    """A rich console on the current stdout (wide when not a terminal, so tables are not cut)."""
    stream = sys.stdout
    tty = stream.isatty()
    return Console(file=stream, width=None if tty else 200, no_color=not tty, highlight=False)


def terminal_width() -> int:
    """Columns of the terminal (200 when output is not a terminal)."""
    return shutil.get_terminal_size((200, 24)).columns if sys.stdout.isatty() else 200


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a rich table; every cell is plain text with secrets redacted."""
    t = Table(title=title, title_justify="left")
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*(Text(redact("" if v is None else str(v))) for v in row))
    console().print(t)

"""Output helpers of the command line: every line printed goes through secret redaction.

A :class:`UserError` is one line ``error: ...`` on stderr and exit status 1.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
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


def _columns_env() -> int | None:
    try:
        value = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def console() -> Console:
    """A rich console on the current stdout: the terminal's width, else ``$COLUMNS``, else 200 (tables not cut)."""
    stream = sys.stdout
    tty = stream.isatty()
    width = None if tty else (_columns_env() or 200)
    return Console(file=stream, width=width, no_color=not tty, highlight=False)


def terminal_width() -> int:
    """Columns of the terminal (``$COLUMNS``, else 200 when output is not a terminal)."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size((200, 24)).columns
    return _columns_env() or 200


_MIN_OTHER = 8
"""Narrowest a wrapping column is allowed to get before it is dropped."""


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    keep: Sequence[str] = (),
) -> None:
    """Print a rich table; every cell is plain text with secrets redacted.

    Columns named in ``keep`` (order keys, ids) are never cut or wrapped: when
    the terminal is too narrow the other columns wrap, and then the
    right-most of them are left out (a note says which), never a key.
    """
    cells = [[redact("" if v is None else str(v)) for v in row] for row in rows]
    longest = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    shown = list(range(len(columns)))
    width = console().width

    def needed(indexes: list[int]) -> int:
        total = 1 + 3 * len(indexes)  # borders and padding
        for i in indexes:
            total += longest[i] if columns[i] in keep else min(longest[i], _MIN_OTHER)
        return total

    hidden: list[str] = []
    while needed(shown) > width:
        droppable = [i for i in shown if columns[i] not in keep]
        if not droppable:
            break
        shown.remove(droppable[-1])
        hidden.insert(0, columns[droppable[-1]])
    t = Table(title=title, title_justify="left")
    for i in shown:
        if columns[i] in keep:
            t.add_column(columns[i], no_wrap=True, min_width=longest[i], overflow="fold")
        else:
            t.add_column(columns[i], overflow="fold")
    for row in cells:
        t.add_row(*(Text(row[i]) for i in shown))
    console().print(t)
    if hidden:
        note = f"(left out to fit {width} columns: {', '.join(hidden)}; --json shows everything)"
        for line in textwrap.wrap(note, width=max(width, 20)):
            out(line)


def showing(text: str, *, as_json: bool = False) -> None:
    """Say how much of a listing was shown ("showing 1-100 of 19,209 orders"); not under ``--json``,
    whose output is the JSON document alone."""
    if not as_json:
        out(text)

"""Secrets that never travel in argv: ``--secret KEY`` (prompt or stdin) and ``--set-from-env KEY=VAR``.

A command line is visible to every user of the machine (``ps``,
``/proc/PID/cmdline``) and lands in shell history, so a secret given as
``--set partner_id=...`` leaks. These options take the value from a hidden
prompt (on a terminal), one line of stdin (otherwise), or an environment
variable; a settings file (``--settings FILE``) works too. A secret setting
given with ``--set`` still works, with a warning that says which of these to
use instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from connector_core.errors import SettingsError
from connector_core.secrets import secret_paths
from connector_core.settings_input import split_assignment


def secret_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--secret KEY`` and ``--set-from-env KEY=ENVVAR`` to ``command``."""
    command = click.option(
        "--set-from-env",
        "env_pairs",
        multiple=True,
        metavar="KEY=ENVVAR",
        help="A setting read from an environment variable (keeps secrets out of argv); repeat.",
    )(command)
    return click.option(
        "--secret",
        "secret_keys",
        multiple=True,
        metavar="KEY",
        help="A setting typed at a hidden prompt, or read as one line of stdin when not on a terminal; repeat.",
    )(command)


def _secret_keys(schema: Mapping[str, Any]) -> set[str]:
    return {".".join(path) for path in secret_paths(schema)}


def warn_secrets_in_argv(schema: Mapping[str, Any], pairs: Sequence[str], *, flag: str = "--set") -> None:
    """Warn on stderr for each secret setting given in ``pairs`` (visible in ``ps`` and shell history)."""
    secret = _secret_keys(schema)
    for pair in pairs:
        key = pair.partition("=")[0].strip()
        if key in secret:
            click.echo(
                f"warning: {key} given with {flag} is visible to every user in `ps` and stays in your shell "
                f"history; use --secret {key} (prompt or stdin), --set-from-env {key}=VAR or --settings FILE",
                err=True,
            )


def gathered(
    schema: Mapping[str, Any], pairs: Sequence[str], secret_keys: Sequence[str], env_pairs: Sequence[str]
) -> list[str]:
    """``pairs`` followed by ``KEY=VALUE`` for each ``--secret`` and ``--set-from-env`` (never echoed)."""
    warn_secrets_in_argv(schema, pairs)
    out = list(pairs)
    for assignment in env_pairs:
        key, var = split_assignment(assignment, "partner_id=SPARTOO_PARTNER_ID")
        value = os.environ.get(var.strip())
        if value is None:
            raise SettingsError(f"--set-from-env {key}={var}: the environment variable {var} is not set")
        out.append(f"{key}={value}")
    for key in secret_keys:
        out.append(f"{key}={_read_secret(key)}")
    return out


def _read_secret(key: str) -> str:
    if sys.stdin.isatty():
        value = click.prompt(key, hide_input=True, err=True)
    else:
        line = sys.stdin.readline()
        if not line:
            raise SettingsError(f"--secret {key}: nothing on stdin; pipe the value in or run on a terminal")
        value = line.rstrip("\r\n")
    if not value.strip():
        raise SettingsError(f"--secret {key}: the value is empty")
    return str(value)

"""Helpers of the operator CLI tests (a module of its own: ``conftest`` is a name every test folder uses)."""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import Result

Run = Callable[..., Result]
"""Runs one ``connector-host`` command on the test's order book: ``run(*args, code=0, env=None)``."""


def listed(run: Run, *args: str) -> list[dict[str, object]]:
    """A listing's ``--json`` output."""
    doc = json.loads(run(*args, "--json").stdout)
    assert isinstance(doc, list)
    return doc

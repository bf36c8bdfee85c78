"""The Spartoo JSON Schemas, read from the package's data files.

They live inside the package, ``connector_spartoo/schemas/*.schema.json``, so
an editable install, a wheel and a zipped install all read them the same way,
through :mod:`importlib.resources`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from connector_core.errors import ConfigError

SCHEMA_NAMES = ("order", "settings")


def schema_file(name: str) -> Traversable:
    """The packaged file of the schema ``name`` (``order`` or ``settings``)."""
    if name not in SCHEMA_NAMES:
        raise ConfigError(f"no Spartoo JSON Schema named {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    return resources.files("connector_spartoo").joinpath("schemas", f"{name}.schema.json")


@cache
def _load(name: str) -> str:
    path = schema_file(name)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"the Spartoo JSON Schema {name}.schema.json is missing from connector_spartoo: reinstall connector-spartoo"
        ) from None


def load_schema(name: str) -> dict[str, Any]:
    """A fresh copy of the schema ``name`` (``order`` or ``settings``)."""
    data: dict[str, Any] = json.loads(_load(name))
    return data

"""The Spartoo JSON Schemas, read from package data (wheel) or the checkout.

A wheel ships them as ``connector_spartoo/_schemas/spartoo/``; in a source
checkout they live in ``<repo>/schemas/spartoo/``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from connector_core.errors import ConfigError


def schema_dir() -> Path:
    """Folder holding ``order.schema.json`` and ``settings.schema.json``."""
    packaged = resources.files("connector_spartoo") / "_schemas" / "spartoo"
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[3] / "schemas" / "spartoo"
    if checkout.is_dir():
        return checkout
    raise ConfigError("the Spartoo JSON Schemas are missing: reinstall connector-spartoo")


@cache
def _load(name: str) -> str:
    return (schema_dir() / f"{name}.schema.json").read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """A fresh copy of the schema ``name`` (``order`` or ``settings``)."""
    data: dict[str, Any] = json.loads(_load(name))
    return data

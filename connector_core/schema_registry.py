"""JSON Schemas, loaded once from package data and compiled once.

Canonical schemas live in ``schemas/canonical/`` of a checkout and are
shipped inside the wheel as ``connector_core/_schemas/canonical/``. Plugins
register their own (raw payload, settings) with :meth:`SchemaRegistry.add`.
Each schema gets one compiled validator, reused for every document: never
``jsonschema.validate()`` in a loop.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from connector_core.errors import ConfigError, ValidationError

CANONICAL = ("order", "shipment", "push_result", "store_settings")


def schema_root() -> Path:
    """Folder holding ``canonical/`` (and plugin folders) of JSON Schemas."""
    packaged = resources.files("connector_core") / "_schemas"
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / "schemas"
    if checkout.is_dir():
        return checkout
    raise ConfigError("the canonical JSON Schemas are missing: reinstall connector-core")


def load_schema_file(path: Path | Any) -> dict[str, Any]:
    """Read one schema file (a path or an importlib resource)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def json_path(parts: Any) -> str:
    """``['items', 0, 'sku']`` -> ``$.items[0].sku``."""
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


class SchemaRegistry:
    """Named schemas and their compiled validators."""

    def __init__(self) -> None:
        self._schemas: dict[str, dict[str, Any]] = {}
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        self._fast: dict[str, Callable[[Any], bool]] = {}
        self._registry: Registry = Registry()
        self._lock = threading.Lock()

    def add(self, name: str, schema: Mapping[str, Any]) -> None:
        """Register ``schema`` under ``name`` (replacing any earlier one)."""
        schema = dict(schema)
        jsonschema.Draft202012Validator.check_schema(schema)
        with self._lock:
            self._schemas[name] = schema
            if "$id" in schema:
                self._registry = self._registry.with_resource(
                    schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012)
                )
            self._validators.clear()
            self._fast.clear()

    def names(self) -> list[str]:
        """Every registered schema name."""
        return sorted(self._schemas)

    def schema(self, name: str) -> dict[str, Any]:
        """The schema registered as ``name``."""
        try:
            return self._schemas[name]
        except KeyError:
            raise ConfigError(f"no JSON Schema named {name!r}; known: {', '.join(self.names())}") from None

    def validator(self, name: str) -> jsonschema.protocols.Validator:
        """The compiled ``jsonschema`` validator for ``name`` (built once)."""
        v = self._validators.get(name)
        if v is None:
            with self._lock:
                v = self._validators.get(name)
                if v is None:
                    v = jsonschema.Draft202012Validator(self.schema(name), registry=self._registry)
                    self._validators[name] = v
        return v

    def is_valid(self, name: str, document: Any) -> bool:
        """Fast yes/no check (no error details)."""
        fast = self._fast.get(name)
        if fast is None:
            fast = self.validator(name).is_valid
            self._fast[name] = fast
        return fast(document)

    def validate(self, name: str, document: Any, **context: Any) -> None:
        """Raise :class:`ValidationError` (with JSON path) if ``document`` fails ``name``."""
        if self.is_valid(name, document):
            return
        error = best_match(self.validator(name).iter_errors(document))
        if error is None:  # pragma: no cover - is_valid and iter_errors disagree
            return
        path = json_path(error.absolute_path)
        raise ValidationError(f"{name}: {path}: {error.message}", path=path, schema_id=name, **context)


@cache
def canonical_registry() -> SchemaRegistry:
    """The process-wide registry holding the canonical schemas."""
    reg = SchemaRegistry()
    root = schema_root() / "canonical"
    common = load_schema_file(root / "common.schema.json")
    reg.add("canonical/common", common)
    for name in CANONICAL:
        reg.add(f"canonical/{name}", load_schema_file(root / f"{name}.schema.json"))
    return reg

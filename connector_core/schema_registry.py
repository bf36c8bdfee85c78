"""JSON Schemas, loaded once from package data and compiled once.

Canonical schemas live in ``schemas/canonical/`` of a checkout and are
shipped inside the wheel as ``connector_core/_schemas/canonical/``. Plugins
register their own (raw payload, settings) with :meth:`SchemaRegistry.add`.
Each schema gets one compiled validator, reused for every document: never
``jsonschema.validate()`` in a loop.
"""

from __future__ import annotations

import json
import os
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

CANONICAL = ("order", "shipment", "push_result", "store_settings", "host_settings")


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


BACKENDS = ("jsonschema-rs", "fastjsonschema", "jsonschema")
"""Yes/no validators the registry can use on the hot path, fastest first."""

BACKEND_ENV = "CONNECTOR_HOST_VALIDATOR"
"""Environment variable naming the preferred backend (default: the fastest installed)."""


def available_backends() -> list[str]:
    """The backends importable here, fastest first (``jsonschema`` always is)."""
    found = []
    for name, module in (("jsonschema-rs", "jsonschema_rs"), ("fastjsonschema", "fastjsonschema")):
        try:
            __import__(module)
        except ImportError:
            continue
        found.append(name)
    found.append("jsonschema")
    return found


def _unknown_resource(uri: str) -> Any:
    raise ConfigError(f"JSON Schema reference {uri!r} is not registered: add that schema (with its $id) first")


class SchemaRegistry:
    """Named schemas and their compiled validators.

    Two validators per schema, each compiled once and reused:

    * a fast yes/no validator for the hot path (:meth:`is_valid`), from the
      backend in :attr:`backend`: ``jsonschema-rs`` when installed, else
      ``fastjsonschema``, else ``jsonschema`` itself;
    * the ``jsonschema`` validator (:meth:`validator`), which has the last word.

    A document the fast validator accepts is valid. A document it rejects (or
    cannot handle, e.g. a dict with non-string keys) is re-checked by
    ``jsonschema``, whose verdict and error message win: the fast validators
    are stricter than ``jsonschema`` in a few corners (``$`` before a final
    newline, Unicode ``\\d``, infinite numbers), never laxer on JSON
    documents (dicts, lists, strings, numbers, booleans, ``None``). The one
    known laxity is on non-JSON Python values: a tuple counts as an array for
    the fast backends, not for ``jsonschema``.

    Cross-file ``$ref`` (``common.schema.json#/$defs/money``) resolve against
    the schemas added with an ``$id``; nothing is ever fetched from the network.
    """

    def __init__(self, backend: str | None = None) -> None:
        preferred = backend or os.environ.get(BACKEND_ENV) or available_backends()[0]
        if preferred not in BACKENDS:
            raise ConfigError(f"unknown validator backend {preferred!r}; choose one of {', '.join(BACKENDS)}")
        if preferred not in available_backends():
            raise ConfigError(f"validator backend {preferred!r} is not installed: pip install {preferred}")
        self._backend = preferred
        self._schemas: dict[str, dict[str, Any]] = {}
        self._by_id: dict[str, dict[str, Any]] = {}
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        self._fast: dict[str, tuple[str, Callable[[Any], bool]]] = {}
        self._registry: Registry = Registry()
        self._lock = threading.RLock()

    @property
    def backend(self) -> str:
        """The yes/no validator backend used on the hot path (see :data:`BACKENDS`)."""
        return self._backend

    def backend_for(self, name: str) -> str:
        """The backend actually compiled for ``name`` (a schema a backend cannot compile falls back)."""
        return self._fast_validator(name)[0]

    def add(self, name: str, schema: Mapping[str, Any]) -> None:
        """Register ``schema`` under ``name`` (replacing any earlier one)."""
        schema = dict(schema)
        jsonschema.Draft202012Validator.check_schema(schema)
        with self._lock:
            self._schemas[name] = schema
            if "$id" in schema:
                self._by_id[schema["$id"]] = schema
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

    def _compile(self, backend: str, schema: dict[str, Any]) -> Callable[[Any], bool]:
        if backend == "jsonschema-rs":
            import jsonschema_rs

            resources = [(uri, s) for uri, s in self._by_id.items() if s is not schema]
            rs = jsonschema_rs.validator_for(
                schema,
                registry=jsonschema_rs.Registry(resources) if resources else None,
                retriever=_unknown_resource,
            )
            rs_is_valid: Callable[[Any], bool] = rs.is_valid
            return rs_is_valid
        if backend == "fastjsonschema":
            import fastjsonschema

            handlers = {scheme: self._resolve_id for scheme in ("http", "https", "urn", "file")}
            compiled = fastjsonschema.compile(schema, handlers=handlers, use_formats=False)
            invalid = fastjsonschema.JsonSchemaException

            def fast_is_valid(document: Any) -> bool:
                try:
                    compiled(document)
                except invalid:
                    return False
                return True

            return fast_is_valid
        js_is_valid: Callable[[Any], bool] = self.validator_for_schema(schema).is_valid
        return js_is_valid

    def _resolve_id(self, uri: str) -> dict[str, Any]:
        try:
            return self._by_id[uri]
        except KeyError:
            return _unknown_resource(uri)  # type: ignore[no-any-return]

    def validator_for_schema(self, schema: dict[str, Any]) -> jsonschema.protocols.Validator:
        """A ``jsonschema`` validator for an unnamed ``schema``, resolving refs in this registry."""
        return jsonschema.Draft202012Validator(schema, registry=self._registry)

    def _fast_validator(self, name: str) -> tuple[str, Callable[[Any], bool]]:
        fast = self._fast.get(name)
        if fast is not None:
            return fast
        with self._lock:
            fast = self._fast.get(name)
            if fast is None:
                schema = self.schema(name)
                chain = BACKENDS[BACKENDS.index(self._backend) :]
                for backend in chain:
                    if backend == "jsonschema":
                        fast = (backend, self.validator(name).is_valid)
                        break
                    try:
                        fast = (backend, self._compile(backend, schema))
                        break
                    except Exception:  # a backend that cannot compile this schema: try the next
                        continue
                assert fast is not None
                self._fast[name] = fast
        return fast

    def _fast_accepts(self, name: str, document: Any) -> bool:
        try:
            return self._fast_validator(name)[1](document)
        except Exception:  # the fast backend cannot handle this value: jsonschema decides
            return False

    def is_valid(self, name: str, document: Any) -> bool:
        """Fast yes/no check (no error details), with ``jsonschema``'s verdict."""
        if self._fast_accepts(name, document):
            return True
        return bool(self.validator(name).is_valid(document))

    def validate(self, name: str, document: Any, **context: Any) -> None:
        """Raise :class:`ValidationError` (with JSON path) if ``document`` fails ``name``."""
        if self._fast_accepts(name, document):
            return
        error = best_match(self.validator(name).iter_errors(document))
        if error is None:  # the fast backend was stricter than jsonschema: jsonschema wins
            return
        path = json_path(error.absolute_path)
        raise ValidationError(f"{name}: {path}: {_message(error)}", path=path, schema_id=name, **context)


def _message(error: Any) -> str:
    """The error in words: a failed ``pattern`` says what is expected (the schema's ``x-expected``), never the regex."""
    if error.validator == "pattern" and isinstance(error.schema, dict):
        expected = error.schema.get("x-expected") or error.schema.get("description") or "in the expected form"
        return f"{error.instance!r} is not {expected}"
    return str(error.message)


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

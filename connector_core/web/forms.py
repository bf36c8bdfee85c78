"""HTML forms generated from JSON Schemas, and submitted forms typed back by the same schema.

A plugin's settings schema (and the host settings schema) describe every
field: its type, title, description, default, ``enum`` and whether it is a
secret (``"x-secret": true``). :func:`fields_for` turns such a schema into
:class:`Field` values the templates render: text, number, checkbox, select
(an ``enum``), multi-select (an array of an ``enum``), password (a secret).
:func:`parse_form` reads a submitted form back into typed JSON values.

Secrets are never echoed back: a password input is always rendered empty, and
an empty secret field on an existing store keeps the stored value.

No library generates forms from JSON Schema for server-rendered Jinja pages
without a front-end build (the known ones render React or JSON Forms in the
browser), so this module is a small mapping of our own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
from starlette.datastructures import ImmutableMultiDict

from connector_core.secrets import SECRET_KEYWORD

FormData = ImmutableMultiDict[str, Any]
"""A submitted form (Starlette's ``FormData``)."""


@attrs.frozen
class Field:
    """One input of a generated form."""

    name: str
    label: str
    kind: str  # text | password | integer | number | checkbox | select | multiselect | list
    description: str = ""
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    nullable: bool = False
    value: Any = attrs.field(default=None, repr=False)
    is_set: bool = False  # for secrets: whether a value is stored (shown as "saved, leave empty to keep")

    @property
    def text(self) -> str:
        """The value as the input's text (never a secret's)."""
        if self.kind == "password" or self.value is None:
            return ""
        if isinstance(self.value, list | tuple):
            return ", ".join(str(v) for v in self.value)
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return str(self.value)

    def selected(self, choice: str) -> bool:
        """Whether ``choice`` is among the current values of a select."""
        if isinstance(self.value, list | tuple):
            return choice in [str(v) for v in self.value]
        return self.value is not None and str(self.value) == choice


def _types(prop: Mapping[str, Any]) -> list[str]:
    t = prop.get("type")
    if t is None:
        return []
    return [t] if isinstance(t, str) else list(t)


def _kind(prop: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    if prop.get(SECRET_KEYWORD):
        return "password", ()
    if "enum" in prop:
        return "select", tuple(str(v) for v in prop["enum"] if v is not None)
    types = [t for t in _types(prop) if t != "null"]
    kind = types[0] if types else "string"
    if kind == "array":
        items = prop.get("items", {})
        if isinstance(items, Mapping) and "enum" in items:
            return "multiselect", tuple(str(v) for v in items["enum"])
        return "list", ()
    if kind == "boolean":
        return "checkbox", ()
    if kind in ("integer", "number"):
        return kind, ()
    return "text", ()


def fields_for(schema: Mapping[str, Any], values: Mapping[str, Any] | None = None, *, prefix: str = "") -> list[Field]:
    """The form fields of an object schema's properties, filled with ``values`` (or the defaults)."""
    values = values or {}
    required = set(schema.get("required", ()))
    out: list[Field] = []
    for name, prop in schema.get("properties", {}).items():
        if not isinstance(prop, Mapping):
            continue
        kind, choices = _kind(prop)
        if kind == "text" and "object" in _types(prop):
            continue  # nested objects are rendered as their own fieldset by the caller
        value = values.get(name, prop.get("default"))
        out.append(
            Field(
                name=prefix + name,
                label=str(prop.get("title") or name.replace("_", " ").capitalize()),
                kind=kind,
                description=str(prop.get("description") or ""),
                required=name in required,
                default=prop.get("default"),
                choices=choices,
                nullable="null" in _types(prop) or (kind == "select" and None in prop.get("enum", ())),
                value=None if kind == "password" else value,
                is_set=kind == "password" and bool(values.get(name)),
            )
        )
    return out


class FormErrors(Exception):
    """Fields whose submitted text does not fit the schema: ``{field name: what to fix}``."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


def _number(text: str, kind: str) -> int | float:
    if kind == "integer":
        return int(text)
    number = Decimal(text)
    if not number.is_finite():
        raise ValueError(text)
    return int(number) if number == number.to_integral_value() and "." not in text else float(number)


def parse_form(
    fields: Sequence[Field], form: FormData, *, keep: Mapping[str, Any] | None = None, sparse: bool = False
) -> dict[str, Any]:
    """Type the submitted values of ``fields``; :class:`FormErrors` names each field to fix.

    ``keep`` holds the stored values: an empty secret keeps its stored value.
    With ``sparse``, empty optional fields are left out (the schema's default
    applies) instead of being sent as ``None``.
    """
    keep = keep or {}
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in fields:
        key = field.name.rsplit(".", 1)[-1]
        if field.kind == "checkbox":
            out[key] = form.get(field.name) in ("on", "true", "1", "yes")
            continue
        if field.kind == "multiselect":
            picked = [str(v) for v in form.getlist(field.name)]
            bad = [v for v in picked if v not in field.choices]
            if bad:
                errors[field.name] = f"pick from {', '.join(field.choices)}"
            elif picked:
                out[key] = picked
            elif field.required:
                errors[field.name] = "pick at least one"
            continue
        text = str(form.get(field.name) or "").strip()
        if not text:
            if field.kind == "password" and key in keep:
                out[key] = keep[key]
            elif field.required:
                errors[field.name] = "this field is required"
            elif not sparse:
                out[key] = None
            continue
        if field.kind == "select":
            if text not in field.choices:
                errors[field.name] = f"pick one of {', '.join(field.choices)}"
            else:
                out[key] = text
        elif field.kind in ("integer", "number"):
            try:
                out[key] = _number(text, field.kind)
            except (ValueError, InvalidOperation):
                errors[field.name] = "enter a whole number" if field.kind == "integer" else "enter a number"
        elif field.kind == "list":
            out[key] = [part.strip() for part in text.split(",") if part.strip()]
        else:
            out[key] = text
    if errors:
        raise FormErrors(errors)
    return out


def nested_schemas(schema: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The object-typed properties of ``schema`` (the fieldsets of the host settings form)."""
    return [
        (name, dict(prop))
        for name, prop in schema.get("properties", {}).items()
        if isinstance(prop, Mapping) and "object" in _types(prop)
    ]

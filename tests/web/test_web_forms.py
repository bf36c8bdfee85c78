"""Forms generated from JSON Schemas and submissions typed back."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData

from connector_core.web.forms import FormErrors, fields_for, parse_form

SCHEMA = {
    "type": "object",
    "required": ["token"],
    "properties": {
        "token": {"type": "string", "x-secret": True, "title": "API token"},
        "region": {"enum": ["eu", "us"], "default": "eu"},
        "sites": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "default": ["a"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "limit": {"type": "integer", "default": 5},
        "ratio": {"type": "number"},
        "live": {"type": "boolean", "default": True},
        "note": {"type": ["string", "null"]},
        "nested": {"type": "object", "properties": {}},
    },
}


def test_fields_take_their_kind_from_the_schema() -> None:
    """Secrets are passwords, enums selects, arrays of enums multi-selects, objects left to fieldsets."""
    kinds = {f.name: f.kind for f in fields_for(SCHEMA)}
    assert kinds == {
        "token": "password",
        "region": "select",
        "sites": "multiselect",
        "tags": "list",
        "limit": "integer",
        "ratio": "number",
        "live": "checkbox",
        "note": "text",
    }


def test_a_secret_is_never_given_to_the_template() -> None:
    """A stored secret is known to be set, but its field's value and text stay empty."""
    token = next(f for f in fields_for(SCHEMA, {"token": "sk-very-secret"}) if f.name == "token")
    assert token.is_set is True
    assert token.value is None and token.text == ""
    assert "sk-very-secret" not in repr(token)


def test_submitted_values_are_typed() -> None:
    """Numbers, booleans, lists and selects come back as JSON values."""
    form = FormData(
        [
            ("token", "sk-1"),
            ("region", "us"),
            ("sites", "a"),
            ("sites", "c"),
            ("tags", "x, y,,z"),
            ("limit", "12"),
            ("ratio", "0.25"),
            ("note", ""),
        ]
    )
    values = parse_form(fields_for(SCHEMA), form)
    assert values == {
        "token": "sk-1",
        "region": "us",
        "sites": ["a", "c"],
        "tags": ["x", "y", "z"],
        "limit": 12,
        "ratio": 0.25,
        "live": False,
        "note": None,
    }


def test_sparse_leaves_empty_optional_fields_out() -> None:
    """With sparse=True an empty optional field is absent, so the schema default applies."""
    values = parse_form(fields_for(SCHEMA), FormData([("token", "t"), ("limit", "")]), sparse=True)
    assert "limit" not in values and "note" not in values


def test_an_empty_secret_keeps_the_stored_one() -> None:
    """Leaving the password input empty keeps the saved secret."""
    values = parse_form(fields_for(SCHEMA), FormData([("region", "eu")]), keep={"token": "sk-old"})
    assert values["token"] == "sk-old"


def test_errors_name_each_field_to_fix() -> None:
    """A missing required field, text in a number and an unknown choice are each reported."""
    form = FormData([("limit", "many"), ("region", "mars"), ("sites", "z")])
    with pytest.raises(FormErrors) as caught:
        parse_form(fields_for(SCHEMA), form)
    assert caught.value.errors == {
        "token": "this field is required",
        "limit": "enter a whole number",
        "region": "pick one of eu, us",
        "sites": "pick from a, b, c",
    }


def test_prefixed_fields_read_their_own_inputs() -> None:
    """Fields of a fieldset (prefix branding.) read branding.X inputs and return plain keys."""
    schema = {"type": "object", "properties": {"display_name": {"type": ["string", "null"]}}}
    fields = fields_for(schema, prefix="branding.")
    assert fields[0].name == "branding.display_name"
    assert parse_form(fields, FormData([("branding.display_name", "Shop")])) == {"display_name": "Shop"}

"""Host-side store settings: defaults, validation, dotted --set typed by the schema, secret masking."""

from __future__ import annotations

import pytest

from connector_core import host_settings
from connector_core.errors import SettingsError
from connector_core.schema_registry import canonical_registry
from connector_core.secrets import MASK, redact


def test_empty_settings_get_every_default() -> None:
    """An empty document is valid and takes the schema's defaults."""
    doc = host_settings.validate({})
    assert doc == host_settings.defaults()
    assert doc["branding"]["accent_colour"] == "#1F6FEB"
    assert doc["notifications"]["shipment_confirmation"] is False
    assert doc["smtp"] is None
    loaded = host_settings.load({})
    assert loaded.products.use_catalogue is True
    assert loaded.products.precedence == "order"
    assert loaded.smtp is None


def test_defaults_fill_under_partial_objects() -> None:
    """A partly given object keeps what was given and gets defaults for the rest."""
    doc = host_settings.effective({"smtp": {"host": "mail.example"}, "branding": {"display_name": "Shop"}})
    assert doc["smtp"] == {
        "host": "mail.example",
        "port": 587,
        "starttls": True,
        "user": None,
        "password": None,
        "timeout": 30,
    }
    assert doc["branding"]["display_name"] == "Shop"
    assert doc["branding"]["accent_colour"] == "#1F6FEB"


@pytest.mark.parametrize(
    "assignment,path,value",
    [
        ("notifications.shipment_confirmation=true", ("notifications", "shipment_confirmation"), True),
        ("notifications.copy_to_seller=off", ("notifications", "copy_to_seller"), False),
        ("smtp.port=2525", ("smtp", "port"), 2525),
        ("smtp.timeout=2.5", ("smtp", "timeout"), 2.5),
        ("smtp=null", ("smtp",), None),
        ("branding.logo_url=none", ("branding", "logo_url"), None),
        ("branding.display_name=Chez Ana = Shoes", ("branding", "display_name"), "Chez Ana = Shoes"),
        ("products.precedence=catalogue", ("products", "precedence"), "catalogue"),
    ],
)
def test_dotted_assignment_is_typed_by_the_schema(assignment: str, path: tuple[str, ...], value: object) -> None:
    """`key=value` parses the key path and types the value after the schema (bool, int, number, null, enum)."""
    assert host_settings.parse_assignment(assignment) == (path, value)


def test_apply_assignments_builds_a_sparse_valid_document() -> None:
    """Several --set values apply together, are validated together, and only what was set is stored."""
    stored = host_settings.apply_assignments(
        {"branding": {"display_name": "Shop"}},
        ["notifications.shipment_confirmation=yes", "branding.sender_email=hello@shop.example", "smtp.host=127.0.0.1"],
        store="s1",
    )
    assert stored == {
        "branding": {"display_name": "Shop", "sender_email": "hello@shop.example"},
        "notifications": {"shipment_confirmation": True},
        "smtp": {"host": "127.0.0.1"},
    }


@pytest.mark.parametrize(
    "assignments,needle",
    [
        (["branding.accent_colour=red"], "branding.accent_colour"),
        (["branding.sender_email=not-an-address"], "branding.sender_email"),
        (["notifications.shipment_confirmation=maybe"], "use true or false"),
        (["smtp.port=twenty"], "whole number"),
        (["smtp.host=h", "smtp.port=70000"], "smtp.port"),
        (["products.precedence=newest"], "must be one of order, catalogue"),
        (["branding.colour=#000000"], "unknown store setting 'branding.colour'"),
        (["shipping.speed=1"], "unknown store setting 'shipping'"),
        (["notifications.shipment_confirmation=true"], "branding.sender_email is not set"),
        (["notifications.copy_to_seller=true"], "notifications.seller_email is not set"),
        (["smtp.port=25"], "'host' is a required property"),
        (["novalue"], "key=value"),
    ],
)
def test_bad_settings_are_refused_with_the_key_named(assignments: list[str], needle: str) -> None:
    """Each bad value is refused with a SettingsError naming the key or what to do, and nothing is returned."""
    with pytest.raises(SettingsError) as info:
        host_settings.apply_assignments({}, assignments)
    assert needle in str(info.value)


def test_stored_document_with_unknown_key_is_refused() -> None:
    """A stored document with a key the schema does not know fails validation with its path."""
    with pytest.raises(SettingsError) as info:
        host_settings.validate({"products": {"use_catalog": True}})
    assert info.value.path == "$.products"
    assert "use_catalog" in str(info.value)


def test_secrets_are_masked_for_display_and_redacted_everywhere() -> None:
    """smtp.password shows as *** in masked output, stays out of reprs, and is redacted from any text."""
    stored = {"smtp": {"host": "mail.example", "user": "shop", "password": "Sup3r-secret-pw"}}
    loaded = host_settings.load(stored)
    shown = host_settings.masked(host_settings.effective(stored))
    assert shown["smtp"]["password"] == MASK
    assert shown["smtp"]["user"] == "shop"
    assert stored["smtp"]["password"] == "Sup3r-secret-pw"  # the input is not changed
    assert "Sup3r-secret-pw" not in repr(loaded)
    assert redact("login with Sup3r-secret-pw failed") == "login with *** failed"
    assert host_settings.secret_paths() == [("smtp", "password")]


def test_unset_secret_is_not_masked() -> None:
    """An empty password shows as empty, so the user can see that none is set."""
    shown = host_settings.masked(host_settings.effective({"smtp": {"host": "h"}}))
    assert shown["smtp"]["password"] is None


def test_validator_is_compiled_once() -> None:
    """Validation reuses one compiled validator from the schema registry."""
    host_settings.validate({})
    first = canonical_registry().validator(host_settings.SCHEMA_NAME)
    host_settings.validate({"branding": {"display_name": "x"}})
    assert canonical_registry().validator(host_settings.SCHEMA_NAME) is first

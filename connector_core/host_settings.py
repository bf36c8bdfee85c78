"""A store's host-side settings: branding, notifications, SMTP, product handling, sync schedule.

These settings belong to the host, not to a marketplace plugin: they are the
same for every marketplace and live in the order book's
``stores.store_settings`` JSON column. Their JSON Schema is
``schemas/canonical/host_settings.schema.json`` (registered as
``canonical/host_settings`` and compiled once by the schema registry).

The stored document is *sparse*: only what the user set. :func:`effective`
fills in the schema's defaults; :func:`load` validates and returns typed
:class:`HostSettings`. From the command line, ``--set notifications.shipment_confirmation=true``
is parsed by :func:`parse_assignment`, which types the value after the schema
(:func:`connector_core.settings_input.coerce`). :func:`masked` hides secret
fields (``"x-secret": true``, e.g. ``smtp.password``) for display.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from connector_core import secrets
from connector_core.errors import SettingsError
from connector_core.schema_registry import canonical_registry
from connector_core.settings_input import coerce, split_assignment

SCHEMA_NAME = "canonical/host_settings"


def schema() -> dict[str, Any]:
    """The host settings JSON Schema."""
    return canonical_registry().schema(SCHEMA_NAME)


# -- defaults ----------------------------------------------------------------


def _defaults_of(node: Mapping[str, Any]) -> Any:
    """The default document of a schema node (objects: defaults of their properties)."""
    default = node.get("default")
    types = node.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types)
    if is_object and isinstance(default, dict):
        out = dict(default)
        for name, sub in node.get("properties", {}).items():
            if "default" in sub and name not in out:
                out[name] = _defaults_of(sub)
        return out
    return copy.deepcopy(default)


def defaults() -> dict[str, Any]:
    """The full settings document with every default filled in."""
    return {name: _defaults_of(sub) for name, sub in schema()["properties"].items()}


def _merge(node: Mapping[str, Any], value: Any) -> Any:
    """``value`` with the defaults of schema ``node`` under its missing keys."""
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for name, sub in node.get("properties", {}).items():
        if name in out:
            out[name] = _merge(sub, out[name])
        elif "default" in sub:
            out[name] = _defaults_of(sub)
    return out


def effective(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stored (sparse) settings with the schema's defaults filled in."""
    return _merge(schema(), dict(stored or {}))  # type: ignore[no-any-return]


# -- validation --------------------------------------------------------------


def validate(stored: Mapping[str, Any] | None, *, store: str | None = None) -> dict[str, Any]:
    """Check settings against the schema; return the effective document.

    Raises :class:`SettingsError` naming the dotted key and what to change.
    """
    doc = effective(stored)
    notif = doc.get("notifications") or {}
    branding = doc.get("branding") or {}
    if isinstance(notif, dict) and isinstance(branding, dict):
        if notif.get("shipment_confirmation") is True and not branding.get("sender_email"):
            raise SettingsError(
                "notifications.shipment_confirmation is on but branding.sender_email is not set: "
                "add --set branding.sender_email=shop@example.com",
                store=store,
                path="$.branding.sender_email",
            )
        if notif.get("copy_to_seller") is True and not notif.get("seller_email"):
            raise SettingsError(
                "notifications.copy_to_seller is on but notifications.seller_email is not set: "
                "add --set notifications.seller_email=you@example.com",
                store=store,
                path="$.notifications.seller_email",
            )
    registry = canonical_registry()
    try:
        registry.validate(SCHEMA_NAME, doc)
    except Exception as exc:
        path = getattr(exc, "path", None)
        dotted = (path or "$").removeprefix("$").lstrip(".") or "(top level)"
        detail = str(exc).split(": ", 2)[-1]
        raise SettingsError(f"invalid store setting {dotted}: {detail}", store=store, path=path) from None
    return doc


# -- typed view --------------------------------------------------------------


@attrs.frozen
class Branding:
    """How customer e-mails look and who they come from."""

    display_name: str | None = None
    sender_name: str | None = None
    sender_email: str | None = None
    logo_url: str | None = None
    accent_colour: str = "#1F6FEB"
    footer_text: str | None = None


@attrs.frozen
class NotificationPrefs:
    """Which e-mails the customer (and the seller) receive."""

    shipment_confirmation: bool = False
    copy_to_seller: bool = False
    seller_email: str | None = None
    include_notes_to_buyer: bool = True
    outbox_dir: str | None = None
    max_attempts: int = 8


@attrs.frozen
class SmtpSettings:
    """An outgoing mail server. ``password`` is a secret (never in a repr)."""

    host: str
    port: int = 587
    starttls: bool = True
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    timeout: float = 30.0


@attrs.frozen
class ProductSettings:
    """How the host catalogue is used at import."""

    use_catalogue: bool = True
    import_marketplace_catalogue: bool = False
    precedence: str = attrs.field(default="order", validator=attrs.validators.in_(("order", "catalogue")))

    @property
    def catalogue_wins(self) -> bool:
        """Whether catalogue values replace values the order already has."""
        return self.precedence == "catalogue"


@attrs.frozen
class Schedule:
    """How often ``run`` syncs the store: ``sync_interval`` seconds apart, 0 on every cycle."""

    sync_interval: float = 0.0


@attrs.frozen
class HostSettings:
    """A store's host-side settings, validated and with defaults applied."""

    branding: Branding = Branding()
    notifications: NotificationPrefs = NotificationPrefs()
    smtp: SmtpSettings | None = None
    products: ProductSettings = ProductSettings()
    schedule: Schedule = Schedule()


def load(stored: Mapping[str, Any] | None, *, store: str | None = None) -> HostSettings:
    """Validate ``stored`` settings and return them typed; secrets are registered for redaction."""
    doc = validate(stored, store=store)
    register_secrets(doc)
    smtp = doc.get("smtp")
    return HostSettings(
        branding=Branding(**doc["branding"]),
        notifications=NotificationPrefs(**doc["notifications"]),
        smtp=None if smtp is None else SmtpSettings(**{**smtp, "timeout": float(smtp["timeout"])}),
        products=ProductSettings(**doc["products"]),
        schedule=Schedule(sync_interval=float(doc["schedule"]["sync_interval"])),
    )


# -- secrets -----------------------------------------------------------------


def secret_paths() -> list[tuple[str, ...]]:
    """Every property path (at any depth) that the host settings schema flags ``x-secret``."""
    return secrets.secret_paths(schema())


def register_secrets(doc: Mapping[str, Any]) -> None:
    """Register every secret value in ``doc`` so that logs and errors redact it."""
    secrets.register_settings(schema(), doc)


def masked(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``doc`` safe to show: set secret values become ``***``."""
    return secrets.masked(schema(), doc)


# -- dotted assignments --------------------------------------------------------


def _node_for(path: Iterable[str]) -> dict[str, Any]:
    node: dict[str, Any] = schema()
    walked: list[str] = []
    for part in path:
        props = node.get("properties", {})
        if part not in props:
            where = ".".join(walked) or "the top level"
            known = ", ".join(sorted(props)) or "none"
            raise SettingsError(f"unknown store setting {'.'.join([*walked, part])!r}: keys under {where} are {known}")
        walked.append(part)
        node = props[part]
    return node


def parse_assignment(assignment: str) -> tuple[tuple[str, ...], Any]:
    """``"notifications.shipment_confirmation=true"`` -> ``(("notifications", "shipment_confirmation"), True)``."""
    key, text = split_assignment(assignment, "branding.display_name=Shop")
    path = tuple(part for part in key.split("."))
    if any(not part for part in path):
        raise SettingsError(f"bad setting key {key!r}: use dotted names such as branding.display_name")
    return path, coerce(key, _node_for(path), text)


def apply_assignments(
    stored: Mapping[str, Any] | None, assignments: Iterable[str], *, store: str | None = None
) -> dict[str, Any]:
    """Apply ``key=value`` assignments to the sparse ``stored`` settings; validate; return the new sparse document."""
    out = copy.deepcopy(dict(stored or {}))
    for assignment in assignments:
        path, value = parse_assignment(assignment)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    validate(out, store=store)
    return out

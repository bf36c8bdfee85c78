"""Hypothesis strategies for raw Spartoo order payloads (the JSON form of one ``<order>``).

:func:`schema_orders` draws from the plugin's order schema itself
(``connector_spartoo/schemas/order.schema.json``):
anything the schema admits. :func:`spartoo_orders`
builds realistic payloads by hand, sharpened for what breaks connectors:
international names, blank or missing optional tags, relay-only delivery,
awkward prices and quantities, leading-zero postcodes, national and
international phones, countries as names or codes, dates at DST changes and
midnight, very long fields, many items.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from connector_spartoo.schemas import load_schema
from hypothesis import strategies as st

SPARTOO_SCHEMA: dict[str, Any] = load_schema("order")
STATUS_CODES = ("11", "2", "3", "41", "45", "47")

NAMES = st.sampled_from(
    ["Zoë", "Łukasz", "Ærøskøbing", "李小龍", "Дмитрий", "محمد", "שרה", "Nguyễn", "O'Brien", "José-María", "🙂 Smile"]
)
COUNTRIES = st.sampled_from(
    ["France", "FR", "fr", "Italie", "Italy", "IT", "Allemagne", "DE", "Espagne", "ES", "Suisse"]
)
BLANK = st.sampled_from([None, "", "   ", "\n\t"])


def optional(text: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    """A tag that may be absent-as-null, blank, or filled."""
    return st.one_of(BLANK, text)


def money(max_value: int = 500) -> st.SearchStrategy[str]:
    """Prices as Spartoo writes them: 0 to 3 decimals, zero included, sometimes with a comma."""
    value = st.decimals(min_value=0, max_value=max_value, places=2, allow_nan=False, allow_infinity=False)
    return st.one_of(
        value.map(lambda d: f"{d:.2f}"),
        value.map(lambda d: f"{d:.0f}"),
        value.map(lambda d: f"{d:.1f}"),
        st.integers(0, max_value * 1000).map(lambda n: f"{Decimal(n) / 1000:.3f}"),
        st.just("0"),
    )


def long_text() -> st.SearchStrategy[str]:
    """Ordinary to very long text, any alphabet."""
    return st.one_of(st.text(min_size=1, max_size=40), st.text(min_size=300, max_size=2000)).filter(str.strip)


def dates() -> st.SearchStrategy[str]:
    """``YYYY-MM-DD HH:MM:SS`` (Europe/Paris), biased to DST changes and midnight."""
    special = st.sampled_from(
        [
            "2024-03-31 02:30:00",  # does not exist in Paris
            "2024-10-27 02:30:00",  # exists twice in Paris
            "2024-10-27 03:00:00",
            "2024-12-31 23:59:59",
            "2025-01-01 00:00:00",
            "2024-02-29 00:00:00",
        ]
    )
    any_day = st.datetimes(min_value=datetime(2015, 1, 1)).map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S"))
    iso = st.datetimes(min_value=datetime(2015, 1, 1)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S+02:00"))
    return st.one_of(special, any_day, iso)


def phones() -> st.SearchStrategy[str]:
    """Phone numbers in national and international forms."""
    return st.sampled_from(["0612345678", "06 12 34 56 78", "+33 6 12 34 56 78", "+33612345678", "0033612345678"])


def postcodes() -> st.SearchStrategy[str]:
    """Postcodes, often with leading zeros."""
    return st.one_of(
        st.sampled_from(["01000", "00118", "04100", "75001", "SW1A 1AA", "8001"]), st.from_regex(r"\A0\d{4}\Z")
    )


@st.composite
def products(draw: st.DrawFn) -> dict[str, Any]:
    """One ``<product>``: quantities 1 to hundreds, zero prices, a reduced price possibly above the unit."""
    unit = draw(money())
    reduced = draw(st.one_of(st.just(unit), money(), BLANK))
    return {
        "products_reference": draw(optional(st.from_regex(r"\A[A-Z0-9-]{1,12}\Z"))),
        "products_name": draw(optional(long_text())),
        "products_qty": str(draw(st.one_of(st.integers(1, 5), st.integers(1, 900)))),
        "products_spartoo": draw(optional(st.from_regex(r"\A\d{1,9}\Z"))),
        "products_manufacturers": draw(optional(NAMES)),
        "products_size": draw(optional(st.sampled_from(["38", "42", "XL", "T.U."]))),
        "products_size_reference": draw(optional(st.from_regex(r"\A[A-Z0-9-]{1,14}\Z"))),
        "products_color": draw(optional(st.sampled_from(["Noir", "Rouge", "bleu marine"]))),
        "products_price_unit": unit,
        "products_price_unit_with_reduce": reduced,
    }


@st.composite
def spartoo_orders(draw: st.DrawFn) -> dict[str, Any]:
    """A realistic Spartoo order payload with the edge cases drawn often."""
    first, last = draw(optional(NAMES)), draw(optional(NAMES))
    relay_only = draw(st.booleans())
    address = {
        "delivery_firstname": first,
        "delivery_lastname": last,
        "delivery_company": draw(optional(long_text())),
        "delivery_street_address": draw(st.one_of(BLANK, long_text())) if not relay_only else draw(BLANK),
        "delivery_suburb": draw(optional(long_text())),
        "delivery_city": draw(optional(NAMES)),
        "delivery_postcode": draw(optional(postcodes())),
        "delivery_state": draw(optional(long_text())),
        "delivery_country": draw(optional(COUNTRIES)),
    }
    for key in ("delivery_company", "delivery_suburb", "delivery_state"):
        if draw(st.booleans()):
            del address[key]  # missing tags, not just empty ones
    if relay_only or draw(st.booleans()):
        address["relay_info"] = {
            "relay_id": draw(st.from_regex(r"\A\d{6}\Z")),
            "relay_type": draw(optional(st.sampled_from(["MR", "SO", "PR"]))),
            "relay_name": draw(optional(long_text())),
            "relay_address": draw(optional(long_text())),
            "relay_city": draw(optional(NAMES)),
            "relay_postcode": draw(optional(postcodes())),
            "relay_country_iso": draw(optional(st.sampled_from(["FR", "BE", "IT"]))),
        }
    return {
        "orders_id": draw(st.from_regex(r"\A[0-9A-F]{6,16}\Z")),
        "customers": {
            "customers_firstname": first,
            "customers_lastname": last,
            "customers_email_address": draw(optional(st.emails())),
            "customers_telephone": draw(optional(phones())),
            "customers_street_address": draw(optional(long_text())),
            "customers_city": draw(optional(NAMES)),
            "customers_postcode": draw(optional(postcodes())),
            "customers_country": draw(optional(COUNTRIES)),
        },
        "delivery": address,
        "payment_method": draw(optional(st.sampled_from(["CB", "PayPal", "Virement"]))),
        "payment_price": draw(optional(money(5))),
        "shipping_price": draw(optional(money(30))),
        "shipping_name": draw(optional(st.sampled_from(["Colissimo", "Mondial Relay", "Chronopost"]))),
        "order_total": draw(optional(money(5000))),
        "orders_status_id": draw(st.sampled_from(STATUS_CODES)),
        "date_purchased": draw(dates()),
        "last_modified": draw(optional(dates())),
        "products": {
            "product": draw(st.lists(products(), min_size=1, max_size=draw(st.sampled_from([3, 60])))),
        },
    }


def from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """A strategy for the JSON Schema subset the Spartoo order schema uses.

    (hypothesis-jsonschema's object strategy relies on Hypothesis internals
    that the installed Hypothesis no longer has, so objects are drawn here.)
    Covers ``$ref`` to ``#/$defs``, ``type`` (one or a list), object
    ``properties``/``required``/``additionalProperties``, array ``items``/
    ``minItems``, string ``pattern``/``minLength``.
    """
    root = root or schema
    if "$ref" in schema:
        return from_schema(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root)
    types = schema.get("type", "string")
    if isinstance(types, list):
        return st.one_of([from_schema({**schema, "type": t}, root) for t in types])
    if types == "null":
        return st.none()
    if types == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"])
        return st.text(min_size=schema.get("minLength", 0), max_size=60)
    if types == "array":
        return st.lists(from_schema(schema.get("items", {}), root), min_size=schema.get("minItems", 0), max_size=8)
    if types == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fixed = {k: from_schema(v, root) for k, v in props.items() if k in required}
        optional_props = {k: from_schema(v, root) for k, v in props.items() if k not in required}
        extra = (
            st.dictionaries(st.from_regex(r"\Ax_[a-z]{1,8}\Z"), st.text(max_size=10), max_size=2)
            if schema.get("additionalProperties", True) is not False
            else st.just({})
        )
        return st.builds(
            lambda a, b, c: {**c, **b, **a},
            st.fixed_dictionaries(fixed),
            st.fixed_dictionaries({}, optional=optional_props),
            extra,
        )
    raise ValueError(f"the strategy builder does not handle type {types!r}")


def schema_orders() -> st.SearchStrategy[dict[str, Any]]:
    """Whatever the Spartoo order schema admits."""
    return from_schema(SPARTOO_SCHEMA)


def any_orders() -> st.SearchStrategy[dict[str, Any]]:
    """Hand-sharpened payloads most of the time, raw schema draws the rest."""
    return st.one_of(spartoo_orders(), spartoo_orders(), schema_orders())

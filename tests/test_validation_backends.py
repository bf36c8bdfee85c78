"""The fast validation backends keep ``jsonschema``'s verdicts and error messages."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_core.errors import ConfigError, ValidationError
from connector_core.models import (
    Address,
    Customer,
    Discount,
    ItemOption,
    LineItem,
    MarketplaceStatus,
    Order,
    PickupPoint,
    Weight,
    to_json,
)
from connector_core.schema_registry import (
    BACKENDS,
    SchemaRegistry,
    available_backends,
    canonical_registry,
)

ORDER = "canonical/order"


def canonical_order() -> dict[str, Any]:
    """A canonical order using every optional part of the schema, as plain JSON."""
    addr = Address(name="Zoé Martin", street1="3 rue des Lilas", city="Lyon", postal_code="69003", country="FR")
    order = Order(
        store="shop-1",
        marketplace="spartoo",
        site="com",
        order_key="com:3FF75E96C3434E92",
        order_number="3FF75E96C3434E92",
        order_date=datetime(2024, 5, 1, 8, 30, tzinfo=UTC),
        modified_date=datetime(2024, 5, 2, 9, 0, 1, 250000, tzinfo=UTC),
        status="pending_fulfillment",
        marketplace_status=MarketplaceStatus("11", "Commande Vérifiée"),
        customer=Customer(name="Zoé Martin", email="zoe@example.org", phone="+33 6 12 34 56 78"),
        bill_to=addr,
        ship_to=addr,
        pickup_point=PickupPoint(id="4412", type="relay", name="Tabac du coin", address=addr),
        currency="EUR",
        items=[
            LineItem(
                line_key="1",
                sku="SKU-42",
                name="Sandale",
                quantity=2,
                unit_price=Decimal("59.90"),
                discount=Decimal("5.00"),
                weight=Weight(Decimal("0.8"), "kg"),
                options=[ItemOption("size", "42"), ItemOption("colour", "rouge")],
                brand="Acme",
                marketplace_product_id="123456",
            ),
            LineItem(line_key="2", sku=None, name="Chaussette", quantity=1, unit_price=Decimal("4.50")),
        ],
        item_total=Decimal("124.30"),
        shipping_amount=Decimal("4.90"),
        total=Decimal("124.20"),
        discounts=[Discount(Decimal("5.00"), code="SPRING", line_key="1")],
        requested_shipping_service="Colissimo",
        payment_method="CB",
        total_weight=Weight(Decimal("1.7"), "kg"),
        flags=["totals_mismatch"],
        raw={"orders_id": "3FF75E96C3434E92"},
    )
    doc = json.loads(json.dumps(to_json(order)))  # exactly what a JSON round trip holds
    assert canonical_registry().validator(ORDER).is_valid(doc)
    return doc


WRONG_VALUES: list[Any] = [
    None,
    0,
    -1,
    1.5,
    True,
    "",
    "x",
    "EUR\n",
    "2024-05-01T08:30:00Z\n",
    "12.5",
    "1e3",
    "٣",
    [],
    [1],
    {},
    {"x": 1},
]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    target = out
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return out


def _delete(doc: Any, path: tuple[Any, ...]) -> Any:
    out = copy.deepcopy(doc)
    target = out
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return out


def mutants(doc: dict[str, Any]) -> Iterator[Any]:
    """The document, then every value replaced by wrong values, every key deleted, extra keys added."""
    yield doc
    for path in _paths(doc):
        for value in WRONG_VALUES:
            yield _set(doc, path, value)
        yield _delete(doc, path)
        parent = _set(doc, path, {**_get(doc, path), "unexpected": 1}) if isinstance(_get(doc, path), dict) else None
        if parent is not None:
            yield parent


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


FAST_BACKENDS = [b for b in available_backends() if b != "jsonschema"]


@pytest.fixture(scope="module", params=FAST_BACKENDS)
def registry(request: pytest.FixtureRequest) -> SchemaRegistry:
    """A registry of the canonical schemas on one fast backend."""
    reg = SchemaRegistry(backend=request.param)
    canonical = canonical_registry()
    for name in canonical.names():
        reg.add(name, canonical.schema(name))
    return reg


def test_fast_backend_compiles_the_canonical_schemas_with_cross_file_refs(registry: SchemaRegistry) -> None:
    """Each canonical schema (which $ref common.schema.json) compiles on the chosen fast backend itself."""
    for name in ("canonical/order", "canonical/shipment", "canonical/push_result", "canonical/store_settings"):
        assert registry.backend_for(name) == registry.backend


def test_verdicts_match_jsonschema_on_mutated_canonical_orders(registry: SchemaRegistry) -> None:
    """On hundreds of valid and invalid canonical orders, is_valid and validate agree with jsonschema."""
    reference = jsonschema.Draft202012Validator(registry.schema(ORDER), registry=canonical_registry()._registry)
    docs = list(mutants(canonical_order()))
    verdicts = {True: 0, False: 0}
    for doc in docs:
        expected = reference.is_valid(doc)
        verdicts[expected] += 1
        assert registry.is_valid(ORDER, doc) is expected, doc
        if expected:
            registry.validate(ORDER, doc)
        else:
            with pytest.raises(ValidationError):
                registry.validate(ORDER, doc)
    assert verdicts[True] >= 20 and verdicts[False] >= 300, verdicts


def test_the_fast_backend_really_answers_for_valid_orders(registry: SchemaRegistry) -> None:
    """A valid order is accepted by the fast validator alone, not by the jsonschema fallback."""
    backend, fast = registry._fast_validator(ORDER)
    assert backend == registry.backend
    assert fast(canonical_order()) is True
    assert fast(_set(canonical_order(), ("currency",), "euro")) is False


@pytest.mark.parametrize(
    ("schema", "document"),
    [
        ({"type": "string", "pattern": "^[A-Z]{3}$"}, "EUR\n"),  # Python's $ matches before a final newline
        ({"type": "string", "pattern": "^\\d$"}, "٣"),  # Python's \d is Unicode-aware
        ({"type": "number"}, float("inf")),
        ({"type": "object"}, {1: "non-string key"}),
    ],
)
@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_corners_where_fast_backends_are_stricter_get_jsonschemas_verdict(
    backend: str, schema: dict[str, Any], document: Any
) -> None:
    """Where a fast backend would reject or cannot read a document jsonschema accepts, jsonschema wins."""
    reg = SchemaRegistry(backend=backend)
    reg.add("corner", schema)
    assert jsonschema.Draft202012Validator(schema).is_valid(document) is True
    assert reg.is_valid("corner", document) is True
    reg.validate("corner", document)


def test_validate_reports_jsonschemas_message_and_json_path(registry: SchemaRegistry) -> None:
    """A failing document raises ValidationError carrying jsonschema's message and the JSON path."""
    bad = _set(canonical_order(), ("items", 0, "quantity"), 0)
    with pytest.raises(ValidationError) as info:
        registry.validate(ORDER, bad, store="shop-1")
    assert info.value.path == "$.items[0].quantity"
    assert "0 is less than the minimum of 1" in str(info.value)


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
SMALL_SCHEMA = {
    "type": "object",
    "properties": {
        "a": {"type": "integer", "minimum": 0},
        "b": {"type": ["string", "null"], "pattern": "^[a-z]*$", "maxLength": 3},
        "c": {"type": "array", "items": {"type": "number"}, "maxItems": 2, "uniqueItems": True},
        "d": {"enum": [1, "1", None, [1]]},
        "": {"const": {"k": 1}},
    },
    "additionalProperties": {"type": ["boolean", "object"]},
}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(document=JSON_VALUES | st.dictionaries(st.sampled_from(["a", "b", "c", "d", "", "e"]), JSON_VALUES))
def test_random_json_documents_get_the_same_verdict_on_every_backend(document: Any) -> None:
    """Arbitrary JSON documents against a schema of many keywords: every backend agrees with jsonschema."""
    expected = jsonschema.Draft202012Validator(SMALL_SCHEMA).is_valid(document)
    for backend in available_backends():
        reg = _small_registries()[backend]
        assert reg.is_valid("small", document) is expected, (backend, document)


_SMALL: dict[str, SchemaRegistry] = {}


def _small_registries() -> dict[str, SchemaRegistry]:
    if not _SMALL:
        for backend in available_backends():
            reg = SchemaRegistry(backend=backend)
            reg.add("small", SMALL_SCHEMA)
            _SMALL[backend] = reg
    return _SMALL


def test_backend_defaults_to_the_fastest_installed_and_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default backend is the first available one; CONNECTOR_HOST_VALIDATOR overrides it."""
    monkeypatch.delenv("CONNECTOR_HOST_VALIDATOR", raising=False)
    assert SchemaRegistry().backend == available_backends()[0]
    monkeypatch.setenv("CONNECTOR_HOST_VALIDATOR", "jsonschema")
    assert SchemaRegistry().backend == "jsonschema"


def test_unknown_backend_is_a_config_error() -> None:
    """Naming a backend that does not exist fails with the list of choices."""
    with pytest.raises(ConfigError, match="choose one of " + ", ".join(BACKENDS)):
        SchemaRegistry(backend="ajv")


def test_unregistered_ref_is_never_fetched(registry: SchemaRegistry) -> None:
    """A $ref to a schema nobody registered is not fetched: validation fails instead of going online."""
    reg = SchemaRegistry(backend=registry.backend)
    reg.add("dangling", {"$ref": "https://connector-host.dev/schemas/nowhere.schema.json"})
    assert reg.backend_for("dangling") == "jsonschema"
    with pytest.raises(Exception, match=r"nowhere\.schema\.json"):
        reg.is_valid("dangling", {})

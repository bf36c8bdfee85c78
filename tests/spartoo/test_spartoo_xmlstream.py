"""Streaming parse of Spartoo's order export: JSON form, hostile input, envelopes, broken documents."""

from __future__ import annotations

import jsonschema
import pytest
from connector_spartoo.schemas import load_schema
from connector_spartoo.xmlstream import AUTH_MESSAGE, OrderStream, parse_envelope
from spartoo_docs import HOME_ORDER, RELAY_ORDER, chunked, document, envelope, simple_order

from connector_core.errors import (
    AccountError,
    AuthError,
    HostileInputError,
    MarketplaceError,
    QuotaError,
    TransientError,
)
from connector_core.models import RawReject

EXPECTED_AUTH = (
    "Could not authorise with Spartoo: your partner ID may be wrong. "
    "Check your account credentials and try to connect again."
)


def parse(data: bytes, size: int = 64, **kw: object) -> tuple[OrderStream, list[object]]:
    stream = OrderStream(chunked(data, size), site="com", **kw)  # type: ignore[arg-type]
    return stream, list(stream)


def test_orders_become_json_documents() -> None:
    """Each <order> becomes a dict: leaves are stripped strings, empty tags None, products always a list."""
    stream, items = parse(document(HOME_ORDER, RELAY_ORDER), size=7)
    assert stream.complete is True
    assert [i["orders_id"] for i in items] == ["3FF75E96C3434E92", "A1B2C3"]  # type: ignore[index]
    home, relay = items
    assert home["customers"]["customers_firstname"] == "Zoé"  # type: ignore[index]
    assert home["customers"]["customers_state"] is None  # type: ignore[index]
    assert home["errors"] is None  # type: ignore[index]
    assert [p["products_size_reference"] for p in home["products"]["product"]] == ["REF-BOOT-38", None]  # type: ignore[index]
    assert isinstance(relay["products"]["product"], list) and len(relay["products"]["product"]) == 1  # type: ignore[index]
    assert relay["delivery"]["relay_info"]["relay_id"] == "4521"  # type: ignore[index]


def test_documents_validate_against_order_schema() -> None:
    """The JSON form of the sample orders passes connector_spartoo/schemas/order.schema.json."""
    validator = jsonschema.Draft202012Validator(load_schema("order"))
    _, items = parse(document(HOME_ORDER, RELAY_ORDER))
    for item in items:
        assert list(validator.iter_errors(item)) == []


def test_order_schema_rejects_order_without_products() -> None:
    """An order document without a product list fails the order schema."""
    validator = jsonschema.Draft202012Validator(load_schema("order"))
    assert not validator.is_valid({"orders_id": "X", "products": None})


def test_memory_is_released_order_by_order() -> None:
    """While iterating, the partial tree holds a bounded handful of orders, not the whole document."""
    stream = OrderStream(chunked(document(*(simple_order(f"O{i}") for i in range(300))), 100), site="com")
    sizes = []
    for _ in stream:
        orders = stream.root.find("orders")  # type: ignore[union-attr]
        sizes.append(len(orders))
    assert len(sizes) == 300
    # the order just yielded, the one before it (dropped on the next end tag) and one still being read
    assert max(sizes) <= 3


def test_doctype_with_entities_is_refused() -> None:
    """A document declaring entities (billion laughs) raises HostileInputError before any order."""
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE root [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b"<root><orders><order><orders_id>&b;</orders_id></order></orders></root>"
    )
    with pytest.raises(HostileInputError, match="DOCTYPE"):
        parse(bomb)


def test_external_entity_is_refused_and_not_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An external entity pointing at a local file is refused and its content never appears."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE root [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<root><orders><order><orders_id>&x;</orders_id></order></orders></root>"
    ).encode()
    with pytest.raises(HostileInputError) as info:
        parse(xxe)
    assert "TOPSECRET" not in str(info.value)


def test_plain_doctype_is_refused() -> None:
    """Even a DOCTYPE without declarations is hostile: Spartoo never sends one."""
    with pytest.raises(HostileInputError):
        parse(b'<!DOCTYPE root SYSTEM "http://example.invalid/x.dtd"><root><orders/></root>')


def test_byte_cap_stops_the_stream() -> None:
    """A document over the byte cap raises HostileInputError after the orders read within the cap."""
    data = document(*(simple_order(f"O{i}") for i in range(50)))
    stream = OrderStream(chunked(data, 512), site="com", max_bytes=len(data) // 2)
    seen = []
    with pytest.raises(HostileInputError, match="byte cap"):
        for item in stream:
            seen.append(item)
    assert 0 < len(seen) < 50
    assert stream.complete is False


def test_depth_cap() -> None:
    """Nesting deeper than max_depth raises HostileInputError."""
    deep = b"<root>" + b"<a>" * 40 + b"</a>" * 40 + b"</root>"
    with pytest.raises(HostileInputError, match="deeper"):
        parse(deep, max_depth=32)


def test_depth_cap_inside_an_order_read_in_one_chunk() -> None:
    """An order nesting past max_depth is refused even when the whole document arrives in one chunk."""
    inner = b"<a>" * 40 + b"x" + b"</a>" * 40
    doc = b"<root><orders><order><orders_id>1</orders_id>" + inner + b"</order></orders></root>"
    with pytest.raises(HostileInputError, match="deeper than 32"):
        list(OrderStream([doc], site="com"))
    shallow = b"<root><orders><order><orders_id>1</orders_id>" + inner[:87] + inner[-116:] + b"</order></orders></root>"
    [order] = list(OrderStream([shallow], site="com"))
    assert isinstance(order, dict) and order["orders_id"] == "1"


def test_order_without_id_is_a_reject_and_the_rest_goes_on() -> None:
    """An <order> without orders_id becomes a RawReject; the orders around it are kept."""
    broken = "<order><customers><customers_firstname>X</customers_firstname></customers></order>"
    stream, items = parse(document(simple_order("A"), broken, simple_order("B")))
    assert [i["orders_id"] if isinstance(i, dict) else "reject" for i in items] == ["A", "reject", "B"]
    reject = items[1]
    assert isinstance(reject, RawReject) and "orders_id" in reject.reason
    assert reject.payload is not None and "<customers_firstname>X" in reject.payload
    assert stream.complete is True and stream.rejects == 1


def test_mixed_content_order_is_a_reject_with_its_key() -> None:
    """An order mixing text and elements is rejected, keyed by site and id."""
    broken = "<order><orders_id>M1</orders_id>stray text<products/></order>"
    _, items = parse(document(broken))
    assert isinstance(items[0], RawReject)
    assert items[0].order_key == "com:M1"
    assert "mixes text" in items[0].reason


def test_malformed_xml_mid_document_keeps_earlier_orders() -> None:
    """Malformed XML mid-document: earlier orders kept, the rest is one RawReject, the stream is incomplete."""
    data = document(simple_order("A"), simple_order("B"), "<order><orders_id>C</orders_id><bad<</order>")
    stream, items = parse(data, size=50)
    assert [i["orders_id"] for i in items if isinstance(i, dict)] == ["A", "B"]
    rejects = [i for i in items if isinstance(i, RawReject)]
    assert len(rejects) == 1 and "malformed XML" in rejects[0].reason and "after 2 order" in rejects[0].reason
    assert stream.complete is False


def test_truncated_document_is_transient() -> None:
    """A body that just stops (truncated transfer) raises TransientError after the complete orders."""
    data = document(simple_order("A"), simple_order("B"))
    cut = data[: data.index(b"<order><orders_id>B") + len(simple_order("B")) // 2]
    seen = []
    with pytest.raises(TransientError, match="ended early"):
        for item in OrderStream([cut], site="com"):
            seen.append(item)
    assert [i["orders_id"] for i in seen] == ["A"]  # type: ignore[index]


def test_not_xml_is_a_marketplace_error() -> None:
    """An HTML or junk answer is reported as a marketplace error, not as orders."""
    with pytest.raises(MarketplaceError, match=r"not XML|instead of <root>"):
        parse(b"Service unavailable")
    with pytest.raises(MarketplaceError, match="instead of <root>"):
        parse(b"<html><body>oops</body></html>")


@pytest.mark.parametrize("code", [-1, -2])
def test_auth_envelopes(code: int) -> None:
    """Codes -1 and -2 raise AuthError with exactly the documented message."""
    with pytest.raises(AuthError) as info:
        parse(envelope(code, "partenaire inconnu"))
    assert str(info.value) == EXPECTED_AUTH == AUTH_MESSAGE
    assert info.value.code == code


def test_deactivated_account_envelope() -> None:
    """Code -428 raises AccountError saying the account is deactivated."""
    with pytest.raises(AccountError, match="deactivated"):
        parse(envelope(-428))


def test_quota_envelope() -> None:
    """Code -429 raises QuotaError (a TransientError, so it is retried)."""
    with pytest.raises(QuotaError) as info:
        parse(envelope(-429))
    assert isinstance(info.value, TransientError) and info.value.code == -429


def test_other_negative_envelope() -> None:
    """Any other negative code raises a plain MarketplaceError carrying Spartoo's description."""
    with pytest.raises(MarketplaceError, match=r"code -7.*commande inconnue") as info:
        parse(envelope(-7, "commande inconnue"))
    assert type(info.value) is MarketplaceError


def test_success_envelope_passes() -> None:
    """A statut of 1 alongside orders is no error."""
    data = (
        b"<root><statut><id>1</id><description>OK</description></statut><orders>"
        + simple_order("A").encode()
        + b"</orders></root>"
    )
    stream, items = parse(data)
    assert [i["orders_id"] for i in items] == ["A"]  # type: ignore[index]
    assert stream.complete


def test_parse_envelope_refuses_doctype_and_reads_statut() -> None:
    """The whole-answer parser also refuses DOCTYPEs and raises on negative statuts."""
    assert parse_envelope(envelope(1, "ok")).tag == "root"
    with pytest.raises(HostileInputError):
        parse_envelope(b'<!DOCTYPE root [<!ENTITY a "b">]><root><statut><id>1</id></statut></root>')
    with pytest.raises(QuotaError):
        parse_envelope(envelope(-429))

"""Payloads handed over encoded become the raw column as they are, and only when they are the order's raw."""

from __future__ import annotations

from collections.abc import Callable

import attrs
from bazaar_plugin import TOKEN, Bazaar, make_order

from connector_core import hookimpl
from connector_core.db.rows import dump_bytes, stored_form
from connector_core.models import Order, RawOrder
from connector_core.plugins import PluginHost
from connector_core.store_context import StoreContext
from connector_core.sync.pipeline import Pipeline, raw_schema_of


class _TrimmingBazaar(Bazaar):
    """Keeps only part of each payload as the order's raw."""

    @hookimpl
    def map_order(self, store: StoreContext, raw: RawOrder) -> Order:
        return attrs.evolve(super().map_order(store, raw), raw={"id": raw.payload["id"]})


def _pipeline(host: PluginHost) -> Pipeline:
    store = StoreContext(name="b", marketplace="bazaar", settings={"token": TOKEN})
    return Pipeline(host, store, raw_schema_of(host, "bazaar"))


def _raws() -> list[RawOrder]:
    return [RawOrder(order_key=f"BZ{n:04d}", payload=make_order(n)) for n in (1, 2, 3)]


def test_encoded_payloads_become_the_raw_column_unencoded_again(make_host: Callable[..., PluginHost]) -> None:
    """The row leaves ``raw`` to the caller, names the payload, and hashes exactly what the book would store."""
    pipeline = _pipeline(make_host(Bazaar("bazaar")))
    raws = _raws()
    encoded = [dump_bytes(r.payload) for r in raws]
    page = pipeline.map_page(raws, encoded=encoded)
    plain = pipeline.map_page(raws)
    assert page.raw_from == (0, 1, 2) and plain.raw_from is None
    for row, full, data in zip(page.rows, plain.rows, encoded, strict=True):
        assert row.raw == b"" and full.raw == data
        assert row._replace(raw=data) == full  # once filled in, the very row mapped in process


def test_a_plugin_whose_raw_is_not_the_payload_has_its_own_raw_encoded(make_host: Callable[..., PluginHost]) -> None:
    """Bytes of the payload are not taken for an order whose raw is something else."""
    pipeline = _pipeline(make_host(_TrimmingBazaar("bazaar")))
    raws = _raws()
    page = pipeline.map_page(raws, encoded=[dump_bytes(r.payload) for r in raws])
    assert page.raw_from == (-1, -1, -1)
    assert [row.raw for row in page.rows] == [dump_bytes({"id": r.payload["id"]}) for r in raws]


def test_stored_form_hashes_the_bytes_it_is_given() -> None:
    """With the raw column's bytes handed over, the hash is the one the encoded form gives."""
    document = {"order_key": "k", "raw": {"b": 1, "a": [2, {"d": 3, "c": 4}]}}
    canonical, raw, digest = stored_form(document)
    given = stored_form(document, raw)
    assert given == (canonical, b"", digest)
    assert stored_form(document, b'{"other":1}')[2] != digest  # the bytes given are what is hashed

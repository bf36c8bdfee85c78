"""Per-record cost of validation: the engine's validator vs ``jsonschema``.

On the same records, three ways:

* ``engine``: :meth:`SchemaRegistry.validate` as the engine calls it (fast
  yes/no backend, ``jsonschema`` only on failure);
* ``reused``: one ``jsonschema`` validator built once, ``.validate(doc)``;
* ``validate()``: ``jsonschema.validate(doc, schema)`` per call (re-checks the
  schema every time: what never to do in a loop).

Records: raw Spartoo orders (the JSON form the stream parser yields) against
the Spartoo raw schema, and the canonical orders they map to against the
canonical order schema.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema

from connector_core.models import to_json
from connector_core.schema_registry import SchemaRegistry, canonical_registry


def spartoo_records(count: int, seed: int = 11) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``count`` raw Spartoo orders parsed from a sandbox document, and their canonical JSON."""
    from common import spartoo_document
    from connector_spartoo.mapping import map_order_document
    from connector_spartoo.xmlstream import OrderStream

    raws = [d for d in OrderStream([spartoo_document(count, seed=seed, site="com")], site="com") if isinstance(d, dict)]
    canonical = []
    zone = ZoneInfo("Europe/Paris")
    for raw in raws:
        try:
            order = map_order_document(raw, store="bench", site="com", zone=zone)
        except Exception:  # orders without a usable address are rejected by the mapping
            continue
        canonical.append(to_json(order))
    return raws, canonical


def registry_with_spartoo() -> SchemaRegistry:
    """A registry with the canonical schemas and the Spartoo raw order schema, as the host builds it."""
    from connector_spartoo.schemas import load_schema

    reg = SchemaRegistry()
    base = canonical_registry()
    for name in base.names():
        reg.add(name, base.schema(name))
    reg.add("spartoo/raw", load_schema("order"))
    return reg


def per_record_us(check: Callable[[Any], Any], records: Sequence[Any], min_seconds: float = 0.3) -> float:
    """Mean microseconds per record of ``check``, looping over ``records`` for at least ``min_seconds``."""
    done = 0
    start = time.perf_counter()
    while True:
        for r in records:
            check(r)
        done += len(records)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / done * 1e6


def bench_schema(reg: SchemaRegistry, name: str, records: Sequence[Any], *, quick: bool = False) -> dict[str, Any]:
    """Time the three ways on ``records`` for schema ``name``; return figures and ratios."""
    reused = reg.validator(name)
    schema = reg.schema(name)
    registry = reg._registry
    for r in records:  # the same verdict everywhere, before timing anything
        reg.validate(name, r)
        reused.validate(r)
    engine_us = per_record_us(lambda r: reg.validate(name, r), records, 0.2 if quick else 1.0)
    reused_us = per_record_us(reused.validate, records[:2000], 0.2 if quick else 1.0)
    oneshot_us = per_record_us(
        lambda r: jsonschema.validate(r, schema, cls=jsonschema.Draft202012Validator, registry=registry),
        records[:100],
        0.2 if quick else 1.0,
    )
    return {
        "schema": name,
        "records": len(records),
        "backend": reg.backend_for(name),
        "engine_us": round(engine_us, 2),
        "reused_jsonschema_us": round(reused_us, 1),
        "jsonschema_validate_us": round(oneshot_us, 1),
        "reused_over_engine": round(reused_us / engine_us, 1),
        "validate_over_engine": round(oneshot_us / engine_us, 1),
    }


def run(count: int = 2000, *, quick: bool = False) -> list[dict[str, Any]]:
    """The validation benchmark on ``count`` sandbox orders: one result per schema."""
    raws, canonical = spartoo_records(count)
    reg = registry_with_spartoo()
    return [
        bench_schema(reg, "spartoo/raw", raws, quick=quick),
        bench_schema(reg, "canonical/order", canonical, quick=quick),
    ]


def report(results: list[dict[str, Any]]) -> str:
    """Human-readable lines for :func:`run`'s results."""
    lines = []
    for r in results:
        lines.append(
            f"  {r['schema']:<16} {r['records']:>6} records  engine ({r['backend']}) {r['engine_us']:>7.2f} µs"
            f" | reused jsonschema {r['reused_jsonschema_us']:>8.1f} µs ({r['reused_over_engine']}x)"
            f" | jsonschema.validate() {r['jsonschema_validate_us']:>8.1f} µs ({r['validate_over_engine']}x)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(report(run()))

"""The host-side product catalogue, and filling orders from it.

Marketplaces often leave out what a shipper needs (Spartoo's orders carry no
weight, warehouse location or image). The host keeps its own catalogue keyed
by the seller's SKU, fed from a CSV file (:func:`import_csv`) or from a
plugin's ``fetch_catalogue`` hook (:func:`upsert_entries`), and at import
:func:`enrich` fills the order's items from it.

Merging rule, for both sources: a value given replaces the stored one, an
empty value keeps it. So a CSV with weights and a marketplace export with
photos and EANs complete each other whatever the order they come in.

Order weight: when every item has a weight, ``total_weight`` is the sum of
item weight x quantity, in grams (units converted with ``Decimal``, rounded
to the milligram). When only some items have one, the known part is summed
and the order gets the flag ``weight_incomplete`` (the total is a lower
bound, to be checked before buying a label). When no item has a weight,
the order's own total (if any) is left alone.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from connector_core.clock import now_iso
from connector_core.db.connection import transaction
from connector_core.db.history import like_pattern
from connector_core.errors import CatalogueImportError, MappingError
from connector_core.models import CatalogueEntry, LineItem, Order, Weight

COLUMNS = ("sku", "name", "weight", "weight_unit", "warehouse_location", "image_url", "ean", "upc")
"""CSV columns understood by :func:`import_csv`; only ``sku`` is required."""

_ALIASES = {
    "location": "warehouse_location",
    "bin": "warehouse_location",
    "image": "image_url",
    "photo": "image_url",
    "unit": "weight_unit",
    "gtin": "ean",
}
UNITS = ("g", "kg", "oz", "lb")
MAX_GRAMS = Decimal(10_000_000)
"""An item heavier than this (10 tonnes) is a typing error, refused at import rather than failing every order later."""
_AMBIGUOUS = re.compile(r"^-?[0-9]{1,3},[0-9]{3}$")
MILLIGRAM = Decimal("0.001")
WEIGHT_INCOMPLETE = "weight_incomplete"


@attrs.frozen
class RowError:
    """One problem in one row of a catalogue file (row 1 is the header)."""

    row: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@attrs.frozen
class ImportReport:
    """What an import did."""

    source: str
    rows: int
    inserted: int
    updated: int


# -- storage -------------------------------------------------------------------


def _now() -> str:
    return now_iso()


def _tx(conn: sqlite3.Connection) -> AbstractContextManager[sqlite3.Connection]:
    return transaction(conn, savepoint="catalogue")


_UPSERT = """
INSERT INTO catalogue
    (sku, name, weight_value, weight_unit, warehouse_location, image_url, ean, upc, source, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (sku) DO UPDATE SET
    name = COALESCE(excluded.name, name),
    weight_value = COALESCE(excluded.weight_value, weight_value),
    weight_unit = CASE WHEN excluded.weight_value IS NULL THEN weight_unit ELSE excluded.weight_unit END,
    warehouse_location = COALESCE(excluded.warehouse_location, warehouse_location),
    image_url = COALESCE(excluded.image_url, image_url),
    ean = COALESCE(excluded.ean, ean),
    upc = COALESCE(excluded.upc, upc),
    source = excluded.source,
    updated_at = excluded.updated_at
"""


def _row(entry: CatalogueEntry, source: str, stamp: str) -> tuple[Any, ...]:
    w = entry.weight
    return (
        entry.sku,
        entry.name,
        None if w is None else _plain(w.value),
        None if w is None else w.unit,
        entry.warehouse_location,
        entry.image_url,
        entry.ean,
        entry.upc,
        source,
        stamp,
    )


def _write(conn: sqlite3.Connection, entries: Iterable[CatalogueEntry], source: str) -> tuple[int, int, int]:
    stamp = _now()
    rows = inserted = 0
    batch: list[tuple[Any, ...]] = []
    known: set[str] = set()
    for entry in entries:
        batch.append(_row(entry, source, stamp))
        rows += 1
    skus = [b[0] for b in batch]
    for start in range(0, len(skus), 500):
        chunk = skus[start : start + 500]
        marks = ",".join("?" * len(chunk))
        known.update(r[0] for r in conn.execute(f"SELECT sku FROM catalogue WHERE sku IN ({marks})", chunk))
    inserted = len(set(skus) - known)
    conn.executemany(_UPSERT, batch)
    return rows, inserted, len(set(skus)) - inserted


def upsert_entries(conn: sqlite3.Connection, entries: Iterable[CatalogueEntry], *, source: str) -> ImportReport:
    """Store catalogue entries (e.g. from a plugin's ``fetch_catalogue``) in one transaction.

    Entries with an empty SKU are refused (:class:`CatalogueImportError`);
    given values replace stored ones, ``None`` keeps them.
    """
    items = list(entries)
    errors = tuple(
        RowError(i + 1, "sku", "empty SKU")
        for i, e in enumerate(items)
        if not isinstance(e, CatalogueEntry) or not (e.sku or "").strip()
    )
    if errors:
        raise CatalogueImportError(
            f"{source}: {len(errors)} catalogue entries without a SKU; nothing was imported", errors=errors
        )
    with _tx(conn):
        rows, inserted, updated = _write(conn, items, source)
    return ImportReport(source=source, rows=rows, inserted=inserted, updated=updated)


def _entry(row: sqlite3.Row | tuple[Any, ...]) -> CatalogueEntry:
    sku, name, wv, wu, loc, img, ean, upc = tuple(row)[:8]
    return CatalogueEntry(
        sku=sku,
        name=name,
        weight=None if wv is None else Weight(Decimal(wv), wu or "g"),
        warehouse_location=loc,
        image_url=img,
        ean=ean,
        upc=upc,
    )


_SELECT = "SELECT sku, name, weight_value, weight_unit, warehouse_location, image_url, ean, upc FROM catalogue"


def get_entry(conn: sqlite3.Connection, sku: str) -> CatalogueEntry | None:
    """The catalogue entry for ``sku``, or ``None``."""
    row = conn.execute(_SELECT + " WHERE sku = ?", (sku,)).fetchone()
    return None if row is None else _entry(row)


def list_entries(conn: sqlite3.Connection, *, limit: int | None = None) -> list[CatalogueEntry]:
    """Catalogue entries by SKU."""
    sql = _SELECT + " ORDER BY sku" + ("" if limit is None else f" LIMIT {int(limit)}")
    return [_entry(r) for r in conn.execute(sql)]


def page_entries(
    conn: sqlite3.Connection, *, limit: int | None = 1000, offset: int = 0, search: str | None = None
) -> tuple[list[CatalogueEntry], int]:
    """Catalogue entries by SKU (``limit`` from ``offset``, SKU or name containing ``search``) and how many match."""
    where, args = "", []
    if search:
        where = " WHERE sku LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\'"
        args = [like_pattern(search.strip())] * 2
    total = int(conn.execute("SELECT count(*) FROM catalogue" + where, args).fetchone()[0])
    rows = conn.execute(
        _SELECT + where + " ORDER BY sku LIMIT ? OFFSET ?", [*args, -1 if limit is None else limit, offset]
    )
    return [_entry(r) for r in rows], total


def lookup_for(conn: sqlite3.Connection, skus: Iterable[str]) -> dict[str, CatalogueEntry]:
    """Entries for ``skus`` in one query per 500 SKUs (a mapping usable by :func:`enrich`)."""
    wanted = sorted({s for s in skus if s})
    out: dict[str, CatalogueEntry] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(_SELECT + f" WHERE sku IN ({marks})", chunk):
            entry = _entry(row)
            out[entry.sku] = entry
    return out


def snapshot(conn: sqlite3.Connection, *, limit: int) -> dict[str, CatalogueEntry] | None:
    """The whole catalogue by SKU (for :func:`enrich` away from the book), or ``None`` if over ``limit`` entries."""
    count = int(conn.execute("SELECT count(*) FROM catalogue").fetchone()[0])
    if count > limit:
        return None
    return {entry.sku: entry for entry in map(_entry, conn.execute(_SELECT))}


# -- CSV -----------------------------------------------------------------------


def _plain(value: Decimal) -> str:
    """A Decimal as plain digits (never ``1E+3``), as the canonical schemas want."""
    return format(value, "f")


def parse_weight(text: str, unit: str | None) -> Weight:
    """``"250"`` + ``"g"``, or ``"1.2 kg"``: a :class:`Weight`. Raises ``ValueError`` with a reason."""
    number_part = text.strip().partition(" ")[0]
    if _AMBIGUOUS.match(number_part):
        raise ValueError(
            f"{text!r} is ambiguous (a thousands separator or a decimal comma?): write {number_part.replace(',', '')} "
            f"or {number_part.replace(',', '.')}"
        )
    raw = text.strip().replace(",", ".") if text.count(",") == 1 and "." not in text else text.strip()
    number, _, suffix = raw.partition(" ")
    suffix = suffix.strip().lower()
    if not suffix:
        for u in ("kg", "lb", "oz", "g"):
            if number.lower().endswith(u):
                number, suffix = number[: -len(u)].strip(), u
                break
    if suffix and unit and suffix != unit.lower():
        raise ValueError(f"weight says {suffix!r} but weight_unit says {unit!r}")
    chosen = (suffix or (unit or "g")).strip().lower()
    if chosen not in UNITS:
        raise ValueError(f"unit {chosen!r} is not one of g, kg, oz, lb")
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    weight = Weight(Decimal(_plain(value)), chosen)
    if weight.grams() > MAX_GRAMS:
        raise ValueError(f"{text!r} is beyond any plausible item weight (at most 10 t): check the unit and the digits")
    return weight


def _gtin_ok(code: str) -> bool:
    digits = [int(c) for c in code]
    check = digits.pop()
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10 == check


def _check_code(code: str, lengths: tuple[int, ...], label: str) -> str | None:
    if not code.isdigit() or len(code) not in lengths:
        return f"{code!r} is not a {label} ({' or '.join(map(str, lengths))} digits)"
    if not _gtin_ok(code):
        return f"{code!r} has a wrong check digit"
    return None


def _header(fields: list[str] | None) -> tuple[list[str], list[RowError]]:
    if not fields:
        return [], [RowError(1, None, f"the file is empty; the first row must name the columns: {', '.join(COLUMNS)}")]
    names: list[str] = []
    errors: list[RowError] = []
    for raw in fields:
        name = (raw or "").strip().lower().replace(" ", "_").lstrip("\ufeff")
        name = _ALIASES.get(name, name)
        if name not in COLUMNS:
            errors.append(RowError(1, raw, f"unknown column; known columns: {', '.join(COLUMNS)}"))
        elif name in names:
            errors.append(RowError(1, raw, "column given twice"))
        names.append(name)
    if "sku" not in names:
        errors.append(RowError(1, "sku", "the required column sku is missing"))
    return names, errors


def parse_csv(text: str) -> tuple[list[CatalogueEntry], list[RowError]]:
    """Parse catalogue CSV text (``,`` or ``;`` separated) into entries and row errors."""
    sample = text[:4096]
    first = sample.splitlines()[0] if sample else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    other = "," if delimiter == ";" else ";"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    names, errors = _header(next(reader, None))
    if errors:
        return [], errors
    entries: list[CatalogueEntry] = []
    seen: dict[str, int] = {}
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(names):
            errors.append(RowError(number, None, f"{len(cells)} cells but the header names {len(names)} columns"))
            continue
        if len(names) > 1 and len(cells) < len(names) and any(other in c for c in cells):
            errors.append(
                RowError(
                    number,
                    None,
                    f"this row is separated by {other!r} but the header by {delimiter!r}: use one separator throughout",
                )
            )
            continue
        row = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(names)}
        row_errors: list[RowError] = []
        sku = row.get("sku", "")
        if not sku:
            row_errors.append(RowError(number, "sku", "empty SKU"))
        elif sku in seen:
            row_errors.append(RowError(number, "sku", f"SKU {sku!r} already given on row {seen[sku]}"))
        else:
            seen[sku] = number
        weight: Weight | None = None
        if row.get("weight"):
            try:
                weight = parse_weight(row["weight"], row.get("weight_unit") or None)
            except ValueError as exc:
                row_errors.append(RowError(number, "weight", str(exc)))
        elif row.get("weight_unit") and row["weight_unit"].lower() not in UNITS:
            unit_problem = f"{row['weight_unit']!r} is not one of g, kg, oz, lb"
            row_errors.append(RowError(number, "weight_unit", unit_problem))
        image = row.get("image_url") or None
        if image and not image.lower().startswith(("http://", "https://")):
            row_errors.append(RowError(number, "image_url", f"{image!r} is not an http(s) URL"))
        ean = row.get("ean") or None
        if ean and (problem := _check_code(ean, (8, 13), "EAN")):
            row_errors.append(RowError(number, "ean", problem))
        upc = row.get("upc") or None
        if upc and (problem := _check_code(upc, (12,), "UPC")):
            row_errors.append(RowError(number, "upc", problem))
        if row_errors:
            errors.extend(row_errors)
            continue
        entries.append(
            CatalogueEntry(
                sku=sku,
                name=row.get("name") or None,
                weight=weight,
                warehouse_location=row.get("warehouse_location") or None,
                image_url=image,
                ean=ean,
                upc=upc,
            )
        )
    return entries, errors


def import_csv(conn: sqlite3.Connection, path: str | Path) -> ImportReport:
    """Import a catalogue CSV file: every row or none.

    The first row names the columns (see :data:`COLUMNS`; ``location`` and
    ``image`` are accepted aliases). ``weight`` is a number with
    ``weight_unit`` (g, kg, oz, lb; grams when absent) or a number with its
    unit (``1.2 kg``). Raises :class:`CatalogueImportError` listing every bad
    row (row number, column, what is wrong) and imports nothing then.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogueImportError(
            f"{path}: not UTF-8 text ({exc.reason}); save the file as UTF-8 CSV", errors=()
        ) from None
    except OSError as exc:
        raise CatalogueImportError(f"cannot read {path}: {exc.strerror}", errors=()) from None
    entries, errors = parse_csv(text)
    if errors:
        shown = "\n".join(f"  {e}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise CatalogueImportError(
            f"{path}: {len(errors)} problem(s); nothing was imported, fix them and import again:\n{shown}{more}",
            errors=tuple(errors),
        )
    with _tx(conn):
        rows, inserted, updated = _write(conn, entries, f"csv:{path.name}")
    return ImportReport(source=str(path), rows=rows, inserted=inserted, updated=updated)


# -- enrichment ----------------------------------------------------------------

Lookup = Mapping[str, CatalogueEntry] | Callable[[str], CatalogueEntry | None]


def _find(lookup: Lookup, sku: str | None) -> CatalogueEntry | None:
    if not sku:
        return None
    if isinstance(lookup, Mapping):
        return lookup.get(sku)
    return lookup(sku)


def _fill(item: LineItem, entry: CatalogueEntry, catalogue_wins: bool) -> LineItem:
    changes: dict[str, Any] = {}
    for name in ("weight", "warehouse_location", "image_url", "ean", "upc"):
        value = getattr(entry, name)
        if value is None:
            continue
        if catalogue_wins or getattr(item, name) is None:
            changes[name] = value
    return attrs.evolve(item, **changes) if changes else item


def total_weight(items: Iterable[LineItem]) -> tuple[Weight | None, bool]:
    """Sum of weight x quantity in grams, and whether every item had a weight."""
    total = Decimal(0)
    complete = True
    seen_any = False
    for item in items:
        if item.weight is None:
            complete = False
            continue
        seen_any = True
        total += item.weight.grams() * item.quantity
    if not seen_any:
        return None, False
    try:
        grams = total.quantize(MILLIGRAM)
    except InvalidOperation:  # a weight stored before MAX_GRAMS was checked
        raise MappingError(
            f"the items weigh {total:.3e} g in all, beyond any plausible order: fix the weight of their SKUs in "
            "the catalogue (`connector-host products import`)"
        ) from None
    return Weight(Decimal(_plain(grams)), "g"), complete


def enrich(order: Order, lookup: Lookup, products: Any) -> Order:
    """Fill the order's items from the catalogue, per the store's product settings.

    ``products`` is :class:`~connector_core.host_settings.ProductSettings`
    (anything with ``use_catalogue`` and ``precedence``). Items missing a
    weight, warehouse location, image URL, EAN or UPC get the catalogue's;
    with ``precedence == "catalogue"`` the catalogue's values replace the
    order's. Then ``total_weight`` is recomputed from the items (see the
    module docstring) unless the order has its own and the order wins.
    """
    if not getattr(products, "use_catalogue", True):
        return order
    if isinstance(lookup, Mapping) and not lookup and all(item.weight is None for item in order.items):
        return order  # nothing to fill and no item weight to sum: the order as it is
    catalogue_wins = getattr(products, "precedence", "order") == "catalogue"
    items = []
    for item in order.items:
        entry = _find(lookup, item.sku)
        items.append(item if entry is None else _fill(item, entry, catalogue_wins))
    changes: dict[str, Any] = {}
    if any(new is not old for new, old in zip(items, order.items, strict=True)):
        changes["items"] = tuple(items)
    if order.total_weight is None or catalogue_wins:
        weight, complete = total_weight(items)
        if weight is not None:
            changes["total_weight"] = weight
            flags = tuple(f for f in order.flags if f != WEIGHT_INCOMPLETE)
            if not complete:
                flags = (*flags, WEIGHT_INCOMPLETE)
            if flags != order.flags:
                changes["flags"] = flags
    return attrs.evolve(order, **changes) if changes else order

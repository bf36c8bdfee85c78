"""Catalogue CSV and prices that would import wrong values silently: each refused with what to fix."""

from __future__ import annotations

from decimal import Decimal

import pytest
from connector_spartoo.mapping import parse_money

from connector_core.catalogue import parse_csv, parse_weight


def test_mixed_separators_are_refused_instead_of_making_wrong_skus() -> None:
    """A ';' header with a ',' row: that row is an error naming both separators, not a SKU 'A-2,Shoe,0.5'."""
    entries, errors = parse_csv("sku;name;weight\nA-1;Sandal;0.4\nA-2,Shoe,0.5\n")
    assert [e.sku for e in entries] == ["A-1"]
    [error] = errors
    assert error.row == 3 and "separated by ','" in error.message and "';'" in error.message


def test_an_absurd_weight_is_refused_at_import() -> None:
    """A weight of 10^30 kg is a row error (at most 10 t), not an opaque InvalidOperation on every order later."""
    entries, errors = parse_csv("sku,weight,weight_unit\nA-1,1000000000000000000000000000000,kg\n")
    assert entries == []
    assert "beyond any plausible item weight" in errors[0].message and errors[0].column == "weight"


def test_a_thousands_or_decimal_comma_weight_is_refused_as_ambiguous() -> None:
    """'1,245' could be 1245 or 1.245: refused, saying both readings; '1,5' and '1.245' still read."""
    with pytest.raises(ValueError, match=r"ambiguous.*1245 or 1\.245"):
        parse_weight("1,245", "kg")
    assert parse_weight("1,5", "kg").value == Decimal("1.5")
    assert parse_weight("1.245", "kg").value == Decimal("1.245")


def test_ambiguous_and_negative_spartoo_prices_are_flagged() -> None:
    """parse_money refuses '1,245' as ambiguous and NaN/Infinity/10^30 as implausible; '12,50' stays 12.50."""
    with pytest.raises(ValueError, match="ambiguous"):
        parse_money("1,245")
    for bad in ("NaN", "Infinity", "1" + "0" * 30):
        with pytest.raises(ValueError):
            parse_money(bad)
    assert parse_money("12,50") == Decimal("12.50")
    assert parse_money("1 234,50") == Decimal("1234.50")

"""Fixtures for the notification tests: an order book with one store, branded settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_data import BRANDED

from connector_core import host_settings
from connector_core.db import OrderBook


@pytest.fixture
def book(tmp_path: Path) -> Iterator[OrderBook]:
    """A fresh order book file with the store ``lumiere``."""
    with OrderBook(tmp_path / "orders.sqlite3") as b:
        b.add_store("lumiere", "bazaar", {"token": "x"}, store_settings=BRANDED)
        yield b


@pytest.fixture
def settings() -> host_settings.HostSettings:
    """The branded store's settings, validated."""
    return host_settings.load(BRANDED)

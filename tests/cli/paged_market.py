"""A Bazaar that serves 20 orders in pages of 2 and can send its own process Ctrl-C before page N.

Loaded by ``CONNECTOR_HOST_EXTRA=paged_market:plugin`` in a ``connector-host``
subprocess: ``PAGED_MARKET_INTERRUPT_AT=N`` sends SIGINT (a real signal, as a
terminal's Ctrl-C does) just before page N is handed to the host.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))

from bazaar_plugin import Bazaar, make_order

from connector_core import hookimpl
from connector_core.models import FetchPage
from connector_core.store_context import StoreContext


class PagedBazaar(Bazaar):
    """Bazaar whose fetch can be interrupted by a real SIGINT between two pages."""

    @hookimpl
    def fetch_orders(self, store: StoreContext, since: Any) -> Iterator[FetchPage]:
        at = int(os.environ.get("PAGED_MARKET_INTERRUPT_AT", "0"))
        for number, page in enumerate(super().fetch_orders(store, since), 1):
            if number == at:
                os.kill(os.getpid(), signal.SIGINT)
            yield page


plugin = PagedBazaar(orders=[make_order(i) for i in range(1, 21)], page_size=2)

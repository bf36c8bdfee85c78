"""What a plugin declares to the contract kit where marketplaces legitimately differ (the ``contract_profile`` hook)."""

from __future__ import annotations

from datetime import timedelta

import attrs


@attrs.frozen
class ContractProfile:
    """A plugin's declarations for the contract kit; the defaults are the strictest reading.

    ``refetch_overlap``: how far back before what it already returned the
    plugin re-asks on purpose (Spartoo re-exports a 10-minute window).
    Orders re-yielded from a cursor whose last change (``modified_date``, else
    ``order_date``) lies within this span of the newest change yielded before
    that cursor are fine; re-yields older than that mean the cursor is ignored.

    ``totals_add_up``: the marketplace's figures are complete, so for every
    order ``item_total`` is the sum of its lines' totals (unit price x
    quantity - discount) and ``total`` is ``item_total + shipping_amount +
    payment_fee + tax_amount`` minus the order-level discounts.

    ``partial_shipments``: ``push_shipment`` ships exactly the lines and
    quantities of ``Shipment.items`` (the kit checks it on the sandbox).
    """

    refetch_overlap: timedelta = timedelta(0)
    totals_add_up: bool = False
    partial_shipments: bool = False

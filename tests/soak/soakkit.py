"""Shared pieces of the soak and crash proofs: a fast HTTP policy, the Spartoo host, and the reconciliation.

:func:`reconcile` compares an order book with what the Spartoo sandbox holds
and counts every way they can disagree; a run is sound when every count in
:attr:`Reconciliation.problems` is zero.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import attrs

from connector_core.db import OrderBook
from connector_core.http import HttpPolicy
from connector_core.plugins import PluginHost, get_plugin_manager

FAST_POLICY = HttpPolicy(
    connect_timeout=5.0,
    read_timeout=20.0,
    max_attempts=10,
    backoff_base=0.002,
    backoff_max=0.02,
    max_total_wait=3.0,
    max_quota_wait=0.01,
    request_deadline=30.0,
    sync_deadline=60.0,
)
"""Short waits so faults cost milliseconds; still bounded in count and total time."""

SOAK_FAULTS = {"error_rate": 0.20, "drop_rate": 0.05, "quota_rate": 0.05, "malformed_rate": 0.02}
"""The issue's fault mix: 20 % 5xx, 5 % dropped connections, 5 % quota answers, 2 % exports with a broken order."""

STORE = "soak"


def spartoo_host() -> PluginHost:
    """A plugin host with the Spartoo plugin only (from its entry point)."""
    import connector_spartoo.plugin

    return PluginHost(get_plugin_manager(plugins=[connector_spartoo.plugin], load_entrypoints=False, disabled=()))


def store_settings(sandbox_settings: dict[str, Any]) -> dict[str, Any]:
    """Store settings reaching the sandbox, looking back far enough to see every generated order."""
    return {**sandbox_settings, "initial_lookback_days": 40, "timeout": 20}


def policy_env() -> str:
    """:data:`FAST_POLICY` as the value of ``CONNECTOR_HOST_HTTP_POLICY`` (for host subprocesses)."""
    return json.dumps(attrs.asdict(FAST_POLICY))


@attrs.frozen
class Reconciliation:
    """The order book of one store against the sandbox."""

    sandbox_orders: int
    valid_orders: int
    book_orders: int
    missing: tuple[str, ...]  # valid on the sandbox, not in the book (lost)
    unexpected: tuple[str, ...]  # in the book but not a valid sandbox order
    duplicated_rows: int  # order keys held more than once (the primary key forbids it; counted anyway)
    status_mismatches: tuple[str, ...]  # book's marketplace status differs from the sandbox's
    shipments: int  # outbox entries
    shipments_pushed: int
    shipments_pending: int
    shipments_wrong: tuple[str, ...]  # pushed but not shipped with that tracking number on the sandbox
    duplicate_updates: int  # xml_maj_orders requests that changed nothing (a re-push that reached the sandbox)
    invalid_quarantined: int  # sandbox-invalid orders (no address) with a quarantine row
    invalid_not_quarantined: tuple[str, ...]
    malformed: int  # orders the sandbox broke on purpose
    malformed_quarantined: int
    malformed_not_quarantined: tuple[str, ...]
    rejected_rows: int
    unaccepted: tuple[str, ...] = ()  # valid orders the sandbox still has in status 11 (never accepted)

    @property
    def problems(self) -> dict[str, int]:
        """Every disagreement, counted: all zero for a sound run."""
        return {
            "lost": len(self.missing),
            "unexpected": len(self.unexpected),
            "duplicated_rows": self.duplicated_rows,
            "status_mismatches": len(self.status_mismatches),
            "shipments_not_on_sandbox": len(self.shipments_wrong),
            "shipments_pending": self.shipments_pending,
            "duplicate_updates": self.duplicate_updates,
            "invalid_not_quarantined": len(self.invalid_not_quarantined),
            "malformed_not_quarantined": len(self.malformed_not_quarantined),
            "unaccepted": len(self.unaccepted),
        }


def reconcile(
    db: Path | str, sandbox_rows: list[dict[str, Any]], malformed: list[str], store: str = STORE
) -> Reconciliation:
    """Compare the order book at ``db`` with the sandbox's admin rows and its list of broken orders."""
    by_key = {r["order_key"]: r for r in sandbox_rows}
    valid = {k for k, r in by_key.items() if r["valid"]}
    with OrderBook(db) as book:
        conn = book.conn
        rows = conn.execute("SELECT order_key, marketplace_status FROM orders WHERE store = ?", (store,)).fetchall()
        counts = Counter(r[0] for r in rows)
        held = {r[0]: str(r[1]) for r in rows}
        outbox = book.list_outbox(store=store)
        quarantined = Counter(r[0] for r in conn.execute("SELECT order_key FROM rejected WHERE store = ?", (store,)))
        rejected_rows = int(conn.execute("SELECT count(*) FROM rejected WHERE store = ?", (store,)).fetchone()[0])
    wrong = []
    for entry in outbox:
        if entry.state != "pushed":
            continue
        row = by_key.get(entry.order_key)
        if row is None or row["status"] != "3" or row["tracking_number"] != entry.shipment.tracking_number:
            wrong.append(entry.order_key)
    invalid = sorted(k for k, r in by_key.items() if not r["valid"])
    malformed_keys = sorted(set(malformed))
    return Reconciliation(
        sandbox_orders=len(by_key),
        valid_orders=len(valid),
        book_orders=len(held),
        missing=tuple(sorted(valid - held.keys())),
        unexpected=tuple(sorted(held.keys() - valid)),
        duplicated_rows=sum(n - 1 for n in counts.values() if n > 1),
        status_mismatches=tuple(sorted(k for k in held.keys() & valid if held[k] != by_key[k]["status"])),
        shipments=len(outbox),
        shipments_pushed=sum(e.state == "pushed" for e in outbox),
        shipments_pending=sum(e.state != "pushed" for e in outbox),
        shipments_wrong=tuple(sorted(wrong)),
        duplicate_updates=sum(int(r["update_requests"]) - int(r["update_count"]) for r in sandbox_rows),
        invalid_quarantined=sum(1 for k in invalid if quarantined[k]),
        invalid_not_quarantined=tuple(k for k in invalid if not quarantined[k]),
        malformed=len(malformed_keys),
        malformed_quarantined=sum(1 for k in malformed_keys if quarantined[k]),
        malformed_not_quarantined=tuple(k for k in malformed_keys if not quarantined[k]),
        rejected_rows=rejected_rows,
        unaccepted=tuple(sorted(k for k in valid if by_key[k]["status"] == "11")),
    )

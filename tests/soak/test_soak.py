"""The soak and crash proofs at small sizes, so every test run proves them."""

from __future__ import annotations

import crash
import soak


def test_soak_with_faults_loses_and_duplicates_nothing() -> None:
    """Under 5xx, drops, quota answers and broken orders, the book ends equal to the sandbox, shipments once."""
    figures = soak.run(300, 30, seed=11, time_limit=240, quiet=True, malformed_rate=0.3, arrivals=10)
    assert figures["problems"] == dict.fromkeys(figures["problems"], 0)
    assert figures["orders_in_book"] == figures["valid_orders"] > 250
    assert figures["shipments_pushed"] == 30
    assert figures["invalid_orders_quarantined"] == figures["orders_on_sandbox"] - figures["valid_orders"]
    assert figures["faults_injected"]["error"] > 0 and figures["faults_injected"]["drop"] > 0
    assert figures["faults_injected"]["quota"] > 0
    assert figures["malformed_quarantined"] == figures["malformed_orders_in_imports"] > 0
    assert figures["sound"] is True


def test_soak_of_the_fault_mix_bounds_every_sync_and_leaves_nothing_unaccepted() -> None:
    """20% 5xx, 5% drops, 5% quota, 2% malformed over 400 orders and 8 syncs: each sync within its deadline, sound."""
    figures = soak.run(400, 40, seed=23, time_limit=240, quiet=True, arrivals=7)
    assert figures["problems"] == dict.fromkeys(figures["problems"], 0)  # lost, duplicated, unaccepted ... all 0
    assert figures["orders_in_book"] == figures["valid_orders"] > 300
    assert figures["faults_injected"]["quota"] > 0 and figures["quota_blocks"] > 0
    # the bound: no request runs past the sync deadline, and a request ends at most one read timeout after it
    assert figures["sync_seconds_max"] <= figures["sync_deadline"] + soak.FAST_POLICY.read_timeout
    assert figures["sound"] is True


def test_crash_with_sigkill_loses_and_duplicates_nothing() -> None:
    """Host processes killed with SIGKILL during sync and push, then restarted, leave no loss or duplicate."""
    figures = crash.run(orders=300, shipments=30, kills=5, seed=5, time_limit=150, quiet=True)
    assert figures["runs_killed"] == 5
    assert figures["problems"] == dict.fromkeys(figures["problems"], 0)
    assert figures["orders_in_book"] == figures["valid_orders"]
    assert figures["shipments_pushed"] == 30
    assert figures["sound"] is True

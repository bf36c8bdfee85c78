"""Batched writes: OrderBook.transaction nests as a savepoint, so several records share one commit."""

from __future__ import annotations

import pytest

from connector_core.db import OrderBook
from connector_core.history import RunLog
from connector_core.push.outbox import PushOutcome, PushReport, PushTally


class Boom(Exception):
    """A failure inside a nested write."""


def test_nested_transaction_is_a_savepoint_of_the_outer_one(book: OrderBook) -> None:
    """A nested transaction that fails rolls back only its own writes; the outer one commits the rest."""
    with book.transaction():
        book.add_store("kept", "bazaar", {"token": "t"})
        with pytest.raises(Boom), book.transaction() as c:
            c.execute("UPDATE stores SET marketplace = 'other' WHERE name = 'kept'")
            raise Boom
        book.set_cursor("kept", {"page": 2})
        assert book.conn.in_transaction
    assert not book.conn.in_transaction
    assert book.get_store("kept").marketplace == "bazaar"
    assert book.get_cursor("kept") == {"page": 2}


def test_outer_failure_rolls_back_the_nested_writes(book: OrderBook) -> None:
    """Writes committed by a nested transaction are undone when the outer transaction fails."""
    with pytest.raises(Boom), book.transaction():
        book.add_store("gone", "bazaar", {"token": "t"})
        raise Boom
    assert not book.has_store("gone")


def test_push_tally_counts_each_batch_once_and_matches_a_recount() -> None:
    """The run's counters kept batch by batch equal a count of all outcomes at the end, error line included."""
    states = ["pushed", "pending", "pushed", "failed", "conflict", "pushed", "pending"]
    outcomes = [PushOutcome(i, f"s:{i}", state) for i, state in enumerate(states)]
    run = RunLog(id=1)
    tally = PushTally(run)
    tally.add(outcomes[:2])
    assert run.counts == {"pushed": 1, "deferred": 1, "errors": 0}
    assert run.error is None
    tally.add(outcomes[2:3])
    tally.add(outcomes[3:])
    report = PushReport.from_outcomes("s", outcomes)
    assert run.counts == {"pushed": report.pushed, "deferred": report.retry, "errors": report.failed + report.conflicts}
    assert run.counts == {"pushed": 3, "deferred": 2, "errors": 2}
    assert run.error == "1 failed, 1 in conflict with the marketplace"

"""Pushing shipments: the outbox drained through ``push_shipment``, each result recorded once.

:func:`record_shipment` validates a shipment and writes it to the outbox.
:func:`push_store` drains a store's pending shipments under its lease: each
is sent by :func:`attempt_push` (marketplace calls only, no write) and
recorded by :func:`record_push` in one transaction (outbox state, customer
e-mail, the order's status columns). A transient failure leaves the
shipment pending for the next push; a permanent refusal marks it failed with
the marketplace's reason. A shipment that contradicts what the marketplace
holds (the order was shipped already with another tracking number: the
marketplace refuses it, or says "already there" of a number it never got) is
a ``conflict``: not accepted, no e-mail, both numbers kept on the row.
On a book whose pushers claim rows (PostgreSQL, :class:`~connector_core.db.storage.RowClaims`)
the lease is shared among pushers (a sync still has the store to itself) and
each shipment is claimed with ``FOR UPDATE SKIP LOCKED`` in the transaction
that records its push, so pushers of one store split its outbox.
Every push that has work is recorded in the run history
(:mod:`connector_core.history`). :mod:`connector_core.push.concurrent` runs
the same two steps with many senders.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs

from connector_core import history, notify, quota
from connector_core.db.storage import RowClaims
from connector_core.errors import ConnectorError, QuotaError, TransientError, TransitionError
from connector_core.models import MarketplaceStatus, Order, OrderStatus, PushResult, Shipment, to_json
from connector_core.runtime import Runtime
from connector_core.secrets import redact
from connector_core.store_context import StoreContext

log = logging.getLogger("connector_core.push")

CANONICAL_SHIPMENT = "canonical/shipment"


@attrs.frozen
class PushOutcome:
    """What became of one outbox entry in a push."""

    outbox_id: int
    order_key: str
    state: str  # pushed | pending | failed | conflict
    result: PushResult | None = None
    error: str | None = None


@attrs.frozen
class PushReport:
    """What one push of one store did."""

    store: str
    pushed: int = 0
    already_applied: int = 0
    retry: int = 0
    failed: int = 0
    outcomes: tuple[PushOutcome, ...] = ()
    conflicts: int = 0

    @classmethod
    def from_outcomes(cls, store: str, outcomes: Sequence[PushOutcome]) -> PushReport:
        """Count the outcomes of one push by state."""
        return cls(
            store=store,
            pushed=sum(o.state == "pushed" for o in outcomes),
            already_applied=sum(bool(o.state == "pushed" and o.result and o.result.already_applied) for o in outcomes),
            retry=sum(o.state == "pending" for o in outcomes),
            failed=sum(o.state == "failed" for o in outcomes),
            outcomes=tuple(outcomes),
            conflicts=sum(o.state == "conflict" for o in outcomes),
        )


@attrs.frozen
class PushAttempt:
    """One shipment sent to the marketplace, not yet recorded: its result, or the error it met."""

    outbox_id: int
    order_key: str
    shipment: Shipment
    order: Order | None = None
    result: PushResult | None = None
    error: ConnectorError | None = None


def record_shipment(runtime: Runtime, shipment: Shipment) -> int:
    """Validate a shipment and put it in the outbox; return its outbox id (same shipment, same id)."""
    runtime.host.schemas.validate(CANONICAL_SHIPMENT, to_json(shipment), store=shipment.store)
    return runtime.book.add_shipment(shipment)


def attempt_push(
    runtime: Runtime, store: StoreContext, outbox_id: int, order_key: str, shipment: Shipment
) -> PushAttempt:
    """Push one shipment to the marketplace; write nothing (see :func:`record_push`).

    Nothing is sent while the store's quota is blocked (:mod:`connector_core.quota`): the attempt
    then carries the block as its error and the shipment waits, its attempts not counted.
    """
    try:
        quota.ensure_open(runtime, store)
        order = runtime.book.get_order(store.name, order_key)
        result = runtime.host.push_shipment(store, order, shipment)
    except ConnectorError as err:
        return PushAttempt(outbox_id, order_key, shipment, error=err)
    return PushAttempt(outbox_id, order_key, shipment, order=order, result=result)


def record_push(runtime: Runtime, store: StoreContext, attempt: PushAttempt) -> PushOutcome:
    """Record what a push attempt came to, in one transaction: outbox state, e-mail, order status.

    Inside a transaction the caller holds, it is a savepoint of it
    (:mod:`connector_core.push.concurrent` records a batch per commit).
    """
    book = runtime.book
    with book.transaction():
        return _record(runtime, store, attempt)


def record_pushes(runtime: Runtime, store: StoreContext, attempts: Sequence[PushAttempt]) -> list[PushOutcome]:
    """:func:`record_push` for a batch of attempts, all in one write transaction (one commit).

    The attempts are not wrapped in a savepoint each: a failure to record
    any of them rolls the whole batch back, and its shipments stay pending
    (pushed again, found ``already_applied``).
    """
    with runtime.book.transaction():
        return [_record(runtime, store, attempt) for attempt in attempts]


def _record(runtime: Runtime, store: StoreContext, attempt: PushAttempt) -> PushOutcome:
    book = runtime.book
    outbox_id, order_key, err = attempt.outbox_id, attempt.order_key, attempt.error
    if isinstance(err, QuotaError):  # deferred past the quota window; not a failed attempt
        until = quota.block(runtime, store, err)
        message = quota.blocked_error(runtime, store, until).message
        return PushOutcome(outbox_id, order_key, "pending", error=message)
    if isinstance(err, TransientError):
        attempts = book.mark_retry(outbox_id, err.message)
        if attempts >= runtime.max_push_attempts:
            message = f"gave up after {attempts} attempts: {err.message}"
            book.mark_failed(outbox_id, message)
            return PushOutcome(outbox_id, order_key, "failed", error=message)
        log.info("%s: push of %s will be retried: %s", store.name, order_key, err)
        return PushOutcome(outbox_id, order_key, "pending", error=err.message)
    if isinstance(err, TransitionError):
        earlier = pushed_tracking(runtime, store.name, order_key, exclude=outbox_id)
        if earlier and attempt.shipment.tracking_number not in earlier:  # shipped already, with another number
            return _conflict(runtime, store, attempt, err.message)
    if err is not None:
        book.mark_failed(outbox_id, err.message)
        log.warning("%s: push of %s refused: %s", store.name, order_key, err)
        return PushOutcome(outbox_id, order_key, "failed", error=err.message)
    order, result = attempt.order, attempt.result
    assert order is not None and result is not None
    if not result.accepted:
        message = redact(result.message or "the marketplace did not accept the shipment")
        book.mark_failed(outbox_id, message, result)
        return PushOutcome(outbox_id, order_key, "failed", result=result, error=message)
    tracking = attempt.shipment.tracking_number
    # the order's earlier shipments are read only when they can matter: a fresh push (the usual case)
    # needs no query for them
    earlier = (
        pushed_tracking(runtime, store.name, order_key, exclude=outbox_id)
        if result.already_applied and not attempt.shipment.items
        else []
    )
    if earlier and tracking not in earlier:
        # "already there" cannot be true of a tracking number the marketplace never got: it holds the earlier one
        return _conflict(
            runtime,
            store,
            attempt,
            f"order {order_key} was already shipped with tracking number {earlier[-1]}; the marketplace kept it"
            f" and did not take {tracking}",
        )
    # the e-mail is queued in the same transaction as the outbox row is marked pushed: a crash
    # before the commit re-pushes (already_applied) and queues it then, once
    _queue_notification(runtime, store, outbox_id, order, attempt.shipment)
    book.mark_pushed(outbox_id, result)
    market: MarketplaceStatus | None = result.marketplace_status
    if order.status is not OrderStatus.SHIPPED or (market is not None and market != order.marketplace_status):
        book.update_order_status(store.name, order_key, OrderStatus.SHIPPED, market)
    return PushOutcome(outbox_id, order_key, "pushed", result=result)


def push_store(runtime: Runtime, store_name: str) -> PushReport:
    """Push every pending shipment of the store, one at a time; see the module docstring."""
    book = runtime.book
    if not book.has_pending_shipments(store_name):
        if notify.has_due(book.conn, store=store_name):  # e-mails that failed earlier, now due again
            store = runtime.store_context(store_name)
            try:
                deliver_notifications(runtime, store)
            finally:
                store.http.close()
        return PushReport(store=store_name)
    store = runtime.store_context(store_name)
    outcomes: list[PushOutcome] = []
    claims = isinstance(book, RowClaims)
    try:
        with (
            history.recording(book, "push", store_name, history.sites_of(store.settings)) as run,
            _push_lease(runtime, store_name) as lease,
        ):
            tally = PushTally(run)
            # a push row left "running" by a process that died: with the lease ours alone none other is live;
            # beside other pushers sharing it, the book ends those whose session is gone (PostgreSQL)
            alone = not isinstance(book, RowClaims) or book.lease_holders(store_name) == 1
            book.close_abandoned_runs("push", store_name, keep=run.id, alone=alone)
            for outcome in _claimed(runtime, store, lease) if claims else _in_turn(runtime, store, lease):
                outcomes.append(outcome)
                tally.add((outcome,))
            deliver_notifications(runtime, store)
    finally:
        store.http.close()
    return PushReport.from_outcomes(store_name, outcomes)


def _push_lease(runtime: Runtime, store_name: str) -> Any:
    """The store's lease for a push: shared with other pushers where they claim their shipments, else exclusive."""
    book = runtime.book
    if isinstance(book, RowClaims):
        return book.lease(store_name, purpose="push", ttl=runtime.lease_ttl, wait=runtime.lease_wait, shared=True)
    return book.lease(store_name, purpose="push", ttl=runtime.lease_ttl, wait=runtime.lease_wait)


def _in_turn(runtime: Runtime, store: StoreContext, lease: Any) -> Iterator[PushOutcome]:
    """The store's pending shipments pushed one after the other, under the store's exclusive lease."""
    # read again under the lease: another process may have pushed them meanwhile
    for entry in runtime.book.pending_shipments(store.name):
        lease.check()
        attempt = attempt_push(runtime, store, entry.id, entry.order_key, entry.shipment)
        yield record_push(runtime, store, attempt)


def _claimed(runtime: Runtime, store: StoreContext, lease: Any) -> Iterator[PushOutcome]:
    """Each pending shipment claimed, pushed and recorded in one transaction; other pushers skip it meanwhile.

    The claim (``FOR UPDATE SKIP LOCKED``) is held while the marketplace is
    called, and the push is recorded before it ends, so two pushers of one
    store (an operator's ``push`` beside a worker's job) share its outbox
    without waiting for each other and without sending a shipment twice. A
    shipment left pending (a transient error, a quota block) is not claimed
    again by this push: the claims move on by outbox id.
    """
    book = runtime.book
    assert isinstance(book, RowClaims)
    after = 0
    while True:
        lease.check()
        with book.claim_shipments(store.name, 1, after=after) as entries:
            if not entries:
                return
            entry = entries[0]
            after = entry.id
            outcome = record_push(
                runtime, store, attempt_push(runtime, store, entry.id, entry.order_key, entry.shipment)
            )
        yield outcome


class PushTally:
    """A push run's counters (pushed, deferred to retry, errors: failed or in conflict), kept as it goes.

    Each recorded outcome is counted once, when it is added: recounting every
    outcome so far after each one would make a push of n shipments cost n²/2
    counts (50 million for 10,000), all of it on the thread that records.
    """

    def __init__(self, run: history.RunLog) -> None:
        self._run = run
        self._states: Counter[str] = Counter()

    def add(self, outcomes: Iterable[PushOutcome]) -> None:
        """Count ``outcomes`` and update the run's counters (and its error line) with the totals."""
        self._states.update(o.state for o in outcomes)
        failed, conflicts = self._states["failed"], self._states["conflict"]
        self._run.update(pushed=self._states["pushed"], deferred=self._states["pending"], errors=failed + conflicts)
        if failed or conflicts:
            self._run.error = f"{failed} failed, {conflicts} in conflict with the marketplace"


def pushed_tracking(runtime: Runtime, store: str, order_key: str, *, exclude: int | None = None) -> list[str]:
    """Tracking numbers of the order's shipments the marketplace took already, oldest first."""
    return [
        e.shipment.tracking_number
        for e in runtime.book.order_shipments(store, order_key)
        if e.state == "pushed" and e.id != exclude
    ]


def _conflict(runtime: Runtime, store: StoreContext, attempt: PushAttempt, message: str) -> PushOutcome:
    """The shipment contradicts what the marketplace holds: not accepted, no e-mail, kept in the outbox as such."""
    earlier = pushed_tracking(runtime, store.name, attempt.order_key, exclude=attempt.outbox_id)
    conflict = {
        "tracking_number": attempt.shipment.tracking_number,
        "marketplace_tracking_number": earlier[-1] if earlier else None,
        "reason": redact(message),
    }
    runtime.book.mark_conflict(attempt.outbox_id, redact(message), conflict)
    log.warning("%s: shipment of %s is in conflict with the marketplace: %s", store.name, attempt.order_key, message)
    return PushOutcome(attempt.outbox_id, attempt.order_key, "conflict", result=attempt.result, error=redact(message))


def _queue_notification(
    runtime: Runtime, store: StoreContext, outbox_id: int, order: Order, shipment: Shipment
) -> None:
    try:
        notify.queue_for_shipment(
            runtime.book.conn,
            store=store.name,
            outbox_id=outbox_id,
            order=order,
            shipment=shipment,
            settings=runtime.host_settings(store),
        )
    except Exception as exc:  # the push stands whatever happens to the e-mail
        log.warning("%s: could not queue the e-mail of shipment %d: %s", store.name, outbox_id, redact(str(exc)))


def deliver_notifications(runtime: Runtime, store: StoreContext) -> notify.DeliveryReport:
    """Send the store's due customer e-mails (one SMTP session); failures are recorded on each row, never raised."""
    try:
        sender = notify.sender_for_settings(runtime.host_settings(store), runtime.mail_outbox())
        return notify.deliver_pending(runtime.book.conn, sender, store=store.name)
    except Exception as exc:
        log.warning("%s: e-mail delivery failed: %s", store.name, redact(str(exc)))
        return notify.DeliveryReport()

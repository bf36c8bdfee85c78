"""The one way the host writes a moment as text: ISO 8601 in UTC, ending in ``Z``.

Every timestamp column of the order book, the outbox and the notification
queue is written by :func:`utc_iso`. ``fixed=True`` always writes the
microseconds, so that such texts compare in time order as plain strings (the
notification queue selects due rows with ``next_attempt_at <= now``).
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current moment, aware, in UTC."""
    return datetime.now(UTC)


def utc_iso(value: datetime | None = None, *, fixed: bool = False) -> str:
    """``value`` (default: now) as ISO 8601 in UTC with a ``Z``; naive values are taken as UTC."""
    moment = now() if value is None else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if fixed:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.isoformat().replace("+00:00", "Z")


def now_iso() -> str:
    """The current UTC time as ISO 8601 (``...Z``)."""
    return utc_iso()


def parse_iso(text: str) -> datetime:
    """A text written by :func:`utc_iso` (or any ISO 8601 time; naive taken as UTC) as an aware datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

"""Background jobs: marketplace syncs and shipment pushes run by procrastinate workers.

A job is one store's sync or one store's outbox push. Both are deferred with
``lock=<store>`` so two jobs of one store never overlap (a sync and a push
both write that store's rows), and with ``queueing_lock`` so a store never has
a second *waiting* job of one kind: asking again while one waits is a no-op
rather than a pile-up. The queue lives in PostgreSQL (procrastinate needs
it); the order book is a separate setting, so a SQLite book can be worked by
a PostgreSQL queue. The worker opens the book itself from its target, so no
path or URL travels inside a job's arguments (and none is shown by
``jobs list``).

procrastinate and psycopg come with the ``postgres`` extra; importing this
package without them raises a one-line :class:`ConfigError` saying so.
"""

from __future__ import annotations

from connector_core.jobs.queue import (
    QUEUE_ENV,
    JobLine,
    check_queue,
    defer_push,
    defer_sync,
    enqueue_due,
    enqueue_due_async,
    list_jobs,
    make_app,
    queue_url,
    retry_stalled,
)

__all__ = [
    "QUEUE_ENV",
    "JobLine",
    "check_queue",
    "defer_push",
    "defer_sync",
    "enqueue_due",
    "enqueue_due_async",
    "list_jobs",
    "make_app",
    "queue_url",
    "retry_stalled",
]

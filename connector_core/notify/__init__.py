"""Customer e-mails: rendered once (:mod:`.render`), queued with the push (:mod:`.queue`), delivered
through a sender (:mod:`.senders`: SMTP, one session per delivery run, or ``.eml`` files)."""

from connector_core.notify.queue import (
    BACKOFF_BASE,
    BACKOFF_MAX,
    LEASE_SECONDS,
    STATES,
    DeliveryReport,
    Notification,
    backoff,
    deliver_pending,
    get_notification,
    has_due,
    list_notifications,
    message_bytes,
    queue_for_shipment,
    retry_failed,
)
from connector_core.notify.render import KIND_SHIPMENT, build_shipment_confirmation, customer_email, message_id_for
from connector_core.notify.senders import EmlOutboxSender, Sender, SmtpSender, sender_for_settings, session

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_MAX",
    "KIND_SHIPMENT",
    "LEASE_SECONDS",
    "STATES",
    "DeliveryReport",
    "EmlOutboxSender",
    "Notification",
    "Sender",
    "SmtpSender",
    "backoff",
    "build_shipment_confirmation",
    "customer_email",
    "deliver_pending",
    "get_notification",
    "has_due",
    "list_notifications",
    "message_bytes",
    "message_id_for",
    "queue_for_shipment",
    "retry_failed",
    "sender_for_settings",
    "session",
]

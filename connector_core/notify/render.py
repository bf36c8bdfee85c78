"""Rendering customer e-mails: the shipment confirmation, from Jinja2 templates with the store's branding.

Templates are ``templates/shipment_confirmation.{txt,html}.j2`` beside this
module; HTML is autoescaped. The message is built once, at queue time
(:mod:`connector_core.notify.queue`), and every retry sends exactly its bytes.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from functools import cache
from typing import Any

from connector_core.host_settings import HostSettings
from connector_core.models import Address, Order, Shipment

KIND_SHIPMENT = "shipment_confirmation"


@cache
def _environment() -> Any:
    import jinja2  # imported on first use: most commands never render an e-mail

    return jinja2.Environment(
        loader=jinja2.PackageLoader("connector_core.notify", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html"), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _address_lines(address: Address | None) -> list[str]:
    if address is None:
        return []
    city = " ".join(p for p in (address.postal_code, address.city) if p)
    parts = [address.name, address.company, address.street1, address.street2, address.street3, city]
    parts += [address.state, address.country]
    return [p for p in parts if p]


def customer_email(order: Order) -> str | None:
    """The address the customer's e-mails go to: the buyer's, else the ship-to's or bill-to's."""
    for candidate in (order.customer.email, order.ship_to.email, order.bill_to.email if order.bill_to else None):
        if candidate and "@" in candidate:
            return candidate.strip()
    return None


def message_id_for(store: str, outbox_id: int, order: Order, shipment: Shipment, domain: str) -> str:
    """The deterministic Message-ID of a shipment confirmation."""
    digest = hashlib.sha256(
        "\x1f".join((KIND_SHIPMENT, store, str(outbox_id), order.order_key, shipment.tracking_number)).encode()
    ).hexdigest()[:32]
    return f"<shipment-{digest}@{domain}>"


def _shipped_items(order: Order, shipment: Shipment) -> list[dict[str, Any]]:
    wanted = {i.line_key: i.quantity for i in shipment.items}
    out = []
    for item in order.items:
        if wanted and item.line_key not in wanted:
            continue
        out.append(
            {
                "name": item.name,
                "sku": item.sku,
                "quantity": wanted.get(item.line_key, item.quantity),
                "image_url": item.image_url,
                "options": [{"name": o.name, "value": o.value} for o in item.options],
            }
        )
    return out


def build_shipment_confirmation(
    order: Order,
    shipment: Shipment,
    settings: HostSettings,
    *,
    store_name: str,
    recipient: str,
    message_id: str,
    date: datetime | None = None,
) -> EmailMessage:
    """The shipment confirmation as a ``multipart/alternative`` message (plain text + HTML)."""
    branding = settings.branding
    shop = _one_line(branding.display_name or store_name)
    sender_name = _one_line(branding.sender_name or shop)
    subject = _one_line(f"{shop}: your order {order.order_number} has shipped")
    notes = shipment.notes_to_buyer if settings.notifications.include_notes_to_buyer else None
    context = {
        "subject": subject,
        "shop_name": shop,
        "sender_name": sender_name,
        "logo_url": branding.logo_url,
        "accent_colour": branding.accent_colour,
        "footer_text": branding.footer_text,
        "customer_name": order.customer.name or order.ship_to.name,
        "order_number": order.order_number,
        "tracking_number": shipment.tracking_number,
        "carrier": shipment.carrier,
        "service": shipment.service,
        "ship_date": shipment.ship_date.date().isoformat(),
        "items": _shipped_items(order, shipment),
        "ship_to_lines": _address_lines(order.pickup_point.address if order.pickup_point else order.ship_to),
        "notes_to_buyer": notes.strip() if notes else None,
    }
    env = _environment()
    text = env.get_template("shipment_confirmation.txt.j2").render(context)
    html = env.get_template("shipment_confirmation.html.j2").render(context)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = formataddr((sender_name, branding.sender_email or ""))
    msg["To"] = formataddr((_one_line(order.customer.name or ""), recipient))
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = message_id
    msg["X-Connector-Order"] = _one_line(f"{order.store} {order.order_key}")
    msg["X-Connector-Tracking"] = _one_line(shipment.tracking_number)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


# -- the queue -----------------------------------------------------------------

"""Rendering the shipment confirmation: branding, items, notes, escaping."""

from __future__ import annotations

import email
import email.policy

import attrs
from notify_data import BRANDED, make_order, make_shipment

from connector_core import host_settings
from connector_core.notify import build_shipment_confirmation, customer_email, message_id_for


def _parts(msg: email.message.EmailMessage) -> tuple[str, str]:
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_message_carries_branding_items_and_tracking(settings: host_settings.HostSettings) -> None:
    """Both parts show the shop's branding, the tracking data and every shipped item (HTML with images)."""
    order = make_order()
    shipment = make_shipment(order)
    msg = build_shipment_confirmation(
        order, shipment, settings, store_name="lumiere", recipient="alice@buyer.example", message_id="<m1@x>"
    )
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "Maison Lumière: your order A1 has shipped"
    assert msg["From"].addresses[0].addr_spec == "care@lumiere.example"
    assert msg["From"].addresses[0].display_name == "Lumière customer care"
    assert msg["To"].addresses[0].addr_spec == "alice@buyer.example"
    assert msg["Message-ID"] == "<m1@x>"
    text, html = _parts(msg)
    for part in (text, html):
        assert "TRK123456FR" in part
        assert "Colissimo" in part
        assert "Home signature" in part
        assert "Wool socks" in part
        assert "Thanks for shopping with us!" in part
        assert "Maison Lumière, 12 rue des Lilas, Lyon" in part
    assert 'src="https://img.example/shoe.jpg"' in html
    assert 'src="https://img.example/sock.jpg"' in html
    assert 'src="https://cdn.lumiere.example/logo.png"' in html
    assert "#AA3366" in html
    assert "2 x Wool socks (ref. SOCK-1)" in text
    assert "size: 42" in text


def test_html_part_escapes_marketplace_text(settings: host_settings.HostSettings) -> None:
    """Item names go into the HTML escaped, into the plain text as they are."""
    order = make_order()
    msg = build_shipment_confirmation(
        order, make_shipment(order), settings, store_name="lumiere", recipient="a@b.example", message_id="<m@x>"
    )
    text, html = _parts(msg)
    assert "Derby &lt;b&gt;shoe&lt;/b&gt; &amp; co" in html
    assert "<b>shoe</b>" not in html
    assert "Derby <b>shoe</b> & co" in text


def test_notes_to_buyer_follow_the_setting() -> None:
    """With include_notes_to_buyer off, the shipment's note stays out of both parts."""
    doc = {**BRANDED, "notifications": {"shipment_confirmation": True, "include_notes_to_buyer": False}}
    settings = host_settings.load(doc)
    order = make_order()
    msg = build_shipment_confirmation(
        order, make_shipment(order), settings, store_name="lumiere", recipient="a@b.example", message_id="<m@x>"
    )
    text, html = _parts(msg)
    assert "Thanks for shopping with us!" not in text
    assert "Thanks for shopping with us!" not in html
    assert "TRK123456FR" in text


def test_partial_shipment_lists_only_its_lines(settings: host_settings.HostSettings) -> None:
    """A partial shipment's message lists the lines and quantities it carries, not the whole order."""
    from connector_core.models import ShipmentItem

    order = make_order()
    shipment = make_shipment(order, items=[ShipmentItem("2", 1)])
    msg = build_shipment_confirmation(
        order, shipment, settings, store_name="lumiere", recipient="a@b.example", message_id="<m@x>"
    )
    text, _ = _parts(msg)
    assert "1 x Wool socks" in text
    assert "Derby" not in text


def test_store_name_stands_in_for_missing_display_name() -> None:
    """Without branding.display_name the subject and From name use the store's name."""
    settings = host_settings.load(
        {"branding": {"sender_email": "s@shop.example"}, "notifications": {"shipment_confirmation": True}}
    )
    order = make_order()
    msg = build_shipment_confirmation(
        order, make_shipment(order), settings, store_name="lumiere", recipient="a@b.example", message_id="<m@x>"
    )
    assert msg["Subject"] == "lumiere: your order A1 has shipped"
    assert msg["From"].addresses[0].display_name == "lumiere"


def test_message_id_is_deterministic_per_shipment() -> None:
    """The same shipment always gets the same Message-ID; another outbox id gets another one."""
    order = make_order()
    shipment = make_shipment(order)
    first = message_id_for("lumiere", 7, order, shipment, "lumiere.example")
    assert first == message_id_for("lumiere", 7, order, shipment, "lumiere.example")
    assert first != message_id_for("lumiere", 8, order, shipment, "lumiere.example")
    assert first.startswith("<shipment-") and first.endswith("@lumiere.example>")


def test_customer_email_falls_back_to_ship_to() -> None:
    """Without a buyer e-mail the ship-to e-mail is used; without either there is none."""
    order = make_order()
    no_buyer = attrs.evolve(order, customer=attrs.evolve(order.customer, email=None))
    assert customer_email(no_buyer) is None
    with_ship_to = attrs.evolve(no_buyer, ship_to=attrs.evolve(order.ship_to, email="ship@buyer.example"))
    assert customer_email(with_ship_to) == "ship@buyer.example"


def test_rendered_bytes_parse_back_identically(settings: host_settings.HostSettings) -> None:
    """The wire form (CRLF, SMTP policy) parses back to the same subject and parts."""
    order = make_order()
    msg = build_shipment_confirmation(
        order, make_shipment(order), settings, store_name="lumiere", recipient="a@b.example", message_id="<m@x>"
    )
    raw = msg.as_bytes(policy=email.policy.SMTP)
    assert b"\r\n" in raw
    back = email.message_from_bytes(raw, policy=email.policy.default)
    assert back["Subject"] == msg["Subject"]
    assert [p.replace("\r\n", "\n") for p in _parts(back)] == list(_parts(msg))

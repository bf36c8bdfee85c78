"""Packing slips as PDF (fpdf2): one page per order, with the store's branding.

Each slip has the store's name (or logo) on a bar of its accent colour, the
order number and date, the ship-to address (or the pick-up point), the items
with their thumbnails, options, SKU, quantity and warehouse location, the
notes to buyer of the order's latest shipment, the buyer's notes and gift
message, and the store's footer text. Images come through
:class:`~connector_core.web.images.ImageFetcher` (bounded in time and size);
a missing one is drawn as a placeholder box.

Text is set in DejaVu Sans when the system has it (any script); otherwise in
the PDF core font Helvetica, whose Latin-1 range is all it can show, so other
characters are transliterated (accents dropped) or replaced by ``?``.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import attrs
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from connector_core.host_settings import HostSettings
from connector_core.models import Address, Order
from connector_core.web.images import ImageFetcher

FONT_PATHS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
)
THUMB = 16.0  # mm


@attrs.frozen
class SlipOrder:
    """One order to print, with what the slip shows beside it."""

    order: Order
    settings: HostSettings
    notes_to_buyer: str | None = None


def _unicode_font() -> Path | None:
    for path in FONT_PATHS:
        if path.is_file():
            return path
    return None


class _Slip(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4", unit="mm")
        self.set_auto_page_break(auto=True, margin=15)
        self.set_creator("connector-host")
        font = _unicode_font()
        if font is not None:
            self.add_font("Body", "", str(font))
            bold = font.with_name("DejaVuSans-Bold.ttf")
            self.add_font("Body", "B", str(bold if bold.is_file() else font))
            self.family_name = "Body"
            self.unicode = True
        else:
            self.family_name = "Helvetica"
            self.unicode = False

    def text_of(self, value: object) -> str:
        text = "" if value is None else str(value)
        if self.unicode:
            return text
        try:
            text.encode("latin-1")
            return text
        except UnicodeEncodeError:
            plain = unicodedata.normalize("NFKD", text)
            return (
                "".join(ch for ch in plain if not unicodedata.combining(ch))
                .encode("latin-1", "replace")
                .decode("latin-1")
            )

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family_name, "B" if bold else "", size)

    def line_text(self, text: object, size: float = 10, bold: bool = False, h: float = 5) -> None:
        self.font(size, bold)
        self.multi_cell(0, h, self.text_of(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _hex(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    try:
        return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)
    except (ValueError, IndexError):
        return 31, 111, 235


def _address(address: Address | None) -> list[str]:
    if address is None:
        return []
    city = " ".join(p for p in (address.postal_code, address.city) if p)
    parts = [address.name, address.company, address.street1, address.street2, address.street3, city]
    parts += [address.state, address.country, address.phone]
    return [p for p in parts if p]


def _placeholder(pdf: _Slip, x: float, y: float) -> None:
    pdf.set_draw_color(180, 180, 180)
    pdf.set_fill_color(240, 240, 240)
    pdf.rect(x, y, THUMB, THUMB, style="DF")
    pdf.line(x, y, x + THUMB, y + THUMB)
    pdf.line(x + THUMB, y, x, y + THUMB)


def _image(pdf: _Slip, data: bytes | None, x: float, y: float, w: float, h: float) -> bool:
    if data is None:
        return False
    try:
        pdf.image(io.BytesIO(data), x=x, y=y, w=w, h=h, keep_aspect_ratio=True)
    except Exception:  # a picture fpdf cannot embed is a placeholder, never a failed slip
        return False
    return True


def _page(pdf: _Slip, slip: SlipOrder, images: ImageFetcher) -> None:
    order, branding = slip.order, slip.settings.branding
    pdf.add_page()
    r, g, b = _hex(branding.accent_colour)
    pdf.set_fill_color(r, g, b)
    pdf.rect(0, 0, pdf.w, 22, style="F")
    shop = branding.display_name or order.store
    logo = images.get(branding.logo_url)
    if not _image(pdf, logo, 10, 3, 60, 16):
        pdf.set_text_color(255, 255, 255)
        pdf.set_xy(10, 6)
        pdf.font(16, bold=True)
        pdf.cell(0, 10, pdf.text_of(shop))
    pdf.set_text_color(0, 0, 0)
    pdf.set_xy(10, 28)
    pdf.line_text(f"Packing slip - order {order.order_number}", 15, bold=True, h=7)
    pdf.line_text(f"{shop} - {order.marketplace} - ordered {order.order_date.date().isoformat()}", 9)
    pdf.ln(3)
    top = pdf.get_y()
    pdf.line_text("Ship to", 10, bold=True)
    lines = _address(order.ship_to)
    if order.pickup_point is not None:
        point = order.pickup_point
        lines = [f"Pick-up point {point.id}" + (f" ({point.name})" if point.name else ""), *_address(point.address)]
        lines.append("Buyer: " + (order.ship_to.name or order.customer.name or ""))
    for text in lines:
        pdf.line_text(text, 10)
    pdf.set_y(max(pdf.get_y(), top) + 4)
    _items(pdf, order, images)
    notes: list[tuple[str, str | None]] = [
        ("Notes to buyer", slip.notes_to_buyer),
        ("Buyer's notes", order.customer_notes),
        ("Gift message", order.gift_message if order.gift else None),
    ]
    for label, note in notes:
        if note:
            pdf.ln(2)
            pdf.line_text(label, 10, bold=True)
            pdf.line_text(note, 10)
    if branding.footer_text:
        pdf.ln(4)
        pdf.set_text_color(90, 90, 90)
        pdf.line_text(branding.footer_text, 8)
        pdf.set_text_color(0, 0, 0)


def _items(pdf: _Slip, order: Order, images: ImageFetcher) -> None:
    widths = (THUMB + 4, 78, 40, 14, 28)
    pdf.font(9, bold=True)
    pdf.set_fill_color(235, 235, 235)
    for width, title in zip(widths, ("", "Item", "SKU", "Qty", "Location"), strict=True):
        pdf.cell(width, 7, title, border="B", fill=True)
    pdf.ln(8)
    for item in order.items:
        if pdf.get_y() + THUMB + 4 > pdf.h - 15:
            pdf.add_page()
        y = pdf.get_y()
        x = pdf.l_margin
        if not _image(pdf, images.get(item.image_url), x, y, THUMB, THUMB):
            _placeholder(pdf, x, y)
        pdf.set_xy(x + widths[0], y)
        pdf.font(9, bold=True)
        pdf.multi_cell(widths[1], 4.5, pdf.text_of(item.name), new_x=XPos.RIGHT, new_y=YPos.TOP)
        pdf.set_xy(x + sum(widths[:2]), y)
        pdf.font(9)
        pdf.cell(widths[2], 4.5, pdf.text_of(item.sku or "-"))
        pdf.cell(widths[3], 4.5, str(item.quantity))
        pdf.cell(widths[4], 4.5, pdf.text_of(item.warehouse_location or "-"))
        if item.options:
            pdf.set_xy(x + widths[0], y + 9)
            pdf.font(8)
            pdf.set_text_color(80, 80, 80)
            pdf.multi_cell(
                widths[1],
                4,
                pdf.text_of(", ".join(f"{o.name}: {o.value}" for o in item.options)),
                new_x=XPos.RIGHT,
                new_y=YPos.TOP,
            )
            pdf.set_text_color(0, 0, 0)
        pdf.set_y(y + THUMB + 3)
        pdf.set_draw_color(220, 220, 220)
        pdf.line(pdf.l_margin, pdf.get_y() - 1.5, pdf.w - pdf.r_margin, pdf.get_y() - 1.5)


def packing_slips(slips: Sequence[SlipOrder], images: ImageFetcher) -> bytes:
    """One PDF with a page (or more) per order."""
    pdf = _Slip()
    pdf.set_title("Packing slips" if len(slips) != 1 else f"Packing slip {slips[0].order.order_number}")
    for slip in slips:
        _page(pdf, slip, images)
    return bytes(pdf.output())

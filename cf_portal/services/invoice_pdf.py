"""An invoice of the account as a PDF for the customer's accountant (reportlab), and the provider's own PDF of it.

- Read through `invoice_document`, which finds the invoice by id *and* account: another account's invoice is
  "not found", the same as one that does not exist.
- Money stays integer cents until it is written, formatted by `pricing.format_money` as on the Billing page. The
  invoice's discount (a coupon) is shared out over its lines in proportion to their amounts, in whole cents, the
  last line taking the remainder, so the lines' discounts add up to the invoice's exactly (`share_discount`).
- Every name the customer typed (the account's, the license's reference name) is drawn as text: it is escaped
  before reportlab's paragraph markup reads it, so `<script>` prints as `<script>`. The font is DejaVu Sans
  (Debian's fonts-dejavu-core, installed by scripts/bootstrap.sh), embedded, so accented, Greek and Cyrillic
  names print as typed and can be copied out of the PDF.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

from sqlmodel import Session, select

from cf_portal.models import Account, Invoice, InvoiceLine, License
from cf_portal.payments.provider import PaymentProvider
from cf_portal.services.errors import NotFound
from cf_portal.services.pricing import format_money

SELLER = "ChatFortress"
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts")
FONT, BOLD = "DejaVuSans", "DejaVuSans-Bold"


@dataclass(frozen=True)
class PdfLine:
    license_name: str  # the license's reference name
    description: str  # what was charged, without the reference name in front
    period: str
    quantity: int
    unit_amount: int  # cents; 0 for a prorated change, which has no unit price
    discount: int  # cents: this line's share of the invoice's discount
    amount: int  # cents, before the discount


@dataclass(frozen=True)
class InvoiceDocument:
    invoice_id: int
    provider_invoice_id: str | None
    account_name: str
    number: str
    issued: datetime
    status: str
    currency: str
    subtotal: int
    discount: int
    total: int
    lines: tuple[PdfLine, ...]

    @property
    def paid(self) -> bool:
        return self.status == "paid"

    @property
    def filename(self) -> str:
        """`invoice-<number>.pdf`, with anything but letters, digits, '.', '_' and '-' of the number left out."""
        return f"invoice-{re.sub(r'[^A-Za-z0-9._-]', '', self.number) or self.invoice_id}.pdf"


def share_discount(amounts: list[int], discount: int) -> list[int]:
    """`discount` (cents) shared over lines of `amounts` in proportion, rounded down, the last line taking what
    rounding left: the shares always add up to `discount`."""
    if not amounts:
        return []
    whole = sum(amounts)
    shares = [discount * amount // whole if whole else 0 for amount in amounts[:-1]]
    return [*shares, discount - sum(shares)]


def _day(moment: datetime) -> str:
    return f"{moment:%b} {moment.day}, {moment.year}"


def invoice_document(session: Session, *, account_id: int, invoice_id: int) -> InvoiceDocument:
    """The invoice `invoice_id` of the account `account_id` with its lines; NotFound for any other."""
    row = session.exec(select(Invoice, Account, License.reference_name)
                       .join(Account, Account.id == Invoice.account_id)
                       .join(License, License.id == Invoice.license_id, isouter=True)
                       .where(Invoice.id == invoice_id, Invoice.account_id == account_id)).first()
    if row is None:
        raise NotFound("That invoice")
    inv, account, reference_name = row
    rows = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == inv.id).order_by(InvoiceLine.id)).all()
    period = _day(inv.period_start) + (f" – {_day(inv.period_end)}" if inv.period_end else "")
    shares = share_discount([line.amount for line in rows], inv.discount)
    lines = []
    for line, share in zip(rows, shares, strict=True):
        name, description = reference_name, line.description
        if name and description.startswith(f"{name} · "):
            description = description[len(name) + 3:]
        lines.append(PdfLine(license_name=name or "", description=description, period=period,
                             quantity=line.quantity, unit_amount=line.unit_amount, discount=share,
                             amount=line.amount))
    return InvoiceDocument(invoice_id=inv.id, provider_invoice_id=inv.provider_invoice_id, account_name=account.name,
                           number=inv.number, issued=inv.created_at, status=inv.status, currency=inv.currency,
                           subtotal=inv.subtotal, discount=inv.discount, total=inv.total, lines=tuple(lines))


def provider_document_url(session: Session, provider: PaymentProvider, *, account_id: int,
                          invoice_id: int) -> str | None:
    """The payment provider's own PDF of the account's invoice (Stripe's), or None when it keeps none; NotFound
    for another account's invoice. The provider is asked each time (its links are not stored)."""
    document = invoice_document(session, account_id=account_id, invoice_id=invoice_id)
    if not provider.hosts_invoice_documents or not document.provider_invoice_id:
        return None
    return provider.invoice_document_url(invoice_id=document.provider_invoice_id)


@lru_cache
def _register_fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for folder in FONT_DIRS:
        regular, bold = Path(folder, f"{FONT}.ttf"), Path(folder, f"{BOLD}.ttf")
        if regular.is_file() and bold.is_file():
            pdfmetrics.registerFont(TTFont(FONT, str(regular)))
            pdfmetrics.registerFont(TTFont(BOLD, str(bold)))
            return
    raise RuntimeError(f"The invoice PDF needs the DejaVu Sans fonts ({FONT}.ttf, {BOLD}.ttf) in one of "
                       f"{', '.join(FONT_DIRS)}: install Debian's fonts-dejavu-core (scripts/bootstrap.sh does).")


def render_pdf(document: InvoiceDocument) -> bytes:
    """The invoice as a one-page (or longer) A4 PDF: seller and customer, number and date, the lines, the totals,
    and whether it is paid or due."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    _register_fonts()
    body = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12)
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10)
    right = ParagraphStyle("right", parent=small, alignment=TA_RIGHT)
    heading = ParagraphStyle("heading", parent=body, fontName=BOLD, fontSize=18, leading=22)
    strong = ParagraphStyle("strong", parent=body, fontName=BOLD)

    def text(value: object, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(str(value)), style)  # never markup: a name is printed as typed

    def money(cents: int) -> str:
        return format_money(cents, document.currency)

    state = "Paid" if document.paid else ("Due" if document.status == "open" else document.status.capitalize())
    story = [
        text(f"{SELLER} · Invoice", heading), Spacer(1, 4 * mm),
        text("Billed to", strong), text(document.account_name), Spacer(1, 3 * mm),
        text(f"Invoice number: {document.number}"),
        text(f"Invoice date: {_day(document.issued)} (UTC)"),
        text(f"Status: {state}"), Spacer(1, 6 * mm),
    ]
    header = ["License", "Description", "Period", "Qty", "Unit price", "Discount", "Amount"]
    th = ParagraphStyle("th", parent=small, fontName=BOLD)
    th_right = ParagraphStyle("th_right", parent=th, alignment=TA_RIGHT)
    rows = [[text(h, th if i < 3 else th_right) for i, h in enumerate(header)]]
    for line in document.lines:
        rows.append([text(line.license_name, small), text(line.description, small), text(line.period, small),
                     text(line.quantity, right),
                     text(money(line.unit_amount) if line.unit_amount or not line.amount else "prorated", right),
                     text(f"−{money(line.discount)}" if line.discount else "—", right),
                     text(money(line.amount), right)])
    table = Table(rows, colWidths=[28 * mm, 42 * mm, 30 * mm, 10 * mm, 20 * mm, 22 * mm, 22 * mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
        ("LINEBELOW", (0, 1), (-1, -1), 0.3, colors.grey),
    ]))
    totals = [["Subtotal", money(document.subtotal)]]
    if document.discount:
        totals.append(["Discount", f"−{money(document.discount)}"])
    totals.append(["Total", money(document.total)])
    totals.append(["Paid" if document.paid else "Amount due", money(document.total)])
    totals_table = Table([[text(label, strong if label == "Total" else body),
                           text(value, ParagraphStyle("tr", parent=strong if label == "Total" else body,
                                                      alignment=TA_RIGHT))] for label, value in totals],
                         colWidths=[40 * mm, 30 * mm], hAlign="RIGHT")
    totals_table.setStyle(TableStyle([("LINEABOVE", (0, -2), (-1, -2), 0.8, colors.black)]))
    story += [table, Spacer(1, 6 * mm), totals_table]

    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, title=f"Invoice {document.number}", author=SELLER,
                      leftMargin=15 * mm, rightMargin=15 * mm, topMargin=18 * mm, bottomMargin=18 * mm
                      ).build(story)
    return out.getvalue()

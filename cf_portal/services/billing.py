"""Billing: the account's invoices (their lines carry each license's reference name). Saved cards:
`cf_portal.services.payment_methods`."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal.models import Account, Invoice, InvoiceLine, License
from cf_portal.payments.provider import InvoiceData
from cf_portal.services.errors import NotFound
from cf_portal.services.pricing import format_money


def save_invoice(session: Session, *, lic: License, invoice: InvoiceData, kind: str, period_start: datetime,
                 period_end: datetime, now: datetime, period_index: int | None = None) -> Invoice:
    """Write a paid invoice of the provider with its lines, in the caller's transaction (which decides, by a
    conditional update, that it is the only one to write it)."""
    row = Invoice(account_id=lic.account_id, license_id=lic.id, provider_invoice_id=invoice.provider_id[:64],
                  number=invoice.number[:40], status=invoice.status, currency=invoice.currency,
                  subtotal=invoice.subtotal, discount=invoice.discount, total=invoice.total,
                  period_start=period_start, period_end=period_end, created_at=now, kind=kind,
                  period_index=period_index)
    session.add(row)
    session.flush()
    for line in invoice.lines:
        session.add(InvoiceLine(invoice_id=row.id, description=line.description[:200], quantity=line.quantity,
                                unit_amount=line.unit_amount, amount=line.amount))
    return row


class InvoiceView(BaseModel):
    id: int
    number: str
    created_at: datetime
    description: str  # the lines, e.g. "Sales team · Phishing Simulator Standard × 5"
    subtotal: str
    discount: str  # "" when none
    total: str
    status: str


def list_invoices(session: Session, *, account_id: int, license_id: int | None = None,
                  limit: int = 100) -> list[InvoiceView]:
    query = select(Invoice).where(Invoice.account_id == account_id)
    if license_id is not None:
        query = query.where(Invoice.license_id == license_id)
    invoices = session.exec(query.order_by(Invoice.created_at.desc(), Invoice.id.desc()).limit(limit)).all()
    lines: dict[int, list[str]] = {}
    if invoices:
        for line in session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id.in_([i.id for i in invoices]))
                                 .order_by(InvoiceLine.id)):
            lines.setdefault(line.invoice_id, []).append(line.description)
    return [
        InvoiceView(
            id=inv.id, number=inv.number, created_at=inv.created_at, description="; ".join(lines.get(inv.id, [])),
            subtotal=format_money(inv.subtotal, inv.currency),
            discount=f"−{format_money(inv.discount, inv.currency)}" if inv.discount else "",
            total=format_money(inv.total, inv.currency), status=inv.status,
        )
        for inv in invoices
    ]


class InvoiceLineView(BaseModel):
    description: str
    quantity: int
    unit_price: str
    amount: str


class InvoiceDetail(BaseModel):
    invoice: InvoiceView
    account_name: str
    period: str  # "Nov 29, 2026 – Dec 29, 2026"
    lines: list[InvoiceLineView]


def _day(moment: datetime) -> str:
    return f"{moment:%b} {moment.day}, {moment.year}"


def invoice_detail(session: Session, *, account_id: int, invoice_id: int) -> InvoiceDetail:
    """One invoice of the account with its lines; another account's invoice is "not found"."""
    row = session.exec(select(Invoice, Account).join(Account, Account.id == Invoice.account_id)
                       .where(Invoice.id == invoice_id, Invoice.account_id == account_id)).first()
    if row is None:
        raise NotFound("That invoice")
    inv, account = row
    lines = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == inv.id).order_by(InvoiceLine.id)).all()
    view = InvoiceView(
        id=inv.id, number=inv.number, created_at=inv.created_at, description="; ".join(li.description for li in lines),
        subtotal=format_money(inv.subtotal, inv.currency),
        discount=f"−{format_money(inv.discount, inv.currency)}" if inv.discount else "",
        total=format_money(inv.total, inv.currency), status=inv.status,
    )
    period = _day(inv.period_start) + (f" – {_day(inv.period_end)}" if inv.period_end else "")
    return InvoiceDetail(
        invoice=view, account_name=account.name, period=period,
        lines=[InvoiceLineView(description=li.description, quantity=li.quantity,
                               unit_price=format_money(li.unit_amount, inv.currency),
                               amount=format_money(li.amount, inv.currency)) for li in lines],
    )



class SpendMonth(BaseModel):
    month: str  # "2026-03", the chart's key
    label: str  # "Mar 2026"
    cents: int  # what the account paid that month (the chart's bars), in the series' currency
    amount: str  # the same formatted, for the text equivalent


class MonthlySpend(BaseModel):
    """What the account paid each month of the last `len(months)` months, oldest first, this month last."""

    currency: str
    months: list[SpendMonth]
    total: str
    has_spend: bool


def _month_starts(today: date, count: int) -> list[date]:
    starts, year, month = [], today.year, today.month
    for _ in range(count):
        starts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def monthly_spend(session: Session, *, account_id: int, today: date, months: int = 12,
                  currency: str = "usd") -> MonthlySpend:
    """The account's paid invoices' totals by calendar month (UTC) over the `months` months up to `today`'s; a
    month without one is 0. One currency per series: the latest paid invoice's (`currency` when there is none);
    invoices in another currency are left out, never added up with it."""
    starts = _month_starts(today, months)
    since = datetime(starts[0].year, starts[0].month, 1, tzinfo=UTC)
    paid = session.exec(select(Invoice.created_at, Invoice.total, Invoice.currency)
                        .where(Invoice.account_id == account_id, Invoice.status == "paid", Invoice.created_at >= since)
                        .order_by(Invoice.created_at, Invoice.id)).all()
    if paid:
        currency = paid[-1][2]
    by_month = dict.fromkeys(((start.year, start.month) for start in starts), 0)
    for created_at, total, invoice_currency in paid:
        key = (created_at.year, created_at.month)
        if invoice_currency == currency and key in by_month:
            by_month[key] += total
    series = [SpendMonth(month=f"{start:%Y-%m}", label=f"{start:%b %Y}", cents=by_month[(start.year, start.month)],
                         amount=format_money(by_month[(start.year, start.month)], currency)) for start in starts]
    total = sum(item.cents for item in series)
    return MonthlySpend(currency=currency, months=series, total=format_money(total, currency), has_spend=total > 0)

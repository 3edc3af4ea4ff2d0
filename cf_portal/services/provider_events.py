"""Webhook events of the payment provider (Stripe's shapes): each is stored once and keeps licenses and
invoices in step with the provider.

- A replayed delivery (same event id) finds its `provider_event` row and changes nothing.
- Deliveries come out of order: a license records the time of the newest news applied to it
  (`provider_updated_at`), and older news about its status or quantity is not applied.
- `invoice.paid` and `invoice.payment_failed` write the invoice (once per provider invoice id, then only its
  status, which never leaves paid or void) and set the license active or past due;
  `customer.subscription.updated` brings quantity and status; `customer.subscription.deleted` cancels the
  license, for good.
- What was done with each event is kept in `provider_event.outcome`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from cf_portal.models import Invoice, InvoiceLine, License, LicenseStatus, ProviderEvent
from cf_portal.services import audit

log = logging.getLogger(__name__)

HANDLED = ("invoice.paid", "invoice.payment_failed", "customer.subscription.updated", "customer.subscription.deleted")

# Stripe subscription status → license status.
STATUSES = {
    "active": LicenseStatus.ACTIVE, "trialing": LicenseStatus.ACTIVE, "past_due": LicenseStatus.PAST_DUE,
    "unpaid": LicenseStatus.PAST_DUE, "canceled": LicenseStatus.CANCELED,
    "incomplete_expired": LicenseStatus.CANCELED,
}
INVOICE_STATUSES = {"draft", "open", "paid", "void", "uncollectible"}
# An invoice never leaves these, whatever arrives later (Stripe cannot reopen a paid or void invoice).
FINAL_INVOICE_STATUSES = {"paid", "void"}


def _record(session: Session, provider: str, event: dict[str, Any], occurred_at: datetime, now: datetime
            ) -> int | None:
    """Store the event id and return its row; None when it was stored before (a replay)."""
    table = ProviderEvent.__table__
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)
    return session.execute(
        insert.values(provider=provider, event_id=str(event["id"])[:100], type=str(event.get("type", ""))[:80],
                      occurred_at=occurred_at, received_at=now)
        .on_conflict_do_nothing(index_elements=[table.c.provider, table.c.event_id]).returning(table.c.id)
    ).scalar()


def _subscription_id(obj: dict[str, Any]) -> str | None:
    """An invoice names its subscription at the top (older API versions) or under `parent` (newer)."""
    if isinstance(obj.get("subscription"), str):
        return obj["subscription"]
    details = (obj.get("parent") or {}).get("subscription_details") or {}
    return details.get("subscription")


def _license_for(session: Session, subscription_id: str | None) -> License | None:
    if not subscription_id:
        return None
    return session.exec(select(License).where(License.provider_subscription_id == subscription_id)
                        .with_for_update()).first()


def _newer(lic: License, occurred_at: datetime) -> bool:
    return lic.provider_updated_at is None or occurred_at >= lic.provider_updated_at


def _set_status(session: Session, lic: License, status: LicenseStatus, occurred_at: datetime, now: datetime) -> str:
    if lic.status == LicenseStatus.PENDING.value:
        return "pending license left to the purchase"  # the purchase itself confirms or undoes it
    if lic.status == LicenseStatus.CANCELED.value:
        # Final: Stripe never revives a canceled subscription, and its events of the same second (the
        # cancellation and a last payment failure) may arrive in either order.
        return "canceled for good"
    if not _newer(lic, occurred_at):
        return "older than what was applied"
    before = lic.status
    lic.status, lic.provider_updated_at = status.value, occurred_at
    if before != status.value:
        session.add(audit.event(account_id=lic.account_id, user_id=None, action="license.status", object_type="license",
                                object_id=lic.id, detail=f"{before} → {status.value}", at=now))
    return f"status {status.value}"


def _save_invoice(session: Session, lic: License, obj: dict[str, Any], status: str) -> None:
    provider_id = str(obj.get("id", ""))[:64]
    existing = session.exec(select(Invoice).where(Invoice.provider_invoice_id == provider_id)).first()
    if existing is not None:
        if existing.status not in FINAL_INVOICE_STATUSES:
            existing.status = status
        return
    subtotal = int(obj.get("subtotal") or 0)
    total = int(obj.get("total") or 0)
    discount = max(0, subtotal - total)
    invoice = Invoice(account_id=lic.account_id, license_id=lic.id, provider_invoice_id=provider_id,
                      number=str(obj.get("number") or provider_id)[:40], status=status,
                      currency=str(obj.get("currency") or lic.currency)[:3], subtotal=subtotal, discount=discount,
                      total=subtotal - discount)
    session.add(invoice)
    session.flush()
    for line in ((obj.get("lines") or {}).get("data") or []):
        quantity = int(line.get("quantity") or 1)
        amount = int(line.get("amount") or 0)
        # Each line carries the license's reference name, as on the invoices the portal writes itself.
        session.add(InvoiceLine(invoice_id=invoice.id, description=f"{lic.reference_name} · "
                                f"{line.get('description') or 'Subscription'}"[:200],
                                quantity=max(1, quantity), unit_amount=amount // max(1, quantity), amount=amount))


def _quantity_of(obj: dict[str, Any]) -> int | None:
    items = ((obj.get("items") or {}).get("data") or [])
    if items and items[0].get("quantity"):
        return int(items[0]["quantity"])
    return int(obj["quantity"]) if obj.get("quantity") else None


def handle_event(session: Session, *, provider: str, event: dict[str, Any], now: datetime) -> str:
    """Apply one verified event, in the caller's transaction; returns what was done (for the log), which is
    also kept on the event's row."""
    occurred_at = datetime.fromtimestamp(int(event.get("created") or now.timestamp()), UTC)
    event_row = _record(session, provider, event, occurred_at, now)
    if event_row is None:
        return "replay: already handled"
    outcome = _apply(session, event, occurred_at, now)
    session.execute(sa.update(ProviderEvent).where(ProviderEvent.id == event_row).values(outcome=outcome[:200]))
    return outcome


def _apply(session: Session, event: dict[str, Any], occurred_at: datetime, now: datetime) -> str:
    kind = event.get("type", "")
    obj = (event.get("data") or {}).get("object") or {}
    if kind not in HANDLED:
        return "not used"
    subscription_id = obj.get("id") if kind.startswith("customer.subscription") else _subscription_id(obj)
    lic = _license_for(session, subscription_id)
    if lic is None:
        return "no license has this subscription"
    if kind == "invoice.paid":
        _save_invoice(session, lic, obj, "paid")
        return _set_status(session, lic, LicenseStatus.ACTIVE, occurred_at, now)
    if kind == "invoice.payment_failed":
        _save_invoice(session, lic, obj, "open")
        return _set_status(session, lic, LicenseStatus.PAST_DUE, occurred_at, now)
    if kind == "customer.subscription.deleted":
        return _set_status(session, lic, LicenseStatus.CANCELED, occurred_at, now)
    # customer.subscription.updated
    if not _newer(lic, occurred_at):
        return "older than what was applied"
    outcome = []
    quantity = _quantity_of(obj)
    if quantity is not None and quantity != lic.quantity:
        # Never fewer seats than are held: the seats stay, and reconcile reports the difference.
        applied = max(quantity, lic.seats_assigned)
        session.add(audit.event(account_id=lic.account_id, user_id=None, action="license.quantity",
                                object_type="license", object_id=lic.id,
                                detail=f"{lic.quantity} → {applied} (provider: {quantity})", at=now))
        lic.quantity = applied
        outcome.append(f"quantity {applied}")
    status = STATUSES.get(str(obj.get("status", "")))
    if status is not None:
        outcome.append(_set_status(session, lic, status, occurred_at, now))
    lic.provider_updated_at = occurred_at
    return ", ".join(outcome) or "nothing changed"


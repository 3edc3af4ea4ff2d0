"""Webhook events of the payment provider, provider-neutral (`PaymentEvent`: Stripe's shapes are read in
`payments/stripe_webhook.py`): each is stored once and keeps licenses and invoices in step with the provider.

- A replayed delivery (same event id) finds its `provider_event` row and changes nothing.
- Deliveries come out of order: a license records the time of the newest news applied to it
  (`provider_updated_at`), and older news about its status or quantity is not applied.
- An invoice paid or whose payment failed writes the invoice (once per provider invoice id, then only its
  status, which never leaves paid or void) and sets the license active or past due; a subscription updated
  brings quantity, status and whether it ends at the period's end; a subscription deleted cancels the license,
  for good, and frees its seats.
- A renewal the provider made by itself (billing reason `subscription_cycle`, Stripe) goes through the same
  steps as one `bill-due` makes (`services/renewals.py`): paid starts the next period with the changes scheduled
  for it; refused counts a failure (Past due, then Suspended after the last retry).
- What was done with each event is kept in `provider_event.outcome`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from cf_portal.models import Invoice, InvoiceLine, License, LicenseStatus, ProviderEvent
from cf_portal.payments.provider import EventKind, InvoiceData, PaymentEvent
from cf_portal.services import audit, renewals, webhooks

log = logging.getLogger(__name__)

# A provider's subscription status (`SubscriptionState.status`'s words) → license status.
STATUSES = {
    "active": LicenseStatus.ACTIVE, "trialing": LicenseStatus.ACTIVE, "past_due": LicenseStatus.PAST_DUE,
    # Stripe's status once every retry of a renewal has failed (its setting "mark the subscription as unpaid").
    "unpaid": LicenseStatus.SUSPENDED, "canceled": LicenseStatus.CANCELED,
    "incomplete_expired": LicenseStatus.CANCELED,
}
# The provider's reason for an invoice that renews a subscription for a new period.
RENEWAL_REASON = "subscription_cycle"
RENEWABLE = (LicenseStatus.ACTIVE.value, LicenseStatus.PAST_DUE.value, LicenseStatus.SUSPENDED.value)
# An invoice never leaves these, whatever arrives later (Stripe cannot reopen a paid or void invoice).
FINAL_INVOICE_STATUSES = {"paid", "void"}


def _record(session: Session, event: PaymentEvent, occurred_at: datetime, now: datetime) -> int | None:
    """Store the event id and return its row; None when it was stored before (a replay)."""
    table = ProviderEvent.__table__
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)
    return session.execute(
        insert.values(provider=event.provider, event_id=event.event_id[:100], type=event.type[:80],
                      occurred_at=occurred_at, received_at=now)
        .on_conflict_do_nothing(index_elements=[table.c.provider, table.c.event_id]).returning(table.c.id)
    ).scalar()


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
        webhooks.license_status_changed(session, lic, before=before, now=now, reason="payment_provider")
    return f"status {status.value}"


def _save_invoice(session: Session, lic: License, data: InvoiceData, status: str, *,
                  period_index: int | None = None) -> Invoice:
    """Write the provider's invoice once (then only its status changes); `period_index`: it renewed that period."""
    provider_id = data.provider_id[:64]
    existing = session.exec(select(Invoice).where(Invoice.provider_invoice_id == provider_id)).first()
    if existing is not None:
        if existing.status not in FINAL_INVOICE_STATUSES:
            existing.status = status
        if period_index is not None and existing.kind != "renewal":
            existing.kind, existing.period_index = "renewal", period_index
        return existing
    invoice = Invoice(account_id=lic.account_id, license_id=lic.id, provider_invoice_id=provider_id,
                      number=data.number[:40], status=status, currency=(data.currency or lic.currency)[:3],
                      subtotal=data.subtotal, discount=data.discount, total=data.subtotal - data.discount,
                      kind="renewal" if period_index is not None else "first", period_index=period_index)
    session.add(invoice)
    session.flush()
    for line in data.lines:
        # Each line carries the license's reference name, as on the invoices the portal writes itself.
        session.add(InvoiceLine(invoice_id=invoice.id, description=f"{lic.reference_name} · {line.description}"[:200],
                                quantity=line.quantity, unit_amount=line.unit_amount, amount=line.amount))
    return invoice


def handle_event(session: Session, *, event: PaymentEvent, now: datetime) -> str:
    """Apply one verified event, in the caller's transaction; returns what was done (for the log), which is
    also kept on the event's row."""
    occurred_at = event.occurred_at or datetime.fromtimestamp(int(now.timestamp()), UTC)
    event_row = _record(session, event, occurred_at, now)
    if event_row is None:
        return "replay: already handled"
    outcome = _apply(session, event, occurred_at, now)
    session.execute(sa.update(ProviderEvent).where(ProviderEvent.id == event_row).values(outcome=outcome[:200]))
    return outcome


def _apply(session: Session, event: PaymentEvent, occurred_at: datetime, now: datetime) -> str:
    if event.kind is None:
        return "not used"
    lic = _license_for(session, event.subscription_id)
    if lic is None:
        return "no license has this subscription"
    renews = event.billing_reason == RENEWAL_REASON and lic.status in RENEWABLE
    if event.kind is EventKind.INVOICE_PAID and renews:
        # The provider renewed the license by itself: the next period starts as `bill-due` starts it, once per
        # invoice (another event about the same invoice finds it has started its period).
        known = session.exec(select(Invoice.period_index).where(
            Invoice.provider_invoice_id == event.invoice.provider_id[:64])).first()
        if known is not None:
            _save_invoice(session, lic, event.invoice, "paid")
            return "period already started"
        renewal = renewals.next_renewal(session, lic)
        started = renewals.start_period(session, license_id=lic.id, renewal=renewal)
        saved = _save_invoice(session, lic, event.invoice, "paid",
                              period_index=renewal.period_index if started else None)
        if started:
            session.flush()
            renewals.emails_of_period(session, renewal, invoice_id=saved.id, now=now)
        lic.provider_updated_at = max(occurred_at, lic.provider_updated_at or occurred_at)
        return f"period {renewal.period_index + 1} started" if started else "period already started"
    if event.kind is EventKind.INVOICE_PAID:
        _save_invoice(session, lic, event.invoice, "paid")
        return _set_status(session, lic, LicenseStatus.ACTIVE, occurred_at, now)
    if event.kind is EventKind.INVOICE_PAYMENT_FAILED and renews and _newer(lic, occurred_at):
        _save_invoice(session, lic, event.invoice, "open")
        # Counted at the provider's attempt (the retry days are days after the first failure), not at delivery.
        status = renewals.renewal_failed(session, license_id=lic.id, period_index=lic.periods_billed,
                                         attempt=lic.renewal_failures, reason="payment_failed", now=occurred_at)
        lic.provider_updated_at = occurred_at
        return f"status {status.value}" if status else "failure already counted"
    if event.kind is EventKind.INVOICE_PAYMENT_FAILED:
        _save_invoice(session, lic, event.invoice, "open")
        return _set_status(session, lic, LicenseStatus.PAST_DUE, occurred_at, now)
    if event.kind is EventKind.SUBSCRIPTION_DELETED:
        if lic.status in RENEWABLE:
            # Its seats are freed as when `bill-due` ends a license (each says why).
            renewals.end_license(session, license_id=lic.id, at=occurred_at, now=now,
                                 reason="the subscription ended at the payment provider")
            lic.provider_updated_at = occurred_at
            return "status canceled"
        return _set_status(session, lic, LicenseStatus.CANCELED, occurred_at, now)
    # EventKind.SUBSCRIPTION_UPDATED
    if not _newer(lic, occurred_at):
        return "older than what was applied"
    outcome = []
    quantity = event.quantity
    if event.cancel_at_period_end is not None and event.cancel_at_period_end != lic.cancel_at_period_end:
        lic.cancel_at_period_end = event.cancel_at_period_end
        outcome.append("ends at the period's end" if event.cancel_at_period_end else "renews")
    # A decrease scheduled for the renewal is billed by the provider already: not a change of the seats now.
    if quantity is not None and quantity != lic.quantity and quantity != lic.next_quantity:
        # Never fewer seats than are held: the seats stay, and reconcile reports the difference.
        applied = max(quantity, lic.seats_assigned)
        session.add(audit.event(account_id=lic.account_id, user_id=None, action="license.quantity",
                                object_type="license", object_id=lic.id,
                                detail=f"{lic.quantity} → {applied} (provider: {quantity})", at=now))
        lic.quantity = applied
        outcome.append(f"quantity {applied}")
    status = STATUSES.get(event.subscription_status or "")
    if status is not None:
        outcome.append(_set_status(session, lic, status, occurred_at, now))
    lic.provider_updated_at = occurred_at
    return ", ".join(outcome) or "nothing changed"


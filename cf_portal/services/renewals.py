"""Renewals: every license is charged once per monthly period, and ends when it was cancelled.

`python -m cf_portal.cli bill-due` (every hour, from a scheduler) runs `bill_due`. For each license whose period has
ended (`period_end <= now`), in short transactions of its own, so no lock is held while the provider works:
1. a license marked to cancel at the period's end ends: its seats are freed (the history says why), its
   subscription is cancelled, and it shows Canceled (`end_license`);
2. otherwise the next period is priced with the one pricing function (the changes scheduled for the renewal:
   fewer seats, a cheaper plan; the coupon counted by months, `Quote.amount_for_month`) and charged with the
   provider key `renewal-<license>-<period>-<attempt>`: whatever runs twice or at once, one period is charged once;
3. paid: one conditional UPDATE (`periods_billed` must still be the period charged) starts the new period, so
   only one run writes the invoice (and a unique index allows one renewal invoice per license and period);
   refused: the license is Past due and retried 1, 3 and 5 days after the first failure; after the last it is
   Suspended (its seats stay assigned but grant nothing) until a card is fixed and the payment goes through
   (`pay_now`); the provider unavailable: nothing changes and the next run asks again with the same key.

A provider that renews by itself (Stripe) charges the periods on its own; its webhooks call `period_paid`,
`renewal_failed` and `end_license` here, so the license goes through the same steps in both modes.

A license that becomes Suspended or Canceled here writes its webhook event (`services.webhooks`) in the same
transaction; a canceled license's seats end with it (one license.canceled, no seat.unassigned for each).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from cf_portal.db import session_scope
from cf_portal.models import (
    Coupon,
    Invoice,
    InvoiceLine,
    License,
    LicenseStatus,
    Plan,
    Product,
    SeatAssignment,
)
from cf_portal.payments.provider import (
    ChargeFigures,
    InvoiceData,
    InvoiceLineData,
    PaymentError,
    PaymentProvider,
    ProviderUnavailable,
)
from cf_portal.services import audit, coupons, webhooks
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.periods import period_bounds
from cf_portal.services.pricing import Quote, quote
from cf_portal.services.roles import Permission

log = logging.getLogger(__name__)

# Days after the first failed renewal on which it is tried again; a failure after the last suspends the license.
RETRY_DAYS = (1, 3, 5)
# Statuses that renew.
RENEWING = (LicenseStatus.ACTIVE.value, LicenseStatus.PAST_DUE.value)
# A license that has not been billed for many periods (the scheduler was off) catches up this many per run.
MAX_PERIODS_PER_RUN = 24


@dataclass(frozen=True)
class Renewal:
    """What the next renewal of a license charges: the terms of period `period_index` and its price."""

    license_id: int
    period_index: int
    period_start: datetime
    period_end: datetime
    plan_id: int
    plan_code: str
    product_name: str
    plan_name: str
    quantity: int
    unit_amount: int
    currency: str
    price: Quote
    amount: int  # what the period costs, its coupon counted (`Quote.amount_for_month`)

    def figures(self, reference_name: str) -> ChargeFigures:
        discount = self.price.subtotal - self.amount
        line = InvoiceLineData(
            description=(f"{reference_name} · {self.product_name} {self.plan_name} × {self.quantity}, "
                         f"{self.period_start:%-d %b %Y} – {self.period_end:%-d %b %Y}")[:200],
            quantity=self.quantity, unit_amount=self.unit_amount, amount=self.price.subtotal)
        return ChargeFigures(currency=self.currency, subtotal=self.price.subtotal, discount=discount, lines=(line,))


def next_renewal(session: Session, lic: License) -> Renewal:
    """The next period of `lic` with the changes scheduled for it, priced."""
    plan = session.get(Plan, lic.next_plan_id or lic.plan_id)
    product = session.get(Product, plan.product_id)
    coupon = session.get(Coupon, lic.coupon_id) if lic.coupon_id else None
    quantity = lic.next_quantity or lic.quantity
    unit_amount = plan.unit_amount if lic.next_plan_id else lic.unit_amount
    price = quote(unit_amount=unit_amount, quantity=quantity, currency=lic.currency,
                  discount=coupons.discount_of(coupon) if coupon else None)
    index = lic.periods_billed
    start, end = period_bounds(lic.created_at, index)
    return Renewal(license_id=lic.id, period_index=index, period_start=start, period_end=end, plan_id=plan.id,
                   plan_code=plan.code, product_name=product.name, plan_name=plan.name, quantity=quantity,
                   unit_amount=unit_amount, currency=lic.currency, price=price, amount=price.amount_for_month(index))


def renewal_key(license_id: int, period_index: int, attempt: int) -> str:
    return f"renewal-{license_id}-{period_index}-{attempt}"


def _due(now: datetime, account_id: int | None, license_id: int | None) -> sa.Select:
    query = (select(License.id).where(License.status.in_(RENEWING), License.period_end <= now,
                                      sa.or_(License.next_attempt_at.is_(None), License.next_attempt_at <= now))
             .order_by(License.period_end, License.id))
    if account_id is not None:
        query = query.where(License.account_id == account_id)
    return query if license_id is None else query.where(License.id == license_id)


def bill_due(engine: sa.Engine | None, provider: PaymentProvider, *, now: datetime,
             account_id: int | None = None, license_id: int | None = None) -> dict[str, int]:
    """Renew (or end) every license whose period has ended; returns how many were renewed, ended, refused,
    suspended, left for the provider, or found unanswered. Safe to run twice or at once."""
    outcome = {"renewed": 0, "ended": 0, "failed": 0, "suspended": 0, "unavailable": 0, "by_provider": 0}
    with session_scope(engine, write=False) as session:
        due = list(session.exec(_due(now, account_id, license_id)).all())
    for license_id in due:
        for _ in range(MAX_PERIODS_PER_RUN):
            step = _renew_once(engine, provider, license_id=license_id, now=now)
            outcome[step] = outcome.get(step, 0) + 1
            if step != "renewed":
                break
    return {key: value for key, value in outcome.items() if value and key != "not_due"}


def pay_now(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, license_id: int,
            now: datetime) -> str:
    """Try the overdue renewal of a past-due or suspended license at once (after its card was changed), without
    waiting for the next retry: "renewed", "failed"/"suspended" (refused again) or "unavailable"."""
    actor.require(Permission.CHANGE_LICENSES)
    with session_scope(engine, write=False) as session:
        lic = session.get(License, license_id)
        if lic is None or lic.account_id != actor.account_id:
            raise NotFound("That license")
        if lic.status not in (LicenseStatus.PAST_DUE.value, LicenseStatus.SUSPENDED.value):
            raise DomainError("This license has no payment due.")
    step = _renew_once(engine, provider, license_id=license_id, now=now, retry_now=True)
    if step == "renewed":  # later periods that are due too (a license suspended for a while)
        bill_due(engine, provider, now=now, account_id=actor.account_id, license_id=license_id)
    return step


def _renew_once(engine: sa.Engine | None, provider: PaymentProvider, *, license_id: int, now: datetime,
                retry_now: bool = False) -> str:
    """One step of one license: end it, or charge its next period. `retry_now`: a person retries a refused
    renewal (a suspended license too), whenever its next attempt was due."""
    statuses = (*RENEWING, LicenseStatus.SUSPENDED.value) if retry_now else RENEWING
    with session_scope(engine, write=False) as session:
        lic = session.get(License, license_id)
        if lic is None or lic.status not in statuses or lic.period_end > now:
            return "not_due"
        if not retry_now and lic.next_attempt_at is not None and lic.next_attempt_at > now:
            return "not_due"
        if lic.cancel_at_period_end:
            renewal = None
        else:
            renewal = next_renewal(session, lic)
    if renewal is None:
        if lic.provider_subscription_id:
            try:
                provider.cancel_subscription(subscription_id=lic.provider_subscription_id)
            except ProviderUnavailable:
                return "unavailable"
        with session_scope(engine) as session:
            ended = end_license(session, license_id=license_id, at=lic.period_end, now=now,
                                reason="canceled at the end of its period")
        return "ended" if ended else "not_due"
    if provider.renews_by_itself:
        return "by_provider"  # its webhooks bring the renewal (`period_paid`, `renewal_failed`)
    attempt = lic.renewal_failures
    try:
        invoice = provider.charge_renewal(subscription_id=lic.provider_subscription_id or "",
                                          period_index=renewal.period_index,
                                          charge=renewal.figures(lic.reference_name),
                                          idempotency_key=renewal_key(lic.id, renewal.period_index, attempt))
    except ProviderUnavailable as exc:
        log.warning("renewal of license %s: provider unavailable (%s); asked again next run", lic.id, exc.code)
        return "unavailable"
    except PaymentError as exc:
        with session_scope(engine) as session:
            status = renewal_failed(session, license_id=lic.id, period_index=renewal.period_index,
                                    attempt=attempt, reason=exc.code, now=now)
        return "suspended" if status == LicenseStatus.SUSPENDED else "failed"
    with session_scope(engine) as session:
        period_paid(session, license_id=lic.id, renewal=renewal, invoice=invoice, now=now)
    return "renewed"


def period_paid(session: Session, *, license_id: int, renewal: Renewal, invoice: InvoiceData,
                now: datetime) -> bool:
    """Start the period `renewal` charged for, once: the conditional UPDATE lets one caller through, and only that
    one writes the invoice. The changes scheduled for the renewal take effect; a past-due or suspended license is
    active again. False when another run (or webhook) got there first."""
    if not start_period(session, license_id=license_id, renewal=renewal):
        return False
    lic = session.get(License, license_id)
    row = Invoice(account_id=lic.account_id, license_id=lic.id, provider_invoice_id=invoice.provider_id[:64],
                  number=invoice.number[:40], status=invoice.status, currency=invoice.currency,
                  subtotal=invoice.subtotal, discount=invoice.discount, total=invoice.total,
                  period_start=renewal.period_start, period_end=renewal.period_end, created_at=now,
                  kind="renewal", period_index=renewal.period_index)
    session.add(row)
    session.flush()
    for line in invoice.lines:
        session.add(InvoiceLine(invoice_id=row.id, description=line.description[:200], quantity=line.quantity,
                                unit_amount=line.unit_amount, amount=line.amount))
    session.add(audit.event(account_id=lic.account_id, user_id=None, action="license.renewed", object_type="license",
                            object_id=lic.id, detail=f"period {renewal.period_index + 1}: {invoice.total} "
                            f"{invoice.currency} for {renewal.quantity} licenses", at=now))
    return True


def start_period(session: Session, *, license_id: int, renewal: Renewal) -> bool:
    """The conditional UPDATE that starts the period `renewal` is for (only while `periods_billed` still names
    it), with the changes scheduled for it; False when another caller started it first."""
    started = session.execute(
        sa.update(License)
        .where(License.id == license_id, License.periods_billed == renewal.period_index,
               License.status.in_((*RENEWING, LicenseStatus.SUSPENDED.value)))
        .values(periods_billed=renewal.period_index + 1, period_start=renewal.period_start,
                period_end=renewal.period_end, quantity=renewal.quantity, plan_id=renewal.plan_id,
                unit_amount=renewal.unit_amount, next_quantity=None, next_plan_id=None,
                status=LicenseStatus.ACTIVE.value, past_due_since=None, renewal_failures=0, next_attempt_at=None)
    ).rowcount
    if started:
        lic = session.get(License, license_id)
        if lic is not None:
            session.refresh(lic)
    return bool(started)


def renewal_failed(session: Session, *, license_id: int, period_index: int, attempt: int, reason: str,
                   now: datetime) -> LicenseStatus | None:
    """Record a refused renewal of `period_index` (attempt number `attempt`, counted from 0), once per attempt:
    Past due with the next try 1, 3 or 5 days after the first failure, or Suspended after the last. Returns the
    status it set (None: another run recorded this attempt already)."""
    lic = session.exec(select(License).where(License.id == license_id).with_for_update()).first()
    if (lic is None or lic.periods_billed != period_index or lic.renewal_failures != attempt
            or lic.status not in (*RENEWING, LicenseStatus.SUSPENDED.value)):
        return None
    first_failure = lic.past_due_since or now
    before = lic.status
    failures = attempt + 1
    if failures <= len(RETRY_DAYS) and lic.status != LicenseStatus.SUSPENDED.value:
        status = LicenseStatus.PAST_DUE
        next_attempt = first_failure + timedelta(days=RETRY_DAYS[failures - 1])
    else:
        status = LicenseStatus.SUSPENDED
        next_attempt = None
    lic.status, lic.past_due_since, lic.renewal_failures, lic.next_attempt_at = (
        status.value, first_failure, failures, next_attempt)
    # The event an email is written from (issue 15): the license, what happened, and when it is tried again.
    when = f"; next attempt {next_attempt:%Y-%m-%d}" if next_attempt else ""
    session.add(audit.event(account_id=lic.account_id, user_id=None, action=f"license.{status.value}",
                            object_type="license", object_id=lic.id,
                            detail=f"renewal of period {period_index + 1} refused ({reason}), attempt {failures}{when}",
                            at=now))
    webhooks.license_status_changed(session, lic, before=before, now=now, reason="renewal_failed")
    return status


def end_license(session: Session, *, license_id: int, at: datetime, now: datetime, reason: str) -> bool:
    """End a license for good: Canceled, its open seats freed at `at` (each says why). Once: False when it had
    ended already."""
    lic = session.get(License, license_id)
    before = lic.status if lic is not None else ""
    ended = session.execute(
        sa.update(License).where(License.id == license_id, License.status != LicenseStatus.CANCELED.value,
                                 License.status != LicenseStatus.PENDING.value)
        .values(status=LicenseStatus.CANCELED.value, canceled_at=at, cancel_at_period_end=False, seats_assigned=0,
                next_quantity=None, next_plan_id=None, next_attempt_at=None)
    ).rowcount
    if not ended:
        return False
    session.refresh(lic)
    freed = session.execute(
        sa.update(SeatAssignment).where(SeatAssignment.license_id == license_id,
                                        SeatAssignment.unassigned_at.is_(None))
        .values(unassigned_at=sa.func.max(SeatAssignment.assigned_at, at) if session.get_bind().dialect.name
                == "sqlite" else sa.func.greatest(SeatAssignment.assigned_at, at), ended_reason="license_canceled")
    ).rowcount
    session.add(audit.event(account_id=lic.account_id, user_id=None, action="license.canceled", object_type="license",
                            object_id=lic.id, detail=f"{reason}; {freed} seats freed", at=now))
    webhooks.license_status_changed(session, lic, before=before, now=now, reason=reason, seats_freed=freed)
    return True

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
   refused: the license is Past due and retried 1, 3 and 5 days after the first failure (days counted in time,
   `next_attempt_after`, so a person's own attempt or a scheduler that was off moves nothing); a failure on the
   last day makes it Suspended (its seats stay assigned but grant nothing) until a card is fixed and the payment
   goes through (`pay_now`); the provider unavailable: nothing changes and the next run asks again with the same
   key. Each attempt has a key of its own (`renewal_failures` counts them), so a new card is really charged.
One license that fails in a way no rule foresaw is logged and counted ("errors"); the others are billed.

A provider that renews by itself (Stripe) charges the periods on its own; its webhooks call `period_paid`,
`renewal_failed` and `end_license` here, so the license goes through the same steps in both modes.
"""

from __future__ import annotations

import logging
from collections import Counter
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
from cf_portal.services import audit, coupons
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
# A provider's answers that are not the card's: they never make a license past due.
NOT_REFUSALS = ("idempotency_error",)
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
    return _renewal_of(lic, plan, product, coupon)


def _renewal_of(lic: License, plan: Plan, product: Product, coupon: Coupon | None) -> Renewal:
    """The next period of `lic`, priced; `plan` is the one it renews on (the scheduled one, if any)."""
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


def _terms(license_id: int) -> sa.Select:
    """The license with what its next renewal is priced from: the plan it renews on (the scheduled one, if any),
    that plan's product and the coupon, in one read."""
    return (select(License, Plan, Product, Coupon)
            .join(Plan, Plan.id == sa.func.coalesce(License.next_plan_id, License.plan_id))
            .join(Product, Product.id == Plan.product_id)
            .outerjoin(Coupon, Coupon.id == License.coupon_id)
            .where(License.id == license_id))


def _due(now: datetime, account_id: int | None, license_id: int | None) -> sa.Select:
    query = (select(License.id).where(License.status.in_(RENEWING), License.period_end <= now,
                                      sa.or_(License.next_attempt_at.is_(None), License.next_attempt_at <= now))
             .order_by(License.period_end, License.id))
    if account_id is not None:
        query = query.where(License.account_id == account_id)
    return query if license_id is None else query.where(License.id == license_id)


def bill_due(engine: sa.Engine | None, provider: PaymentProvider, *, now: datetime,
             account_id: int | None = None, license_id: int | None = None) -> dict[str, int]:
    """Renew (or end) every license whose period has ended; returns how many were renewed, ended, refused
    ("failed": past due), suspended, left for the provider, found unanswered ("unavailable": asked again next run)
    or went wrong otherwise ("errors": logged, asked again next run). Safe to run twice or at once. One license
    that fails in a way no rule foresaw does not stop the others."""
    outcome: Counter[str] = Counter()
    with session_scope(engine, write=False) as session:
        due = list(session.exec(_due(now, account_id, license_id)).all())
    for due_id in due:
        try:
            for _ in range(MAX_PERIODS_PER_RUN):  # a license behind by several periods (the scheduler was off)
                step, more_due = _renew_once(engine, provider, license_id=due_id, now=now)
                outcome[step] += 1
                if not more_due:
                    break
        except Exception:  # noqa: BLE001 (one license's trouble must not leave the others unbilled)
            log.exception("renewal of license %s failed; it is tried again at the next run", due_id)
            outcome["errors"] += 1
    outcome.pop("not_due", None)
    return dict(outcome)


# What each count of `bill_due` means, in the words of a summary.
OUTCOME_WORDS = {"renewed": "renewed", "ended": "ended (cancelled at the period's end)", "failed": "past due",
                 "suspended": "suspended", "unavailable": "left for the next run (provider unavailable)",
                 "by_provider": "renewed by the provider itself", "errors": "failed with an error (logged)"}


def summary(outcome: dict[str, int]) -> str:
    """"2 licenses renewed, 1 past due", or "No license was due." """
    parts = [f"{count} {what}" for key, what in OUTCOME_WORDS.items() if (count := outcome.get(key))]
    if not parts:
        return "No license was due."
    first = next(key for key in OUTCOME_WORDS if outcome.get(key))
    parts[0] = parts[0].replace(" ", f" license{'s' if outcome[first] != 1 else ''} ", 1)
    return ", ".join(parts)


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
    step, more_due = _renew_once(engine, provider, license_id=license_id, now=now, retry_now=True)
    if more_due:  # later periods that are due too (a license suspended for a while)
        bill_due(engine, provider, now=now, account_id=actor.account_id, license_id=license_id)
    return step


def _renew_once(engine: sa.Engine | None, provider: PaymentProvider, *, license_id: int, now: datetime,
                retry_now: bool = False) -> tuple[str, bool]:
    """One step of one license: end it, or charge its next period. `retry_now`: a person retries a refused
    renewal (a suspended license too), whenever its next attempt was due. Returns the step and whether another
    period of the license is due already."""
    statuses = (*RENEWING, LicenseStatus.SUSPENDED.value) if retry_now else RENEWING
    with session_scope(engine, write=False) as session:
        row = session.exec(_terms(license_id)).first()
    if row is None:
        return "not_due", False
    lic, plan, product, coupon = row
    if lic.status not in statuses or lic.period_end > now:
        return "not_due", False
    if not retry_now and lic.next_attempt_at is not None and lic.next_attempt_at > now:
        return "not_due", False
    if lic.cancel_at_period_end:
        return _end_at_period_end(engine, provider, lic, now=now), False
    if provider.renews_by_itself:
        return "by_provider", False  # its webhooks bring the renewal (`period_paid`, `renewal_failed`)
    renewal = _renewal_of(lic, plan, product, coupon)
    attempt = lic.renewal_failures
    try:
        invoice = provider.charge_renewal(subscription_id=lic.provider_subscription_id or "",
                                          period_index=renewal.period_index,
                                          charge=renewal.figures(lic.reference_name),
                                          idempotency_key=renewal_key(lic.id, renewal.period_index, attempt))
    except ProviderUnavailable as exc:
        log.warning("renewal of license %s: provider unavailable (%s); asked again next run", lic.id, exc.code)
        return "unavailable", False
    except PaymentError as exc:
        if exc.code in NOT_REFUSALS:
            # Not the card's answer (this key was sent before with other figures: the terms changed after a
            # charge whose answer was lost): the license must not be made past due for it.
            log.error("renewal of license %s: the provider answered %s; left for an operator", lic.id, exc.code)
            return "errors", False
        with session_scope(engine) as session:
            status = renewal_failed(session, license_id=lic.id, period_index=renewal.period_index,
                                    attempt=attempt, reason=exc.code, now=now)
        return ("suspended" if status == LicenseStatus.SUSPENDED else "failed"), False
    with session_scope(engine) as session:
        started = period_paid(session, license_id=lic.id, renewal=renewal, invoice=invoice, now=now)
    if not started:  # another run was charged the same (one charge: the same key) and recorded it first
        return "not_due", False
    return "renewed", renewal.period_end <= now


def _end_at_period_end(engine: sa.Engine | None, provider: PaymentProvider, lic: License, *, now: datetime) -> str:
    """A license cancelled at its period's end: its subscription cancelled at the provider, then the license
    ended. A subscription the provider does not know is gone already; any other refusal waits for the next run
    (nothing is ended while the provider may still charge it)."""
    if lic.provider_subscription_id:
        try:
            provider.cancel_subscription(subscription_id=lic.provider_subscription_id)
        except PaymentError as exc:
            if exc.code != "resource_missing":
                log.warning("ending license %s: the provider did not cancel its subscription (%s); asked again "
                            "next run", lic.id, exc.code)
                return "unavailable"
    with session_scope(engine) as session:
        ended = end_license(session, license_id=lic.id, at=lic.period_end, now=now,
                            reason="canceled at the end of its period")
    return "ended" if ended else "not_due"


def period_paid(session: Session, *, license_id: int, renewal: Renewal, invoice: InvoiceData,
                now: datetime) -> bool:
    """Start the period `renewal` charged for, once: the conditional UPDATE lets one caller through, and only that
    one writes the invoice. The changes scheduled for the renewal take effect; a past-due or suspended license is
    active again. False when another run (or webhook) got there first."""
    account_id = session.execute(
        sa.update(License)
        .where(License.id == license_id, License.periods_billed == renewal.period_index,
               License.status.in_((*RENEWING, LicenseStatus.SUSPENDED.value)))
        .values(periods_billed=renewal.period_index + 1, period_start=renewal.period_start,
                period_end=renewal.period_end, quantity=renewal.quantity, plan_id=renewal.plan_id,
                unit_amount=renewal.unit_amount, next_quantity=None, next_plan_id=None,
                status=LicenseStatus.ACTIVE.value, past_due_since=None, renewal_failures=0, next_attempt_at=None)
        .returning(License.account_id)
    ).scalar()
    if account_id is None:
        return False
    row = Invoice(account_id=account_id, license_id=license_id, provider_invoice_id=invoice.provider_id[:64],
                  number=invoice.number[:40], status=invoice.status, currency=invoice.currency,
                  subtotal=invoice.subtotal, discount=invoice.discount, total=invoice.total,
                  period_start=renewal.period_start, period_end=renewal.period_end, created_at=now,
                  kind="renewal", period_index=renewal.period_index)
    session.add(row)
    session.flush()
    session.add_all([InvoiceLine(invoice_id=row.id, description=line.description[:200], quantity=line.quantity,
                                 unit_amount=line.unit_amount, amount=line.amount) for line in invoice.lines])
    session.add(audit.event(account_id=account_id, user_id=None, action="license.renewed", object_type="license",
                            object_id=license_id, detail=f"period {renewal.period_index + 1}: {invoice.total} "
                            f"{invoice.currency} for {renewal.quantity} licenses", at=now))
    return True


def next_attempt_after(first_failure: datetime, now: datetime) -> datetime | None:
    """The next retry of a renewal that first failed at `first_failure`: the first of the retry days (1, 3 and 5
    days after it) still to come at `now`; None when none is left (the license is suspended). Counted in time, not
    in attempts, so a person's own attempt (`pay_now`) or a scheduler that was off does not move the days."""
    return next((at for days in RETRY_DAYS if (at := first_failure + timedelta(days=days)) > now), None)


def renewal_failed(session: Session, *, license_id: int, period_index: int, attempt: int, reason: str,
                   now: datetime) -> LicenseStatus | None:
    """Record a refused renewal of `period_index` (attempt number `attempt`, counted from 0, which keys the next
    attempt), once per attempt: Past due with the next try on day 1, 3 or 5 after the first failure, or Suspended
    when it failed on the last day. Returns the status it set (None: another run recorded this attempt already)."""
    lic = session.exec(select(License).where(License.id == license_id).with_for_update()).first()
    if (lic is None or lic.periods_billed != period_index or lic.renewal_failures != attempt
            or lic.status not in (*RENEWING, LicenseStatus.SUSPENDED.value)):
        return None
    first_failure = lic.past_due_since or now
    next_attempt = next_attempt_after(first_failure, now)
    if next_attempt is None or lic.status == LicenseStatus.SUSPENDED.value:
        status, next_attempt = LicenseStatus.SUSPENDED, None
    else:
        status = LicenseStatus.PAST_DUE
    failures = attempt + 1
    lic.status, lic.past_due_since, lic.renewal_failures, lic.next_attempt_at = (
        status.value, first_failure, failures, next_attempt)
    # The event an email is written from (issue 15): the license, what happened, and when it is tried again.
    when = f"; next attempt {next_attempt:%Y-%m-%d}" if next_attempt else ""
    session.add(audit.event(account_id=lic.account_id, user_id=None, action=f"license.{status.value}",
                            object_type="license", object_id=lic.id,
                            detail=f"renewal of period {period_index + 1} refused ({reason}), attempt {failures}{when}",
                            at=now))
    return status


def end_license(session: Session, *, license_id: int, at: datetime, now: datetime, reason: str) -> bool:
    """End a license for good: Canceled, its open seats freed at `at` (each says why). Once: False when it had
    ended already."""
    account_id = session.execute(
        sa.update(License).where(License.id == license_id, License.status != LicenseStatus.CANCELED.value,
                                 License.status != LicenseStatus.PENDING.value)
        .values(status=LicenseStatus.CANCELED.value, canceled_at=at, cancel_at_period_end=False, seats_assigned=0,
                next_quantity=None, next_plan_id=None, next_attempt_at=None)
        .returning(License.account_id)
    ).scalar()
    if account_id is None:
        return False
    later = (sa.func.max if session.get_bind().dialect.name == "sqlite" else sa.func.greatest)(
        SeatAssignment.assigned_at, at)  # a seat assigned after the period's end ends when it began
    freed = session.execute(
        sa.update(SeatAssignment).where(SeatAssignment.license_id == license_id,
                                        SeatAssignment.unassigned_at.is_(None))
        .values(unassigned_at=later, ended_reason="license_canceled")
    ).rowcount
    session.add(audit.event(account_id=account_id, user_id=None, action="license.canceled", object_type="license",
                            object_id=license_id, detail=f"{reason}; {freed} seats freed", at=now))
    return True

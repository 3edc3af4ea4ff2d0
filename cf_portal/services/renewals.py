"""Renewals: every license is charged once per monthly period, and ends when it was cancelled.

`python -m cf_portal.cli bill-due` (every hour, from a scheduler) runs `bill_due`. For each license whose period has
ended (`period_end <= now`), in short transactions, so no lock is held while the provider works (read and recorded
in batches for speed, see `bill_due`; each license is charged on its own):
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

A license that becomes Suspended or Canceled here writes its webhook event (`services.webhooks`) in the same
transaction; a canceled license's seats end with it (one license.canceled, no seat.unassigned for each).
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from cf_portal.db import get_engine, session_scope
from cf_portal.models import (
    AuditEvent,
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
from cf_portal.services import audit, coupons, emails, webhooks
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
# Due licenses read (and their renewals recorded) this many at a time.
BATCH = 200
# Licenses charged at once on PostgreSQL (SQLite takes one writer at a time).
CHARGING_WORKERS = 4


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


def _terms() -> sa.Select:
    """Licenses with what their next renewal is priced from: the plan each renews on (the scheduled one, if any),
    that plan's product and the coupon, in one read."""
    return (select(License, Plan, Product, Coupon)
            .join(Plan, Plan.id == sa.func.coalesce(License.next_plan_id, License.plan_id))
            .join(Product, Product.id == Plan.product_id)
            .outerjoin(Coupon, Coupon.id == License.coupon_id))


def _due(now: datetime, account_id: int | None, license_id: int | None) -> sa.Select:
    query = (select(License.id).where(License.status.in_(RENEWING), License.period_end <= now,
                                      sa.or_(License.next_attempt_at.is_(None), License.next_attempt_at <= now))
             .order_by(License.period_end, License.id))
    if account_id is not None:
        query = query.where(License.account_id == account_id)
    return query if license_id is None else query.where(License.id == license_id)


@dataclass(frozen=True)
class _Charged:
    """A period the provider has charged, waiting to be recorded (`period_paid`)."""

    renewal: Renewal
    invoice: InvoiceData


def bill_due(engine: sa.Engine | None, provider: PaymentProvider, *, now: datetime,
             account_id: int | None = None, license_id: int | None = None) -> dict[str, int]:
    """Renew (or end) every license whose period has ended; returns how many were renewed, ended, refused
    ("failed": past due), suspended, left for the provider, found unanswered ("unavailable": asked again next run)
    or went wrong otherwise ("errors": logged, asked again next run). Safe to run twice or at once. One license
    that fails in a way no rule foresaw does not stop the others.

    For speed, due licenses are read BATCH at a time with their terms (one query); each is charged with its own key
    (on PostgreSQL by a few workers at once: the provider's calls mostly wait), and the periods paid are recorded
    in one transaction per batch, each with the same conditional UPDATE as alone (`period_paid`). Nothing about
    exactly once depends on the batch: if the recording is lost, the next run charges the same keys again (the
    provider answers with the same invoices) and records them then."""
    engine = engine or get_engine()
    workers = CHARGING_WORKERS if engine.dialect.name == "postgresql" else 1  # SQLite has one writer at a time
    outcome: Counter[str] = Counter()
    with session_scope(engine, write=False) as session:
        due = list(session.exec(_due(now, account_id, license_id)).all())
    with ThreadPoolExecutor(workers) as pool:
        map_ = pool.map if workers > 1 else map
        for start in range(0, len(due), BATCH):
            with session_scope(engine, write=False) as session:
                rows = session.exec(_terms().where(License.id.in_(due[start:start + BATCH]))
                                    .order_by(License.period_end, License.id)).all()
            steps = map_(lambda row: _charge_step_logged(engine, provider, row, now=now), rows)
            charged = []
            for step, paid in steps:
                if paid is not None:
                    charged.append(paid)
                else:
                    outcome[step] += 1
            for license_id_behind in _record(engine, charged, now=now, outcome=outcome):
                _catch_up(engine, provider, license_id=license_id_behind, now=now, outcome=outcome)
    return {step: count for step, count in outcome.items() if count and step != "not_due"}


def _charge_step_logged(engine: sa.Engine, provider: PaymentProvider, row: tuple, *,
                        now: datetime) -> tuple[str, _Charged | None]:
    try:
        return _charge_step(engine, provider, row, now=now)
    except Exception:  # noqa: BLE001 (one license's trouble must not leave the others unbilled)
        log.exception("renewal of license %s failed; it is tried again at the next run", row[0].id)
        return "errors", None


def _record(engine: sa.Engine, charged: list[_Charged], *, now: datetime, outcome: Counter[str]) -> list[int]:
    """Record the periods charged: together in one transaction, or (when that fails) each in its own, so that one
    that cannot be recorded does not hold back the others. Returns the licenses that are due again already (a
    license behind by several periods)."""
    if not charged:
        return []
    try:
        with session_scope(engine) as session:
            started = _periods_paid(session, charged, now=now)
    except Exception:  # noqa: BLE001 (sorted out one by one below)
        log.warning("recording %s renewals together failed; recording them one by one", len(charged),
                    exc_info=True)
        started = []
        for paid in charged:
            try:
                with session_scope(engine) as session:
                    if period_paid(session, license_id=paid.renewal.license_id, renewal=paid.renewal,
                                   invoice=paid.invoice, now=now):
                        started.append(paid)
            except Exception:  # noqa: BLE001 (recorded at the next run, with the provider's same answer)
                log.exception("renewal of license %s was charged but not recorded; it is recorded at the next "
                              "run", paid.renewal.license_id)
                outcome["errors"] += 1
    outcome["renewed"] += len(started)
    return [paid.renewal.license_id for paid in started if paid.renewal.period_end <= now]


def _catch_up(engine: sa.Engine | None, provider: PaymentProvider, *, license_id: int, now: datetime,
              outcome: Counter[str]) -> None:
    """The further periods of a license that missed several (the scheduler was off), one at a time."""
    try:
        for _ in range(MAX_PERIODS_PER_RUN - 1):
            step, more_due = _renew_once(engine, provider, license_id=license_id, now=now)
            outcome[step] += 1
            if not more_due:
                return
    except Exception:  # noqa: BLE001 (as in bill_due)
        log.exception("renewal of license %s failed; it is tried again at the next run", license_id)
        outcome["errors"] += 1


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
    """One step of one license on its own: end it, or charge its next period and record it. Returns the step and
    whether another period of the license is due already."""
    with session_scope(engine, write=False) as session:
        row = session.exec(_terms().where(License.id == license_id)).first()
    if row is None:
        return "not_due", False
    step, paid = _charge_step(engine, provider, row, now=now, retry_now=retry_now)
    if paid is None:
        return step, False
    with session_scope(engine) as session:
        started = period_paid(session, license_id=license_id, renewal=paid.renewal, invoice=paid.invoice, now=now)
    if not started:  # another run was charged the same (one charge: the same key) and recorded it first
        return "not_due", False
    return "renewed", paid.renewal.period_end <= now


def _charge_step(engine: sa.Engine | None, provider: PaymentProvider, row: tuple, *, now: datetime,
                 retry_now: bool = False) -> tuple[str, _Charged | None]:
    """End the license of `row` (read with `_terms`), or charge its next period: ("charged", what to record), or
    the step and None. `retry_now`: a person retries a refused renewal (a suspended license too), whenever its next
    attempt was due."""
    lic, plan, product, coupon = row
    statuses = (*RENEWING, LicenseStatus.SUSPENDED.value) if retry_now else RENEWING
    if lic.status not in statuses or lic.period_end > now:
        return "not_due", None
    if not retry_now and lic.next_attempt_at is not None and lic.next_attempt_at > now:
        return "not_due", None
    if lic.cancel_at_period_end:
        return _end_at_period_end(engine, provider, lic, now=now), None
    if provider.renews_by_itself:
        return "by_provider", None  # its webhooks bring the renewal (`period_paid`, `renewal_failed`)
    renewal = _renewal_of(lic, plan, product, coupon)
    attempt = lic.renewal_failures
    try:
        invoice = provider.charge_renewal(subscription_id=lic.provider_subscription_id or "",
                                          period_index=renewal.period_index,
                                          charge=renewal.figures(lic.reference_name),
                                          idempotency_key=renewal_key(lic.id, renewal.period_index, attempt))
    except ProviderUnavailable as exc:
        log.warning("renewal of license %s: provider unavailable (%s); asked again next run", lic.id, exc.code)
        return "unavailable", None
    except PaymentError as exc:
        if exc.code in NOT_REFUSALS:
            # Not the card's answer (this key was sent before with other figures: the terms changed after a
            # charge whose answer was lost): the license must not be made past due for it.
            log.error("renewal of license %s: the provider answered %s; left for an operator", lic.id, exc.code)
            return "errors", None
        with session_scope(engine) as session:
            status = renewal_failed(session, license_id=lic.id, period_index=renewal.period_index,
                                    attempt=attempt, reason=exc.code, now=now)
        return ("suspended" if status == LicenseStatus.SUSPENDED else "failed"), None
    return "charged", _Charged(renewal=renewal, invoice=invoice)


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


def _start_period_statement() -> sa.Update:
    """`period_paid`'s conditional UPDATE, with its values as parameters: built once, as `bill-due` runs it thousands
    of times in a row and building a statement costs more than running it."""
    table = License.__table__
    time = table.c.period_start.type
    return (sa.update(table)
            .where(table.c.id == sa.bindparam("p_id"), table.c.periods_billed == sa.bindparam("p_index"),
                   table.c.status.in_((*RENEWING, LicenseStatus.SUSPENDED.value)))
            .values(periods_billed=sa.bindparam("p_next"), period_start=sa.bindparam("p_start", type_=time),
                    period_end=sa.bindparam("p_end", type_=time), quantity=sa.bindparam("p_quantity"),
                    plan_id=sa.bindparam("p_plan"), unit_amount=sa.bindparam("p_unit_amount"), next_quantity=None,
                    next_plan_id=None, status=LicenseStatus.ACTIVE.value, past_due_since=None, renewal_failures=0,
                    next_attempt_at=None)
            .returning(table.c.account_id))


_START_PERIOD = _start_period_statement()
_INSERT_INVOICES = sa.insert(Invoice.__table__).returning(Invoice.__table__.c.id, sort_by_parameter_order=True)
_INSERT_LINE = sa.insert(InvoiceLine.__table__)
_INSERT_EVENT = sa.insert(AuditEvent.__table__)


def period_paid(session: Session, *, license_id: int, renewal: Renewal, invoice: InvoiceData,
                now: datetime) -> bool:
    """Start the period `renewal` charged for, once: the conditional UPDATE lets one caller through, and only that
    one writes the invoice. The changes scheduled for the renewal take effect; a past-due or suspended license is
    active again. False when another run (or webhook) got there first."""
    return bool(_periods_paid(session, [_Charged(renewal=renewal, invoice=invoice)], now=now))


def start_period(session: Session, *, license_id: int, renewal: Renewal) -> bool:
    """Only the conditional UPDATE of `period_paid`, for a caller that writes the invoice itself (a provider's
    webhook: `provider_events`). False when another caller started the period first."""
    return session.connection().execute(_START_PERIOD, {
        "p_id": license_id, "p_index": renewal.period_index, "p_next": renewal.period_index + 1,
        "p_start": renewal.period_start, "p_end": renewal.period_end, "p_quantity": renewal.quantity,
        "p_plan": renewal.plan_id, "p_unit_amount": renewal.unit_amount}).scalar() is not None


def _periods_paid(session: Session, charged: list[_Charged], *, now: datetime) -> list[_Charged]:
    """`period_paid` for many licenses in one transaction: the conditional UPDATE for each, then their invoices,
    lines and history events in one INSERT each. Returns the periods this call started."""
    connection = session.connection()
    started: list[tuple[_Charged, int]] = []
    for paid in charged:
        renewal = paid.renewal
        account_id = connection.execute(_START_PERIOD, {
            "p_id": renewal.license_id, "p_index": renewal.period_index, "p_next": renewal.period_index + 1,
            "p_start": renewal.period_start, "p_end": renewal.period_end, "p_quantity": renewal.quantity,
            "p_plan": renewal.plan_id, "p_unit_amount": renewal.unit_amount}).scalar()
        if account_id is not None:
            started.append((paid, account_id))
    if not started:
        return []
    invoice_ids = connection.execute(_INSERT_INVOICES, [{
        "account_id": account_id, "license_id": paid.renewal.license_id,
        "provider_invoice_id": paid.invoice.provider_id[:64], "number": paid.invoice.number[:40],
        "status": paid.invoice.status, "currency": paid.invoice.currency, "subtotal": paid.invoice.subtotal,
        "discount": paid.invoice.discount, "total": paid.invoice.total, "period_start": paid.renewal.period_start,
        "period_end": paid.renewal.period_end, "created_at": now, "kind": "renewal",
        "period_index": paid.renewal.period_index} for paid, account_id in started]).scalars().all()
    lines = [{"invoice_id": invoice_id, "description": line.description[:200], "quantity": line.quantity,
              "unit_amount": line.unit_amount, "amount": line.amount}
             for invoice_id, (paid, _) in zip(invoice_ids, started, strict=True) for line in paid.invoice.lines]
    if lines:
        connection.execute(_INSERT_LINE, lines)
    references = dict(session.exec(select(License.id, License.reference_name).where(
        License.id.in_([paid.renewal.license_id for paid, _ in started]))).all())
    lookups = emails.Lookups()
    for paid, account_id in started:
        invoice, renewal = paid.invoice, paid.renewal
        emails_of_period(session, renewal, now=now, lookups=lookups, receipt=emails.Receipt(
            account_id=account_id, kind="renewal", number=invoice.number[:40],
            reference=references[renewal.license_id], currency=invoice.currency, subtotal=invoice.subtotal,
            discount=invoice.discount, total=invoice.total, created_at=now, period_start=renewal.period_start,
            period_end=renewal.period_end, lines=tuple((line.description[:200], line.quantity, line.unit_amount,
                                                        line.amount) for line in invoice.lines)))
    connection.execute(_INSERT_EVENT, [audit.event(
        account_id=account_id, user_id=None, action="license.renewed", object_type="license",
        object_id=paid.renewal.license_id, at=now, detail=f"period {paid.renewal.period_index + 1}: "
        f"{paid.invoice.total} {paid.invoice.currency} for {paid.renewal.quantity} licenses",
    ).model_dump(exclude={"id"}) for paid, account_id in started])
    return [paid for paid, _ in started]


def emails_of_period(session: Session, renewal: Renewal, *, now: datetime, invoice_id: int | None = None,
                     receipt: emails.Receipt | None = None, lookups: emails.Lookups | None = None) -> None:
    """The renewal's receipt (of `receipt`, or of the saved invoice `invoice_id`) and, when the month it starts is
    the last one its coupon discounts, the coupon reminder; queued in the transaction that starts the period."""
    if receipt is not None:
        emails.queue_receipt_of(session, receipt, now=now, lookups=lookups)
    else:
        emails.queue_receipt(session, invoice_id=invoice_id, now=now)
    months = renewal.price.discount_months
    if renewal.price.discount_is_temporary and months >= 2 and renewal.period_index == months - 1:
        emails.queue_coupon_ending(session, license_id=renewal.license_id, ends_at=renewal.period_end,
                                   full_price=renewal.price.monthly_after_discount, now=now)


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
    first_failure, before = lic.past_due_since or now, lic.status
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
    webhooks.license_status_changed(session, lic, before=before, now=now, reason="renewal_failed")
    if before != LicenseStatus.SUSPENDED.value:  # a suspended license's further refusals were told already
        emails.queue_payment_trouble(session, license_id=lic.id, suspended=status == LicenseStatus.SUSPENDED,
                                     next_attempt=next_attempt, now=now)
    return status


def end_license(session: Session, *, license_id: int, at: datetime, now: datetime, reason: str) -> bool:
    """End a license for good: Canceled, its open seats freed at `at` (each says why). Once: False when it had
    ended already."""
    before = session.exec(select(License.status).where(License.id == license_id)).first()
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
    lic = session.get(License, license_id)
    session.refresh(lic)
    webhooks.license_status_changed(session, lic, before=before or "", now=now, reason=reason, seats_freed=freed)
    return True

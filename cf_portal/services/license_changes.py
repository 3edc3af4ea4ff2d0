"""Managing a license after its purchase: what it costs and when it renews, more or fewer seats, another plan,
the card it is billed to, cancel and resume.

The rules, and where each is held:
- More seats and a dearer plan take effect now and are charged now, prorated to the day for the rest of the period
  (`pricing.quote_change`, the one pricing function): exactly once, like Create (`purchase.py`): one
  `license_change` row per submitted form (its key, unique per account), at most one under way per license (a
  partial unique index), the provider called with that row's key, the license changed by a conditional UPDATE
  that needs it as it was. Paid or nothing: a refused card changes nothing.
- Fewer seats and a cheaper plan take effect at the next renewal (`renewals.next_renewal` applies them), with no
  refund, and can be withdrawn until then. Never fewer seats than are assigned: the CHECK constraint
  `seats_assigned <= next_quantity` holds it against any assignment racing the decrease.
- Cancel ends the license at the end of its period (`renewals.end_license`); Resume takes that back before then.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal.db import session_scope
from cf_portal.models import (
    Coupon,
    License,
    LicenseChange,
    LicenseStatus,
    PaymentMethod,
    Plan,
    Product,
)
from cf_portal.payments.provider import (
    ChargeFigures,
    InvoiceData,
    InvoiceLineData,
    PaymentError,
    PaymentProvider,
    ProviderUnavailable,
)
from cf_portal.services import audit, coupons, renewals
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.billing import InvoiceView, list_invoices, save_invoice
from cf_portal.services.checkout import check_quantity
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.licenses import discount_ends
from cf_portal.services.payment_methods import usable_payment_method
from cf_portal.services.periods import day, days_left, period_bounds
from cf_portal.services.pricing import ChangeQuote, Quote, format_money, quote, quote_change
from cf_portal.services.roles import Permission
from cf_portal.services.seats import SeatEvent, seat_history, seats_left

log = logging.getLogger(__name__)

STATUS_LABELS = {"active": "Active", "past_due": "Past due", "suspended": "Suspended", "canceled": "Canceled"}
# Statuses whose seats, plan and card can still be changed.
OPEN = (LicenseStatus.ACTIVE.value, LicenseStatus.PAST_DUE.value, LicenseStatus.SUSPENDED.value)


# --- reading ------------------------------------------------------------------------------------------------


class PlanChoice(BaseModel):
    id: int
    label: str  # "Professional · $12.00 per license per month"
    unit_amount: int
    direction: str  # "upgrade" (now, prorated) | "downgrade" (at the next renewal) | "current"


class LicenseDetail(BaseModel):
    """Everything the Manage license page shows; plain data, safe to send to the browser."""

    id: int
    reference_name: str
    product: str
    plan: str
    plan_id: int
    status: str
    status_label: str
    quantity: int
    assigned: int
    available: int
    currency: str
    unit_price: str
    monthly_now: str
    discount: str  # "20% off, forever" or ""
    discount_ends: str  # "Discount ends on 4 March 2027" or ""
    period: str  # "4 December 2026 – 4 January 2027"
    renews_on: str  # the next renewal's date
    next_amount: str  # what the next renewal charges, the changes scheduled for it counted
    next_quantity: int  # 0: no decrease scheduled
    scheduled_quantity: str  # "10 → 6 on 4 January 2027" or ""
    next_plan: str  # the plan it moves to at the renewal, or ""
    cancel_at_period_end: bool
    ends_on: str  # "Ends on 4 January 2027" / "Canceled on …" or ""
    payment_problem: str  # past due / suspended, in words, or ""
    card_id: int  # 0: none
    card: str  # "Visa •••• 4242" or ""
    plans: list[PlanChoice]
    invoices: list[InvoiceView]
    history: list[SeatEvent]
    can_change: bool


def _license(session: Session, actor: Actor, license_id: int, *, lock: bool = False) -> License:
    query = select(License).where(License.id == license_id, License.account_id == actor.account_id,
                                  License.status != LicenseStatus.PENDING.value)
    lic = session.exec(query.with_for_update() if lock else query).first()
    if lic is None:
        raise NotFound("That license")
    return lic


def _price(session: Session, lic: License, *, quantity: int | None = None, unit_amount: int | None = None) -> Quote:
    coupon = session.get(Coupon, lic.coupon_id) if lic.coupon_id else None
    return quote(unit_amount=lic.unit_amount if unit_amount is None else unit_amount,
                 quantity=lic.quantity if quantity is None else quantity, currency=lic.currency,
                 discount=coupons.discount_of(coupon) if coupon else None)


def license_detail(session: Session, *, actor: Actor, license_id: int) -> LicenseDetail:
    lic = _license(session, actor, license_id)
    plan = session.get(Plan, lic.plan_id)
    product = session.get(Product, plan.product_id)
    coupon = session.get(Coupon, lic.coupon_id) if lic.coupon_id else None
    price = _price(session, lic)
    current = lic.periods_billed - 1
    renewal = renewals.next_renewal(session, lic)
    next_plan = session.get(Plan, lic.next_plan_id) if lic.next_plan_id else None
    card = session.get(PaymentMethod, lic.payment_method_id) if lic.payment_method_id else None
    canceled = lic.status == LicenseStatus.CANCELED.value
    if canceled:
        ends_on = f"Canceled on {day(lic.canceled_at or lic.period_end)}"
    elif lic.cancel_at_period_end:
        ends_on = f"Ends on {day(lic.period_end)}"
    else:
        ends_on = ""
    problem = ""
    if lic.status == LicenseStatus.PAST_DUE.value:
        problem = (f"The renewal on {day(lic.period_end)} could not be charged. It is tried again on "
                   f"{day(lic.next_attempt_at)}; change the card or pay now to keep the seats working.")
    elif lic.status == LicenseStatus.SUSPENDED.value:
        problem = ("The renewal could not be charged, so this license is suspended: its seats stay assigned but "
                   "grant nothing. Change the card and pay now to restore them.")
    plans = session.exec(select(Plan).where(Plan.product_id == product.id, Plan.currency == lic.currency,
                                            sa.or_(Plan.retired_at.is_(None), Plan.id == lic.plan_id))
                         .order_by(Plan.sort_order, Plan.unit_amount)).all()
    return LicenseDetail(
        id=lic.id, reference_name=lic.reference_name, product=product.name, plan=plan.name, plan_id=plan.id,
        status=lic.status, status_label=STATUS_LABELS.get(lic.status, lic.status), quantity=lic.quantity,
        assigned=lic.seats_assigned, available=seats_left(lic), currency=lic.currency,
        unit_price=format_money(lic.unit_amount, lic.currency),
        monthly_now=format_money(price.amount_for_month(current), lic.currency),
        discount=coupons.describe(coupon) if coupon else "",
        discount_ends=discount_ends(price, anchor=lic.created_at, periods_billed=lic.periods_billed),
        period=f"{day(lic.period_start)} – {day(lic.period_end)}",
        renews_on="" if canceled or lic.cancel_at_period_end else day(lic.period_end),
        next_amount="" if canceled or lic.cancel_at_period_end else format_money(renewal.amount, lic.currency),
        next_quantity=lic.next_quantity or 0,
        scheduled_quantity=(f"{lic.quantity} → {lic.next_quantity} on {day(lic.period_end)}"
                            if lic.next_quantity else ""),
        next_plan=next_plan.name if next_plan else "", cancel_at_period_end=lic.cancel_at_period_end,
        ends_on=ends_on, payment_problem=problem,
        card_id=card.id if card else 0, card=f"{card.brand.title()} •••• {card.last4}" if card else "",
        plans=[PlanChoice(id=p.id, label=f"{p.name} · {format_money(p.unit_amount, p.currency)} per license per month",
                          unit_amount=p.unit_amount,
                          direction="current" if p.id == lic.plan_id else
                          ("upgrade" if p.unit_amount >= lic.unit_amount else "downgrade")) for p in plans],
        invoices=list_invoices(session, account_id=actor.account_id, license_id=lic.id, limit=24),
        history=seat_history(session, account_id=actor.account_id, license_id=lic.id, limit=50),
        can_change=actor.can(Permission.CHANGE_LICENSES) and not canceled,
    )


# --- changes now, charged now ---------------------------------------------------------------------------------


class ChangePreview(BaseModel):
    """What a change costs, shown before it is confirmed; `due_now` is what Confirm charges."""

    due_now: int
    due_now_display: str
    next_renewal: int
    next_renewal_display: str
    summary: str  # "$40.00 now for the 15 days left, then $240.00 a month from 4 January 2027"
    at_renewal: bool  # a downgrade: nothing now, the new plan from the renewal


def _quote_now(session: Session, lic: License, *, quantity: int, plan: Plan, now: datetime) -> ChangeQuote:
    left, total = days_left(now, lic.period_start, lic.period_end)
    return quote_change(before=_price(session, lic),
                        after=_price(session, lic, quantity=quantity, unit_amount=plan.unit_amount),
                        month_index=lic.periods_billed - 1, days_left=left, days_in_period=total)


def _preview(change: ChangeQuote, lic: License) -> ChangePreview:
    money = lambda amount: format_money(amount, lic.currency)  # noqa: E731
    days = f"{change.days_left} day{'s' if change.days_left != 1 else ''}"
    return ChangePreview(
        due_now=change.due_now, due_now_display=money(change.due_now), next_renewal=change.next_renewal,
        next_renewal_display=money(change.next_renewal),
        summary=(f"{money(change.due_now)} now for the {days} left in this period, then "
                 f"{money(change.next_renewal)} a month from {day(lic.period_end)}."),
        at_renewal=False)


def _check_changeable(lic: License) -> None:
    if lic.status != LicenseStatus.ACTIVE.value:
        raise DomainError("Pay what is due on this license before changing it." if lic.status in OPEN
                          else "This license has ended.", field="change")
    if lic.cancel_at_period_end:
        raise DomainError("This license is set to end. Resume it first.", field="change")


def _added(text: str | int) -> int:
    try:
        return check_quantity(text)
    except DomainError as exc:
        raise DomainError(exc.message.replace("number of licenses", "number of licenses to add"),
                          field="add") from None


def preview_add(session: Session, *, actor: Actor, license_id: int, add: str | int, now: datetime) -> ChangePreview:
    lic = _license(session, actor, license_id)
    added = _added(add)
    return _preview(_quote_now(session, lic, quantity=lic.quantity + added, plan=session.get(Plan, lic.plan_id),
                               now=now), lic)


def _plan_of_product(session: Session, lic: License, plan_id: int) -> Plan:
    plan = session.get(Plan, plan_id)
    current = session.get(Plan, lic.plan_id)
    if (plan is None or plan.product_id != current.product_id or plan.currency != lic.currency
            or (plan.retired_at is not None and plan.id != lic.plan_id)):
        raise NotFound("That plan")
    return plan


def preview_plan_change(session: Session, *, actor: Actor, license_id: int, plan_id: int,
                        now: datetime) -> ChangePreview:
    lic = _license(session, actor, license_id)
    plan = _plan_of_product(session, lic, plan_id)
    if plan.unit_amount >= lic.unit_amount:
        return _preview(_quote_now(session, lic, quantity=lic.quantity, plan=plan, now=now), lic)
    later = _price(session, lic, quantity=lic.next_quantity or lic.quantity, unit_amount=plan.unit_amount)
    amount = later.amount_for_month(lic.periods_billed)
    return ChangePreview(due_now=0, due_now_display=format_money(0, lic.currency), next_renewal=amount,
                         next_renewal_display=format_money(amount, lic.currency),
                         summary=(f"Nothing now. {plan.name} from {day(lic.period_end)}: "
                                  f"{format_money(amount, lic.currency)} a month."),
                         at_renewal=True)


class ChangeResult(BaseModel):
    charged: int
    charged_display: str
    message: str
    replayed: bool


class ChangeUnconfirmed(DomainError):
    def __init__(self) -> None:
        super().__init__("We could not reach the payment provider to confirm the payment. Press Confirm again to "
                         "finish: you will not be charged twice.", field="change")


def add_licenses(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, license_id: int,
                 add: str | int, expected_due_now: int, idempotency_key: str, now: datetime) -> ChangeResult:
    """Add seats now, charged now prorated; exactly once per `idempotency_key`."""
    actor.require(Permission.CHANGE_LICENSES)
    added = _added(add)
    return _change_now(engine, provider, actor=actor, license_id=license_id, added=added, plan_id=None,
                       expected_due_now=expected_due_now, idempotency_key=idempotency_key, now=now)


def change_plan(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, license_id: int,
                plan_id: int, expected_due_now: int, idempotency_key: str, now: datetime) -> ChangeResult:
    """A dearer plan now (prorated, like more seats); a cheaper one from the next renewal."""
    actor.require(Permission.CHANGE_LICENSES)
    with session_scope(engine, write=False) as session:
        lic = _license(session, actor, license_id)
        plan = _plan_of_product(session, lic, plan_id)
        if plan.id == lic.plan_id and not lic.next_plan_id:
            raise DomainError("This license is on that plan already.", field="plan")
    if plan.id == lic.plan_id or plan.unit_amount < lic.unit_amount:
        return _schedule_plan(engine, provider, actor=actor, license_id=license_id, plan_id=plan.id, now=now)
    return _change_now(engine, provider, actor=actor, license_id=license_id, added=0, plan_id=plan.id,
                       expected_due_now=expected_due_now, idempotency_key=idempotency_key, now=now)


def _change_now(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, license_id: int, added: int,
                plan_id: int | None, expected_due_now: int, idempotency_key: str, now: datetime) -> ChangeResult:
    change, is_new = _reserve(engine, actor=actor, license_id=license_id, added=added, plan_id=plan_id,
                              expected_due_now=expected_due_now, idempotency_key=idempotency_key, now=now)
    if change.status == "done":
        return _result(change, currency=_currency(engine, change), replayed=True)
    if change.status == "failed":
        raise DomainError(f"{change.outcome} Nothing was charged.", field="change")
    try:
        invoice = _charge(engine, provider, change, preview=is_new)
    except ProviderUnavailable as exc:
        log.warning("license change %s: provider unavailable (%s)", change.id, exc.code)
        raise ChangeUnconfirmed() from exc
    except PaymentError as exc:
        _finish(engine, change, status="failed", outcome=_refusal(exc), now=now)
        raise DomainError(f"{_refusal(exc)} Nothing was charged and the license is unchanged.",
                          field="change") from exc
    return _confirm(engine, actor=actor, change=change, invoice=invoice, now=now)


def _charge(engine: sa.Engine | None, provider: PaymentProvider, change: LicenseChange, *,
            preview: bool) -> InvoiceData | None:
    """Send the change to the provider with the change's own key. Everything sent is worked out from the change's
    row alone, so a retry (by the buyer, or `resolve_pending_changes`) sends the same request: one charge."""
    with session_scope(engine, write=False) as session:
        lic = session.get(License, change.license_id)
        plan = session.get(Plan, change.plan_id_after)
        product = session.get(Product, plan.product_id)
    added = change.quantity_after - change.quantity_before
    what = f"{added} more" if added else f"{plan.name} plan"
    period_end = period_bounds(lic.created_at, change.period_index)[1]
    figures = ChargeFigures(currency=lic.currency, subtotal=change.amount_due, discount=0, lines=(InvoiceLineData(
        description=(f"{lic.reference_name} · {what} · {product.name} {plan.name}, {day(change.created_at)} – "
                     f"{day(period_end)} (prorated)")[:200],
        quantity=added or change.quantity_after, unit_amount=0, amount=change.amount_due),))
    if provider.previews_invoices and preview:
        previewed = provider.preview_change(subscription_id=lic.provider_subscription_id or "", plan_code=plan.code,
                                            unit_amount=plan.unit_amount, currency=lic.currency,
                                            quantity=change.quantity_after, proration_date=change.created_at)
        if previewed != change.amount_due:
            log.error("license change %s: the provider would charge %s, the portal quoted %s", change.id,
                      previewed, change.amount_due)
            raise PaymentError("amount_mismatch", "The payment provider would charge a different amount than the "
                               "one shown, so nothing was changed. Contact support.")
    return provider.change_subscription(
        subscription_id=lic.provider_subscription_id or "", plan_code=plan.code, unit_amount=plan.unit_amount,
        currency=lic.currency, quantity=change.quantity_after, proration_date=change.created_at,
        charge=figures if change.amount_due > 0 else None, idempotency_key=f"license-change-{change.id}")


def resolve_pending_changes(engine: sa.Engine | None, provider: PaymentProvider, *, older_than: timedelta,
                            now: datetime) -> dict[str, int]:
    """Finish or undo changes whose charge was never confirmed (the buyer left after a provider timeout), each
    sent again with its own key, so nothing is charged twice. Run by `python -m cf_portal.cli resolve-pending`."""
    with session_scope(engine, write=False) as session:
        pending = session.exec(select(LicenseChange).where(LicenseChange.status == "pending",
                                                           LicenseChange.created_at < now - older_than)
                               .order_by(LicenseChange.id)).all()
    outcome = {"confirmed": 0, "undone": 0, "still_unavailable": 0}
    for change in pending:
        try:
            invoice = _charge(engine, provider, change, preview=False)
        except ProviderUnavailable:
            outcome["still_unavailable"] += 1
            continue
        except PaymentError as exc:
            _finish(engine, change, status="failed", outcome=_refusal(exc), now=now)
            outcome["undone"] += 1
            continue
        with session_scope(engine, write=False) as session:
            actor = actor_for_user(session, change.created_by_user_id)
        _confirm(engine, actor=actor, change=change, invoice=invoice, now=now)
        outcome["confirmed"] += 1
    return outcome


def _refusal(exc: PaymentError) -> str:
    if exc.code == "card_declined":
        return "The card billed for this license was declined."
    if exc.code == "expired_card":
        return "The card billed for this license has expired."
    return exc.message


def _reserve(engine: sa.Engine | None, *, actor: Actor, license_id: int, added: int, plan_id: int | None,
             expected_due_now: int, idempotency_key: str, now: datetime) -> tuple[LicenseChange, bool]:
    if not 16 <= len(idempotency_key or "") <= 80:
        raise DomainError("Reload the page and try again.", field="change")
    try:
        with session_scope(engine) as session:
            lic = _license(session, actor, license_id, lock=True)  # first: see `_lock_license`
            existing = session.exec(select(LicenseChange).where(
                LicenseChange.account_id == actor.account_id,
                LicenseChange.idempotency_key == idempotency_key)).first()
            if existing is not None:
                if existing.license_id != license_id:
                    raise DomainError("Reload the page and try again.", field="change")
                return existing, False
            _check_changeable(lic)
            if added and lic.next_quantity:
                raise DomainError("Withdraw the decrease scheduled for the renewal before adding licenses.",
                                  field="add")
            plan = session.get(Plan, lic.plan_id) if plan_id is None else _plan_of_product(session, lic, plan_id)
            quantity = lic.quantity + added
            change = _quote_now(session, lic, quantity=quantity, plan=plan, now=now)
            if change.due_now != expected_due_now:
                raise DomainError("The price has changed since it was shown. Check the new amount, then confirm "
                                  "again.", field="change")
            row = LicenseChange(account_id=actor.account_id, license_id=lic.id, idempotency_key=idempotency_key,
                                period_index=lic.periods_billed - 1, quantity_before=lic.quantity,
                                quantity_after=quantity, plan_id_before=lic.plan_id, plan_id_after=plan.id,
                                unit_amount_after=plan.unit_amount, amount_due=change.due_now,
                                created_by_user_id=actor.user_id, created_at=now)
            session.add(row)
            session.flush()
            return row, True
    except sa.exc.IntegrityError:
        with session_scope(engine, write=False) as session:
            existing = session.exec(select(LicenseChange).where(
                LicenseChange.account_id == actor.account_id,
                LicenseChange.idempotency_key == idempotency_key)).first()
        if existing is not None:
            return existing, False
        raise DomainError("Another change of this license is being confirmed. Wait a moment, then reload the page.",
                          field="change") from None


def _lock_license(session: Session, license_id: int) -> None:
    """Every transaction that writes a license's changes takes the license's row lock first (then the change
    rows): one order for all, so they queue up instead of deadlocking on PostgreSQL."""
    session.exec(select(License.id).where(License.id == license_id).with_for_update()).first()


def _finish(engine: sa.Engine | None, change: LicenseChange, *, status: str, outcome: str, now: datetime) -> None:
    with session_scope(engine) as session:
        _lock_license(session, change.license_id)
        session.execute(sa.update(LicenseChange).where(LicenseChange.id == change.id,
                                                       LicenseChange.status == "pending")
                        .values(status=status, outcome=outcome[:200], finished_at=now))


def _confirm(engine: sa.Engine | None, *, actor: Actor, change: LicenseChange, invoice: InvoiceData | None,
             now: datetime) -> ChangeResult:
    with session_scope(engine) as session:
        _lock_license(session, change.license_id)
        done = session.execute(sa.update(LicenseChange).where(LicenseChange.id == change.id,
                                                              LicenseChange.status == "pending")
                               .values(status="done", finished_at=now)).rowcount
        if done:
            changed = session.execute(
                sa.update(License).where(License.id == change.license_id, License.quantity == change.quantity_before,
                                         License.plan_id == change.plan_id_before)
                .values(quantity=change.quantity_after, plan_id=change.plan_id_after,
                        unit_amount=change.unit_amount_after, next_plan_id=None)
            ).rowcount
            if not changed:  # cannot happen while the pending row holds the license; never lose a payment silently
                log.error("license change %s was paid but the license had changed meanwhile", change.id)
            lic = session.get(License, change.license_id)
            if invoice is not None:
                save_invoice(session, lic=lic, invoice=invoice, kind="change", period_start=change.created_at,
                             period_end=lic.period_end, now=now)
            audit.record(session, actor, "license.changed", "license", lic.id,
                         f"{change.quantity_before} → {change.quantity_after} licenses, plan {change.plan_id_before} "
                         f"→ {change.plan_id_after}, {change.amount_due} {lic.currency} now", at=now)
        fresh = session.get(LicenseChange, change.id)
        currency = session.get(License, change.license_id).currency
    return _result(fresh, currency=currency, replayed=not done)


def _currency(engine: sa.Engine | None, change: LicenseChange) -> str:
    with session_scope(engine, write=False) as session:
        return session.get(License, change.license_id).currency


def _result(change: LicenseChange, *, currency: str, replayed: bool) -> ChangeResult:
    added = change.quantity_after - change.quantity_before
    charged = format_money(change.amount_due, currency)
    what = (f"{added} license{'s' if added != 1 else ''} added" if added else "Plan changed")
    return ChangeResult(charged=change.amount_due, charged_display=charged,
                        message=f"{what}. {charged} charged now.", replayed=replayed)


# --- changes at the next renewal ------------------------------------------------------------------------------


def _tell_provider(provider: PaymentProvider, session: Session, lic: License) -> None:
    """Tell the provider the terms of the next renewal as the license now has them."""
    if not lic.provider_subscription_id:
        return
    plan = session.get(Plan, lic.next_plan_id or lic.plan_id)
    provider.schedule_change(subscription_id=lic.provider_subscription_id, plan_code=plan.code,
                             unit_amount=plan.unit_amount, currency=lic.currency,
                             quantity=lic.next_quantity or lic.quantity)


def _at_renewal(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, license_id: int,
                values: dict, audit_action: str, detail: str, now: datetime, check=None) -> None:  # noqa: ANN001
    """Set what the next renewal does (in the database first: its constraints decide), then tell the provider;
    if the provider cannot be told, the license is put back as it was."""
    actor.require(Permission.CHANGE_LICENSES)
    with session_scope(engine) as session:
        lic = _license(session, actor, license_id, lock=True)
        if lic.status not in OPEN:
            raise DomainError("This license has ended.", field="change")
        if check is not None:
            check(session, lic)
        before = {key: getattr(lic, key) for key in values}
        try:
            session.execute(sa.update(License).where(License.id == lic.id).values(**values))
            session.flush()
        except sa.exc.IntegrityError as exc:
            raise DomainError("Seats were assigned a moment ago. Reload the page and try again.",
                              field="quantity") from exc
        session.refresh(lic)
        audit.record(session, actor, audit_action, "license", lic.id, detail, at=now)
    try:
        with session_scope(engine, write=False) as session:
            _tell_provider(provider, session, session.get(License, license_id))
    except PaymentError as exc:
        with session_scope(engine) as session:
            session.execute(sa.update(License).where(License.id == license_id).values(**before))
        raise DomainError(f"The payment provider could not be told: {exc.message} Nothing was changed.",
                          field="change") from exc


def schedule_decrease(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, license_id: int,
                      quantity: str | int, now: datetime) -> str:
    """Fewer seats from the next renewal; returns "10 → 6 on 4 January 2027"."""
    try:
        wanted = check_quantity(quantity)
    except DomainError as exc:
        raise DomainError(exc.message, field="quantity") from None
    result = {}

    def check(session: Session, lic: License) -> None:
        if lic.cancel_at_period_end:
            raise DomainError("This license is set to end. Resume it first.", field="quantity")
        if wanted >= lic.quantity:
            raise DomainError(f"Enter fewer than {lic.quantity} licenses. To add licenses, use Add licenses.",
                              field="quantity")
        if wanted < lic.seats_assigned:
            free = lic.seats_assigned - wanted
            raise DomainError(f"{lic.seats_assigned} licenses are assigned. Free {free} seat{'s' if free != 1 else ''}"
                              f" first, then reduce to {wanted}.", field="quantity")
        result["text"] = f"{lic.quantity} → {wanted} on {day(lic.period_end)}"

    _at_renewal(engine, provider, actor=actor, license_id=license_id, values={"next_quantity": wanted},
                audit_action="license.decrease_scheduled", detail=f"to {wanted} at the renewal", now=now, check=check)
    return result["text"]


def withdraw_decrease(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, license_id: int,
                      now: datetime) -> None:
    _at_renewal(engine, provider, actor=actor, license_id=license_id, values={"next_quantity": None},
                audit_action="license.decrease_withdrawn", detail="", now=now)


def _schedule_plan(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, license_id: int,
                   plan_id: int, now: datetime) -> ChangeResult:
    def check(session: Session, lic: License) -> None:
        if lic.cancel_at_period_end:
            raise DomainError("This license is set to end. Resume it first.", field="plan")

    with session_scope(engine, write=False) as session:
        current = _license(session, actor, license_id).plan_id
    next_plan = None if plan_id == current else plan_id
    _at_renewal(engine, provider, actor=actor, license_id=license_id, values={"next_plan_id": next_plan},
                audit_action="license.plan_scheduled", detail=f"plan {next_plan or current} at the renewal",
                now=now, check=check)
    return ChangeResult(charged=0, charged_display="", replayed=False,
                        message="The plan changes at the next renewal." if next_plan else "The plan change was "
                        "withdrawn.")


def withdraw_plan_change(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, license_id: int,
                         now: datetime) -> None:
    _at_renewal(engine, provider, actor=actor, license_id=license_id, values={"next_plan_id": None},
                audit_action="license.plan_withdrawn", detail="", now=now)


def set_cancel(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, license_id: int,
               cancel: bool, now: datetime) -> str:
    """Cancel at the end of the period (True) or resume (False); returns the date it ends or renews."""
    actor.require(Permission.CHANGE_LICENSES)
    with session_scope(engine) as session:
        lic = _license(session, actor, license_id, lock=True)
        if lic.status not in OPEN:
            raise DomainError("This license has ended.", field="change")
        if lic.cancel_at_period_end == cancel:
            return day(lic.period_end)
        subscription_id = lic.provider_subscription_id
    if subscription_id:
        try:
            provider.set_cancel_at_period_end(subscription_id=subscription_id, cancel=cancel)
        except PaymentError as exc:
            raise DomainError(f"The payment provider could not be told: {exc.message} Nothing was changed.",
                              field="change") from exc
    with session_scope(engine) as session:
        lic = _license(session, actor, license_id, lock=True)
        lic.cancel_at_period_end = cancel
        audit.record(session, actor, "license.cancel_scheduled" if cancel else "license.resumed", "license", lic.id,
                     f"at {lic.period_end:%Y-%m-%d}", at=now)
        return day(lic.period_end)


def change_card(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, license_id: int,
                payment_method_id: int, now: datetime) -> str:
    """Bill the license to another saved card; a past-due or suspended license is charged at once on it.
    Returns what happened, in words."""
    actor.require(Permission.CHANGE_LICENSES)
    with session_scope(engine, write=False) as session:
        lic = _license(session, actor, license_id)
        if lic.status not in OPEN:
            raise DomainError("This license has ended.", field="card")
        pm = usable_payment_method(session, account_id=actor.account_id, payment_method_id=payment_method_id,
                                   today=now.date())
    if lic.provider_subscription_id:
        try:
            provider.set_subscription_payment_method(subscription_id=lic.provider_subscription_id,
                                                     payment_method_id=pm.provider_id)
        except PaymentError as exc:
            raise DomainError(f"The payment provider could not be told: {exc.message}", field="card") from exc
    with session_scope(engine) as session:
        session.execute(sa.update(License).where(License.id == lic.id).values(payment_method_id=pm.id))
        audit.record(session, actor, "license.card_changed", "license", lic.id, f"card {pm.id}", at=now)
    if lic.status in (LicenseStatus.PAST_DUE.value, LicenseStatus.SUSPENDED.value):
        step = renewals.pay_now(engine, provider, actor=actor, license_id=lic.id, now=now)
        if step == "renewed":
            return "Card changed and the overdue renewal paid. The license is active again."
        if step == "unavailable":
            return "Card changed. The payment provider did not answer; the renewal is tried again soon."
        return "Card changed, but it was declined too. Try another card."
    return "Card changed. The next renewals are charged to it."

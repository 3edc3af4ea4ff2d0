"""Renewals (`services/renewals.py`) against the real test database and the sandbox provider: one charge per license
and period whatever runs twice or at once, past due and suspended, paying after a card change, the end of a
cancelled license, changes scheduled for the renewal, coupon durations, and a year's total to the cent.

The races are real on PostgreSQL only (`DB=postgres`; see tests/support/concurrency.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import (
    Coupon,
    Employee,
    Invoice,
    InvoiceLine,
    License,
    SeatAssignment,
)
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.payments.sandbox_tables import SandboxInvoice
from cf_portal.services import license_changes, renewals, seats
from cf_portal.services.coupons import discount_of
from cf_portal.services.errors import DomainError
from cf_portal.services.periods import period_bounds
from cf_portal.services.pricing import quote
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.services.seats import Holder
from tests.factories import make_plan
from tests.support.concurrency import run_at_once
from tests.unit.conftest import NOW, Seeded
from tests.unit.test_purchase import request_for

DECLINES_AT_RENEWAL = "4000000000000341"


def buy(seeded: Seeded, provider: SandboxProvider, card_id: int, *, quantity: int = 5, coupon: str = "",
        plan: str = "awareness-business", name: str = "Sales team", at: datetime = NOW) -> License:
    result = create_license(seeded.engine, provider, actor=seeded.actor, now=at,
                            request=request_for(seeded, card_id, plan=plan, quantity=quantity, coupon=coupon,
                                                name=name))
    return fresh(seeded, result.license_id)


def fresh(seeded: Seeded, license_id: int) -> License:
    with session_scope(seeded.engine, write=False) as session:
        return session.get(License, license_id)


def month(lic: License, index: int) -> datetime:
    """When period `index` of the license starts (its renewal's moment)."""
    return period_bounds(lic.created_at, index)[0]


def renewal_invoices(seeded: Seeded, license_id: int) -> list[Invoice]:
    with session_scope(seeded.engine, write=False) as session:
        return list(session.exec(select(Invoice).where(Invoice.license_id == license_id, Invoice.kind == "renewal")
                                 .order_by(Invoice.period_index)).all())


def charged(seeded: Seeded, lic: License) -> list[int]:
    """The totals the sandbox charged for the license's subscription, oldest first (what the card paid)."""
    with session_scope(seeded.engine, write=False) as session:
        return list(session.exec(select(SandboxInvoice.total)
                                 .where(SandboxInvoice.subscription_id == lic.provider_subscription_id)
                                 .order_by(SandboxInvoice.created_at)).all())


def customer_invoices(seeded: Seeded, provider: SandboxProvider) -> int:
    with session_scope(seeded.engine, write=False) as session:
        customer = session.exec(sa.text("SELECT provider_customer_id FROM account WHERE id = :id"),
                                params={"id": seeded.actor.account_id}).scalar_one()
    return len(provider.list_invoices(customer_id=customer))


def assign_one(seeded: Seeded, lic: License) -> int:
    with session_scope(seeded.engine) as session:
        employee = session.exec(select(Employee.id).where(Employee.account_id == seeded.actor.account_id)
                                .order_by(Employee.id)).first()
        return seats.assign(session, actor=seeded.actor, license_id=lic.id,
                            holders=[Holder(kind="employee", id=employee)], now=NOW)[0]


def bill(seeded: Seeded, provider: SandboxProvider, at: datetime, **only: int) -> dict[str, int]:
    return renewals.bill_due(seeded.engine, provider, now=at, **only)


@pytest.fixture
def card(seeded: Seeded, provider: SandboxProvider) -> int:
    return seeded.add_card(provider).id


def billed_to_declining_card(seeded: Seeded, provider: SandboxProvider, lic: License) -> int:
    """Make a card that saves but declines every charge (0341) the license's card, as a customer would."""
    declining = seeded.add_card(provider, DECLINES_AT_RENEWAL).id
    license_changes.change_card(seeded.engine, provider, actor=seeded.actor, license_id=lic.id,
                                payment_method_id=declining, now=NOW)
    return declining


# --- exactly once ---------------------------------------------------------------------------------------------


def test_bill_due_twice_renews_once(seeded: Seeded, provider: SandboxProvider, card: int) -> None:
    lic = buy(seeded, provider, card)
    assert bill(seeded, provider, NOW + timedelta(days=20)) == {}  # the period has not ended
    renewal_at = month(lic, 1)
    assert bill(seeded, provider, renewal_at) == {"renewed": 1}
    assert bill(seeded, provider, renewal_at) == {}
    assert bill(seeded, provider, renewal_at + timedelta(hours=1)) == {}
    [invoice] = renewal_invoices(seeded, lic.id)
    assert (invoice.period_index, invoice.total, invoice.period_start, invoice.period_end) == (
        1, 9500, renewal_at, month(lic, 2))
    with session_scope(seeded.engine, write=False) as session:
        line = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).one()
    assert line.description.startswith("Sales team · Security Awareness Training Business × 5")
    assert charged(seeded, lic) == [9500, 9500]
    renewed = fresh(seeded, lic.id)
    assert (renewed.periods_billed, renewed.period_start, renewed.period_end, renewed.status) == (
        2, renewal_at, month(lic, 2), "active")


def test_a_run_catches_up_on_every_period_it_missed(seeded: Seeded, provider: SandboxProvider, card: int) -> None:
    lic = buy(seeded, provider, card)
    assert bill(seeded, provider, month(lic, 3) + timedelta(days=2)) == {"renewed": 3}
    assert [i.period_index for i in renewal_invoices(seeded, lic.id)] == [1, 2, 3]
    assert fresh(seeded, lic.id).period_end == month(lic, 4)


@pytest.mark.parametrize("runs", [2, 4])
def test_runs_at_once_charge_once(seeded: Seeded, provider: SandboxProvider, card: int, runs: int) -> None:
    lic = buy(seeded, provider, card)
    outcomes: list[dict[str, int]] = []
    run_at_once(runs, lambda _: outcomes.append(bill(seeded, provider, month(lic, 1))))
    assert sorted(outcomes, key=len) == [{}] * (runs - 1) + [{"renewed": 1}]  # one run recorded the period
    assert customer_invoices(seeded, provider) == 2  # the first month and one renewal, at the provider
    assert len(renewal_invoices(seeded, lic.id)) == 1
    assert fresh(seeded, lic.id).periods_billed == 2


# --- refused renewals -----------------------------------------------------------------------------------------


def test_a_declined_renewal_is_retried_on_days_1_3_and_5_then_suspended(seeded: Seeded, provider: SandboxProvider,
                                                                         card: int) -> None:
    lic = buy(seeded, provider, card)
    seat = assign_one(seeded, lic)
    billed_to_declining_card(seeded, provider, lic)
    first = month(lic, 1)
    assert bill(seeded, provider, first) == {"failed": 1}
    past_due = fresh(seeded, lic.id)
    assert (past_due.status, past_due.past_due_since, past_due.next_attempt_at, past_due.renewal_failures) == (
        "past_due", first, first + timedelta(days=1), 1)
    assert bill(seeded, provider, first + timedelta(hours=23)) == {}  # not before its day
    for day, next_day in ((1, 3), (3, 5)):
        assert bill(seeded, provider, first + timedelta(days=day)) == {"failed": 1}
        retried = fresh(seeded, lic.id)
        assert (retried.status, retried.next_attempt_at) == ("past_due", first + timedelta(days=next_day))
    assert bill(seeded, provider, first + timedelta(days=5)) == {"suspended": 1}
    suspended = fresh(seeded, lic.id)
    assert (suspended.status, suspended.next_attempt_at, suspended.renewal_failures) == ("suspended", None, 4)
    assert bill(seeded, provider, first + timedelta(days=40)) == {}  # never retried by itself again
    # The seats stay assigned (they grant nothing while suspended); nothing was charged after the first month.
    with session_scope(seeded.engine, write=False) as session:
        assert session.get(SeatAssignment, seat).unassigned_at is None
    assert suspended.seats_assigned == 1 and suspended.periods_billed == 1
    assert charged(seeded, lic) == [9500] and renewal_invoices(seeded, lic.id) == []


def test_a_scheduler_that_was_off_keeps_the_retry_days(seeded: Seeded, provider: SandboxProvider, card: int) -> None:
    lic = buy(seeded, provider, card)
    billed_to_declining_card(seeded, provider, lic)
    first = month(lic, 1)
    bill(seeded, provider, first)
    assert bill(seeded, provider, first + timedelta(days=4)) == {"failed": 1}  # days 1 and 3 were missed
    assert fresh(seeded, lic.id).next_attempt_at == first + timedelta(days=5)
    assert bill(seeded, provider, first + timedelta(days=9)) == {"suspended": 1}


def test_pay_now_after_changing_the_card_restores_the_license(seeded: Seeded, provider: SandboxProvider,
                                                              card: int) -> None:
    lic = buy(seeded, provider, card)
    billed_to_declining_card(seeded, provider, lic)
    first = month(lic, 1)
    for day in (0, 1, 3, 5):
        bill(seeded, provider, first + timedelta(days=day))
    assert fresh(seeded, lic.id).status == "suspended"
    with pytest.raises(DomainError, match="no payment due"):
        renewals.pay_now(seeded.engine, provider, actor=seeded.actor, license_id=buy(
            seeded, provider, card, name="Paid up").id, now=first)
    # A person retries on the declining card: refused again, still suspended, and the key was a new one.
    assert renewals.pay_now(seeded.engine, provider, actor=seeded.actor, license_id=lic.id,
                            now=first + timedelta(days=6)) == "suspended"
    message = license_changes.change_card(seeded.engine, provider, actor=seeded.actor, license_id=lic.id,
                                          payment_method_id=card, now=first + timedelta(days=6))
    assert message == "Card changed and the overdue renewal paid. The license is active again."
    paid = fresh(seeded, lic.id)
    assert (paid.status, paid.periods_billed, paid.period_start, paid.period_end) == (
        "active", 2, first, month(lic, 2))
    assert (paid.past_due_since, paid.renewal_failures, paid.next_attempt_at) == (None, 0, None)
    assert [i.period_index for i in renewal_invoices(seeded, lic.id)] == [1]
    assert charged(seeded, lic) == [9500, 9500]


def test_a_refused_renewal_run_twice_at_once_counts_one_failure(seeded: Seeded, provider: SandboxProvider,
                                                                card: int) -> None:
    lic = buy(seeded, provider, card)
    billed_to_declining_card(seeded, provider, lic)
    run_at_once(3, lambda _: bill(seeded, provider, month(lic, 1)))
    refused = fresh(seeded, lic.id)
    assert (refused.status, refused.renewal_failures) == ("past_due", 1)


# --- the end of a cancelled license, and changes at the renewal -------------------------------------------------


def test_cancel_at_period_end_ends_the_license_and_frees_its_seats(seeded: Seeded, provider: SandboxProvider,
                                                                   card: int) -> None:
    lic = buy(seeded, provider, card)
    seat = assign_one(seeded, lic)
    license_changes.set_cancel(seeded.engine, provider, actor=seeded.actor, license_id=lic.id, cancel=True, now=NOW)
    end = lic.period_end
    assert bill(seeded, provider, end - timedelta(seconds=1)) == {}
    assert bill(seeded, provider, end + timedelta(hours=2)) == {"ended": 1}
    assert bill(seeded, provider, end + timedelta(hours=3)) == {}
    ended = fresh(seeded, lic.id)
    assert (ended.status, ended.canceled_at, ended.seats_assigned, ended.cancel_at_period_end) == (
        "canceled", end, 0, False)
    with session_scope(seeded.engine, write=False) as session:
        freed = session.get(SeatAssignment, seat)
    assert (freed.unassigned_at, freed.ended_reason) == (end, "license_canceled")
    assert charged(seeded, lic) == [9500] and renewal_invoices(seeded, lic.id) == []
    assert provider.get_subscription(subscription_id=lic.provider_subscription_id).status == "canceled"


def test_a_subscription_gone_at_the_provider_does_not_stop_the_end(seeded: Seeded, provider: SandboxProvider,
                                                                   card: int) -> None:
    lic = buy(seeded, provider, card)
    license_changes.set_cancel(seeded.engine, provider, actor=seeded.actor, license_id=lic.id, cancel=True, now=NOW)
    with session_scope(seeded.engine) as session:
        session.execute(sa.update(License).where(License.id == lic.id).values(provider_subscription_id="sub_gone"))
    other = buy(seeded, provider, card, name="Other team")
    assert bill(seeded, provider, month(lic, 1)) == {"ended": 1, "renewed": 1}
    assert fresh(seeded, other.id).periods_billed == 2


def test_a_decrease_and_a_cheaper_plan_take_effect_at_the_renewal(seeded: Seeded, provider: SandboxProvider,
                                                                  card: int) -> None:
    lic = buy(seeded, provider, card, quantity=5)
    license_changes.schedule_decrease(seeded.engine, provider, actor=seeded.actor, license_id=lic.id, quantity=3,
                                      now=NOW)
    starter = seeded.plans["awareness-starter"]
    license_changes.change_plan(seeded.engine, provider, actor=seeded.actor, license_id=lic.id, plan_id=starter.id,
                                expected_due_now=0, idempotency_key=uuid.uuid4().hex, now=NOW)
    assert fresh(seeded, lic.id).quantity == 5  # nothing changes before the renewal
    assert bill(seeded, provider, month(lic, 1)) == {"renewed": 1}
    renewed = fresh(seeded, lic.id)
    assert (renewed.quantity, renewed.plan_id, renewed.unit_amount, renewed.next_quantity, renewed.next_plan_id) == (
        3, starter.id, 900, None, None)
    [invoice] = renewal_invoices(seeded, lic.id)
    assert (invoice.subtotal, invoice.total) == (2700, 2700)
    assert charged(seeded, lic) == [9500, 2700]


# --- coupon durations -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("coupon", "totals"), [
    ("TENOFF", [8500, 9500, 9500, 9500, 9500, 9500]),  # $10 off the first month only
    ("SPRING15", [8075, 8075, 8075, 9500, 9500, 9500]),  # 15% off (1,425) for 3 months
    ("WELCOME20", [7600] * 6),  # 20% off (1,900) forever
    ("", [9500] * 6),
])
def test_coupon_durations_across_renewals(seeded: Seeded, provider: SandboxProvider, card: int, coupon: str,
                                          totals: list[int]) -> None:
    lic = buy(seeded, provider, card, quantity=5, coupon=coupon)  # Business, 5 × $19.00
    for index in range(1, 6):
        bill(seeded, provider, month(lic, index))
    assert charged(seeded, lic) == totals
    assert [i.total for i in renewal_invoices(seeded, lic.id)] == totals[1:]
    assert [i.discount for i in renewal_invoices(seeded, lic.id)] == [9500 - t for t in totals[1:]]


# --- a year, to the cent ----------------------------------------------------------------------------------------


def _coupon_off(subtotal: int, percent_off: int | None, amount_off: int | None) -> int:
    """What a coupon takes off one month, worked out here on its own: a percentage rounded half up to the cent, or
    a fixed amount, never more than the month's price."""
    if percent_off is not None:
        off = int((Decimal(subtotal) * percent_off / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    else:
        off = amount_off
    return min(off, subtotal)


@st.composite
def purchase_dates(draw: st.DrawFn) -> datetime:
    year, month_of_year = draw(st.integers(2026, 2028)), draw(st.integers(1, 12))
    last = (datetime(year + month_of_year // 12, month_of_year % 12 + 1, 1) - timedelta(days=1)).day
    day = min(draw(st.sampled_from([1, 2, 15, 27, 28, 29, 30, 31])), last)
    return datetime(year, month_of_year, day, draw(st.integers(0, 23)), draw(st.integers(0, 59)), tzinfo=UTC)


coupon_terms = st.one_of(
    st.none(),
    st.tuples(st.one_of(st.tuples(st.integers(1, 100), st.none()), st.tuples(st.none(), st.integers(1, 50_000))),
              st.sampled_from(["once", "repeating", "forever"]), st.integers(1, 14)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(unit_amount=st.integers(0, 20_000), quantity=st.integers(1, 60), terms=coupon_terms, bought=purchase_dates())
def test_a_year_charges_the_price_times_twelve_minus_the_coupon_months(
        seeded: Seeded, provider: SandboxProvider, card: int, unit_amount: int, quantity: int,
        terms: tuple | None, bought: datetime) -> None:
    tag = uuid.uuid4().hex[:10].upper()
    with session_scope(seeded.engine) as session:
        plan = make_plan(session, unit_amount=unit_amount)
        coupon = None
        if terms is not None:
            (percent_off, amount_off), duration, months = terms
            coupon = Coupon(code=f"P{tag}", percent_off=percent_off, amount_off=amount_off,
                            currency="usd" if amount_off else None, duration=duration,
                            duration_months=months if duration == "repeating" else None)
            session.add(coupon)
            session.flush()
        price = quote(unit_amount=unit_amount, quantity=quantity, currency="usd",
                      discount=discount_of(coupon) if coupon else None)
    result = create_license(seeded.engine, provider, actor=seeded.actor, now=bought, request=PurchaseRequest(
        reference_name=f"Year {tag}", plan_id=plan.id, quantity=quantity, coupon_code=coupon.code if coupon else "",
        payment_method_id=card, expected_total=price.total, idempotency_key=uuid.uuid4().hex))
    lic = fresh(seeded, result.license_id)
    for index in range(1, 12):
        assert bill(seeded, provider, month(lic, index), license_id=lic.id) == {"renewed": 1}
    assert bill(seeded, provider, month(lic, 11) + timedelta(days=27), license_id=lic.id) == {}

    subtotal = unit_amount * quantity
    discounted_months = 0
    off = 0
    if terms is not None:
        (percent_off, amount_off), duration, months = terms
        off = _coupon_off(subtotal, percent_off, amount_off)
        discounted_months = {"once": 1, "forever": 12}.get(duration, min(months, 12))
    expected = subtotal * 12 - off * discounted_months
    assert sum(price.amount_for_month(i) for i in range(12)) == expected
    assert sum(charged(seeded, lic)) == expected
    with session_scope(seeded.engine, write=False) as session:
        assert session.exec(select(sa.func.sum(Invoice.total)).where(Invoice.license_id == lic.id)).one() == expected
    assert fresh(seeded, lic.id).periods_billed == 12


def test_the_summary_reads_as_a_sentence() -> None:
    assert renewals.summary({"renewed": 2, "failed": 1}) == "2 licenses renewed, 1 past due"
    assert renewals.summary({"suspended": 1}) == "1 license suspended"
    assert renewals.summary({}) == "No license was due."


def test_the_0341_card_saves_but_declines_a_purchase_too(seeded: Seeded, provider: SandboxProvider) -> None:
    """Why a demo bills an existing license to it (Billing, or the license's card) rather than buying with it."""
    declining = seeded.add_card(provider, DECLINES_AT_RENEWAL)
    assert declining.last4 == "0341"
    with pytest.raises(DomainError, match="declined"):
        buy(seeded, provider, declining.id, name="Never bought")


def test_a_key_sent_before_with_other_figures_is_no_refusal(seeded: Seeded, provider: SandboxProvider,
                                                            card: int) -> None:
    """A charge whose answer was lost, then the terms changed: the provider refuses the key's new figures. That is
    not the card's answer, so the license is not made past due; the run reports it for an operator."""
    lic = buy(seeded, provider, card)
    with session_scope(seeded.engine, write=False) as session:
        other = renewals.next_renewal(session, fresh(seeded, lic.id))
    provider.charge_renewal(subscription_id=lic.provider_subscription_id, period_index=1,
                            charge=other.figures("Another name"), idempotency_key=renewals.renewal_key(lic.id, 1, 0))
    assert bill(seeded, provider, month(lic, 1)) == {"errors": 1}
    assert fresh(seeded, lic.id).status == "active"


def test_one_license_that_breaks_does_not_stop_the_others(seeded: Seeded, provider: SandboxProvider, card: int,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    broken = buy(seeded, provider, card, name="Broken")
    fine = buy(seeded, provider, card, name="Fine")
    charge = provider.charge_renewal

    def charge_or_break(**kwargs):  # noqa: ANN003, ANN202
        if kwargs["subscription_id"] == broken.provider_subscription_id:
            raise RuntimeError("something no rule foresaw")
        return charge(**kwargs)

    monkeypatch.setattr(provider, "charge_renewal", charge_or_break)
    assert bill(seeded, provider, month(broken, 1)) == {"errors": 1, "renewed": 1}
    assert fresh(seeded, fine.id).periods_billed == 2 and fresh(seeded, broken.id).periods_billed == 1
    assert f"renewal of license {broken.id} failed" in caplog.text

"""Idle seats: unassigned seats, seats of deactivated people, what they cost a month, what to do about them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from cf_portal.db import session_scope
from cf_portal.models import Account, Coupon, Employee, License, Plan, SeatAssignment
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services import license_changes, seats
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.entitlements import record_use
from cf_portal.services.errors import DomainError, NotAllowed, NotFound
from cf_portal.services.idle_seats import PRODUCTS_REPORT_USE, IdleSeats, _costs, free_deactivated_seats, idle_seats
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.services.seats import Holder
from tests.factories import make_account, make_child_account, make_employee, make_license, make_plan
from tests.unit.conftest import NOW, Seeded

# --- building an account ------------------------------------------------------------------------------------


@dataclass
class Company:
    account: Account
    actor: Actor
    plan: Plan


def company(session: Session, *, unit_amount: int = 1200, name: str | None = None) -> Company:
    account, user = make_account(session, name)
    return Company(account, actor_for_user(session, user.id), make_plan(session, unit_amount=unit_amount))


def coupon(session: Session, **terms) -> Coupon:  # noqa: ANN003
    row = Coupon(code=f"C{uuid.uuid4().hex[:10].upper()}", **terms)
    session.add(row)
    session.flush()
    return row


def hold(session: Session, who: Company, lic: License, *, active: int = 0, deactivated: int = 0,
         names: list[str] | None = None) -> list[int]:
    """Give seats of `lic` to new employees (through the seat service), then deactivate the last `deactivated` of
    them without freeing their seats (as a deactivation made before seats were freed with it left them)."""
    people = [make_employee(session, who.account, **({"name": names[i]} if names else {}))
              for i in range(active + deactivated)]
    ids = seats.assign(session, actor=who.actor, license_id=lic.id,
                       holders=[Holder(kind="employee", id=p.id) for p in people])
    for person in people[active:]:
        person.active = False
    session.flush()
    session.refresh(lic)
    return ids[active:]


def only(report: IdleSeats):  # noqa: ANN201
    [row] = report.licenses
    return row


# --- counting and pricing -------------------------------------------------------------------------------------


def test_unassigned_seats_cost_their_price_and_suggest_reducing_to_the_seats_held(session: Session) -> None:
    acme = company(session)
    lic = make_license(session, acme.account, acme.plan, quantity=10, reference_name="Sales")
    hold(session, acme, lic, active=3)

    report = idle_seats(session, account_id=acme.account.id, now=NOW)
    row = only(report)
    assert (row.unassigned, row.unassigned_cost, row.unassigned_cost_display) == (7, 8400, "$84.00")
    assert (row.deactivated, row.deactivated_cost, row.idle, row.idle_cost) == ([], 0, 7, 8400)
    assert (row.action, row.reduce_to, row.action_label) == ("reduce", 3, "Reduce to 3 at renewal")
    assert row.reduce_saves_display == "$84.00"
    assert row.confirm_text.startswith("From the next renewal it is billed for 3 licenses instead of 10: $84.00 a month "
                                       "less.")
    assert report.summary == "$84.00 a month on 7 idle seats"
    assert (report.idle, report.renewing_licenses, report.use_reported) == (7, 1, False)


def test_a_percent_coupon_lowers_what_idle_seats_cost(session: Session) -> None:
    acme = company(session, unit_amount=1900)
    forever = coupon(session, percent_off=20, duration="forever")
    lic = make_license(session, acme.account, acme.plan, quantity=5, coupon_id=forever.id)
    hold(session, acme, lic, active=2)
    # 5 seats cost 95.00 - 19.00 = 76.00 a month, 2 seats 38.00 - 7.60 = 30.40: the 3 idle ones 45.60.
    assert only(idle_seats(session, account_id=acme.account.id)).idle_cost == 4560


@pytest.mark.parametrize(("periods_billed", "expected"), [(1, 2700), (2, 3000)], ids=["first month", "second month"])
def test_a_coupon_of_the_first_month_counts_only_in_the_first_month(session: Session, periods_billed: int,
                                                                    expected: int) -> None:
    acme = company(session, unit_amount=1000)
    once = coupon(session, percent_off=10, duration="once")
    lic = make_license(session, acme.account, acme.plan, quantity=4, coupon_id=once.id, periods_billed=periods_billed)
    hold(session, acme, lic, active=1)
    assert only(idle_seats(session, account_id=acme.account.id)).idle_cost == expected


def test_a_fixed_coupon_stays_with_the_seats_that_remain(session: Session) -> None:
    acme = company(session, unit_amount=1200)
    ten_off = coupon(session, amount_off=1000, currency="usd", duration="forever")
    lic = make_license(session, acme.account, acme.plan, quantity=5, coupon_id=ten_off.id)
    hold(session, acme, lic, active=3)
    # 60.00 - 10.00 with 5 seats, 36.00 - 10.00 with 3: the 2 idle seats cost 24.00, their full price.
    assert only(idle_seats(session, account_id=acme.account.id)).idle_cost == 2400


def test_seats_of_deactivated_people_are_idle_and_freed_before_any_reduction(session: Session) -> None:
    acme = company(session)
    lic = make_license(session, acme.account, acme.plan, quantity=6, reference_name="Support")
    gone = hold(session, acme, lic, active=2, deactivated=2, names=["Ava", "Ben", "Zoe Gone", "Ada Gone"])

    row = only(idle_seats(session, account_id=acme.account.id))
    assert (row.unassigned, row.unassigned_cost, row.deactivated_cost) == (2, 2400, 2400)
    assert row.deactivated_text == "2 held by deactivated people (Ada Gone, Zoe Gone)"
    assert row.confirm_text.startswith("Ada Gone, Zoe Gone (deactivated) lose their seats.")
    assert sorted(h.assignment_id for h in row.deactivated) == sorted(gone)
    assert (row.idle, row.idle_cost_display) == (4, "$48.00")
    # A decrease below the 4 seats assigned would be refused: their seats go first.
    assert (row.action, row.action_label, row.reduce_to) == ("free", "Free these seats", 0)


def test_a_child_account_is_never_a_deactivated_holder(session: Session) -> None:
    acme = company(session)
    lic = make_license(session, acme.account, acme.plan, quantity=1)
    seats.assign(session, actor=acme.actor, license_id=lic.id,
                 holders=[Holder(kind="child", id=make_child_account(session, acme.account).id)])
    assert idle_seats(session, account_id=acme.account.id).licenses == []


def test_a_scheduled_decrease_counts_and_is_not_suggested_again(session: Session) -> None:
    acme = company(session)
    lic = make_license(session, acme.account, acme.plan, quantity=10, reference_name="Sales",
                       created_at=datetime(2026, 12, 4, 9, tzinfo=UTC))
    hold(session, acme, lic, active=4)
    lic.next_quantity = 6
    session.flush()
    row = only(idle_seats(session, account_id=acme.account.id))
    # Only the seats still paid for from the renewal are idle: 6 - 4.
    assert (row.renewing_quantity, row.unassigned, row.idle_cost) == (6, 2, 2400)
    assert row.scheduled == "10 → 6 on 4 January 2027"
    assert (row.action, row.reduce_to) == ("reduce", 4)

    lic.next_quantity = 4
    session.flush()
    report = idle_seats(session, account_id=acme.account.id)
    assert (report.licenses, report.summary) == ([], "No idle seats")


def test_a_license_nobody_holds_keeps_one_seat(session: Session) -> None:
    acme = company(session)
    three = make_license(session, acme.account, acme.plan, quantity=3, reference_name="Three")
    one = make_license(session, acme.account, acme.plan, quantity=1, reference_name="One")
    report = idle_seats(session, account_id=acme.account.id)
    by_id = {row.license_id: row for row in report.licenses}
    assert (by_id[three.id].action, by_id[three.id].reduce_to, by_id[three.id].reduce_saves_display) == (
        "reduce", 1, "$24.00")  # the last seat stays
    assert (by_id[one.id].action, by_id[one.id].action_label) == ("none", "")
    assert by_id[one.id].note == "Cancel the license to stop paying for its last seat."
    assert [row.license_id for row in report.licenses] == [three.id, one.id]  # the dearest first
    assert report.summary == "$48.00 a month on 4 idle seats"


@pytest.mark.parametrize("values", [{"status": "canceled"}, {"status": "pending"}, {"cancel_at_period_end": True}],
                         ids=["canceled", "pending", "ending"])
def test_licenses_that_will_not_renew_are_left_out(session: Session, values: dict) -> None:
    acme = company(session)
    make_license(session, acme.account, acme.plan, quantity=5, **values)
    report = idle_seats(session, account_id=acme.account.id)
    assert (report.licenses, report.renewing_licenses) == ([], 0)


def test_another_accounts_licenses_and_people_never_count(session: Session) -> None:
    acme, globex = company(session), company(session)
    ours = make_license(session, acme.account, acme.plan, quantity=3)
    hold(session, acme, ours, active=1, deactivated=1)
    theirs = make_license(session, globex.account, globex.plan, quantity=9)
    hold(session, globex, theirs, active=1, deactivated=3)
    # The same email in both accounts (demo copies share them): still two people.
    make_employee(session, globex.account, email="shared@example.com", active=False)
    make_employee(session, acme.account, email="shared@example.com")

    report = idle_seats(session, account_id=acme.account.id)
    row = only(report)
    assert (row.license_id, row.unassigned, len(row.deactivated), report.idle) == (ours.id, 1, 1, 2)
    assert only(idle_seats(session, account_id=globex.account.id)).idle == 8


def test_currencies_are_summed_apart(session: Session) -> None:
    acme = company(session)
    euro_plan = Plan(product_id=acme.plan.product_id, code=f"eur-{uuid.uuid4().hex[:6]}", name="Euro",
                     unit_amount=500, currency="eur")
    session.add(euro_plan)
    session.flush()
    make_license(session, acme.account, acme.plan, quantity=2, reference_name="Dollars")
    make_license(session, acme.account, euro_plan, quantity=3, reference_name="Euros")
    assert idle_seats(session, account_id=acme.account.id).summary == "€15.00 + $24.00 a month on 5 idle seats"


@given(unit=st.integers(0, 100_000), percent=st.one_of(st.none(), st.integers(1, 100)),
       groups=st.lists(st.integers(0, 50), min_size=3, max_size=3), spare=st.integers(0, 50))
def test_the_costs_of_the_groups_add_up_to_the_licenses_price_without_them(unit: int, percent: int | None,
                                                                          groups: list[int], spare: int) -> None:
    paid = max(sum(groups) + spare, 1)
    lic = License(unit_amount=unit, currency="usd", periods_billed=1)
    discount = Coupon(code="X", percent_off=percent, duration="forever") if percent else None
    costs = _costs(lic, discount, paid, groups)
    [whole] = _costs(lic, discount, paid, [paid])
    assert all(cost >= 0 for cost in costs)
    assert sum(costs) <= whole
    assert (sum(costs) == whole) if sum(groups) == paid else True


# --- seats not used for 30 days --------------------------------------------------------------------------------


class ReportedUse:
    """A stand-in for the products' reports of use: when each seat was last used (every seat asked is reported,
    None for never)."""

    def __init__(self, last_used: dict[int, datetime]) -> None:
        self.last_used_at = last_used
        self.asked: list[int] = []

    def last_used(self, session: Session, *, account_id: int,
                  assignment_ids: list[int]) -> dict[int, datetime | None]:
        self.asked += assignment_ids
        return {i: self.last_used_at.get(i) for i in assignment_ids}


def test_seats_unused_for_30_days_count_once_use_is_reported(session: Session) -> None:
    acme = company(session)
    lic = make_license(session, acme.account, acme.plan, quantity=4)
    long_ago = NOW - timedelta(days=90)
    people = [make_employee(session, acme.account, name=name) for name in ("Used", "Idle", "Never", "New")]
    ids = seats.assign(session, actor=acme.actor, license_id=lic.id, now=long_ago,
                       holders=[Holder(kind="employee", id=p.id) for p in people[:3]])
    [new] = seats.assign(session, actor=acme.actor, license_id=lic.id, now=NOW - timedelta(days=3),
                         holders=[Holder(kind="employee", id=people[3].id)])
    use = ReportedUse({ids[0]: NOW - timedelta(days=2), ids[1]: NOW - timedelta(days=31)})

    assert idle_seats(session, account_id=acme.account.id, now=NOW).licenses == []  # nothing reported: nothing said
    report = idle_seats(session, account_id=acme.account.id, use=use, now=NOW)
    row = only(report)
    assert sorted(h.name for h in row.unused) == ["Idle", "Never"]
    assert row.unused_text == "2 not used for 30 days (Idle, Never)"
    assert (row.unused_cost, row.idle, report.use_reported) == (2400, 2, True)
    assert row.action == "none"  # shown, not acted on
    assert sorted(use.asked) == sorted([*ids, new])


def test_the_entitlement_checks_report_use_product_by_product(session: Session) -> None:
    """A product that checked a seat of the account reports use: its unchecked seats are unused after 30 days. A
    product that never checked any is not judged, nor is another account's use counted."""
    acme, globex = company(session), company(session)
    checked = make_license(session, acme.account, acme.plan, quantity=3, reference_name="Checked")
    silent = make_license(session, acme.account, make_plan(session), quantity=2, reference_name="Silent")
    long_ago = NOW - timedelta(days=60)

    def give(who: Company, lic: License, names: list[str]) -> list[int]:
        return seats.assign(session, actor=who.actor, license_id=lic.id, now=long_ago, holders=[
            Holder(kind="employee", id=make_employee(session, who.account, name=name).id) for name in names])

    used, stale, never = give(acme, checked, ["Used", "Stale", "Never"])
    give(acme, silent, ["Quiet", "Calm"])
    theirs = make_license(session, globex.account, acme.plan, quantity=1)  # the same product, another account
    [their_seat] = give(globex, theirs, ["Theirs"])
    record_use(session, account_id=globex.account.id, seat_ids=[their_seat], now=NOW)

    assert idle_seats(session, account_id=acme.account.id, use=PRODUCTS_REPORT_USE, now=NOW).use_reported is False

    record_use(session, account_id=acme.account.id, seat_ids=[used], now=NOW - timedelta(days=1))
    record_use(session, account_id=acme.account.id, seat_ids=[stale], now=NOW - timedelta(days=40))
    record_use(session, account_id=acme.account.id, seat_ids=[their_seat, used], now=NOW)  # not theirs to stamp
    report = idle_seats(session, account_id=acme.account.id, use=PRODUCTS_REPORT_USE, now=NOW)
    [row] = report.licenses
    assert (row.reference_name, sorted(h.name for h in row.unused), report.use_reported) == (
        "Checked", ["Never", "Stale"], True)
    assert {h.assignment_id for h in row.unused} == {stale, never}


def test_the_use_of_more_seats_than_a_query_has_parameters_is_read(session: Session) -> None:
    """At 100,000 employees the panel asks about 100,000 seats: more than the 65,535 bind parameters PostgreSQL
    takes in one statement (an IN list of ids failed there). Only the seats asked about come back."""
    acme = company(session)
    lic = make_license(session, acme.account, acme.plan, quantity=2)
    first, second = seats.assign(session, actor=acme.actor, license_id=lic.id, now=NOW - timedelta(days=60), holders=[
        Holder(kind="employee", id=make_employee(session, acme.account, name=name).id) for name in ("Ann", "Bob")])
    record_use(session, account_id=acme.account.id, seat_ids=[first], now=NOW)
    asked = [first, *range(10_000_000, 10_070_000)]  # not `second`; the rest are no seats of this account
    assert PRODUCTS_REPORT_USE.last_used(session, account_id=acme.account.id, assignment_ids=asked) == {first: NOW}
    assert PRODUCTS_REPORT_USE.last_used(session, account_id=acme.account.id, assignment_ids=[second]) == {
        second: None}


# --- freeing the seats of deactivated people ------------------------------------------------------------------


@dataclass
class Freeing:
    engine: sa.Engine
    acme: Company
    license_id: int
    gone: list[int]  # seats of deactivated people
    kept: int  # a seat of an active person
    other_license_id: int
    other_license_gone: int  # a seat of a deactivated person on another license of ours
    foreign: int  # a seat of a deactivated person of another account

    def open_seats(self) -> set[int]:
        with session_scope(self.engine, write=False) as session:
            return set(session.exec(select(SeatAssignment.id).where(SeatAssignment.unassigned_at.is_(None))))

    def free(self, ids: list[int], *, actor: Actor | None = None, license_id: int | None = None) -> int:
        with session_scope(self.engine) as session:
            return free_deactivated_seats(session, actor=actor or self.acme.actor,
                                          license_id=license_id or self.license_id, assignment_ids=ids)


@pytest.fixture
def freeing(engine: sa.Engine) -> Freeing:
    with session_scope(engine) as session:
        acme, globex = company(session), company(session)
        lic = make_license(session, acme.account, acme.plan, quantity=5)
        [kept, *gone] = seats.assign(session, actor=acme.actor, license_id=lic.id, holders=[
            Holder(kind="employee", id=make_employee(session, acme.account).id) for _ in range(3)])
        other = make_license(session, acme.account, acme.plan, quantity=2)
        [other_gone] = hold(session, acme, other, deactivated=1)
        theirs = make_license(session, globex.account, globex.plan, quantity=2)
        [foreign] = hold(session, globex, theirs, deactivated=1)
        session.execute(sa.update(Employee).where(Employee.id.in_(
            select(SeatAssignment.employee_id).where(SeatAssignment.id.in_(gone)))).values(active=False))
    return Freeing(engine, acme, lic.id, gone, kept, other.id, other_gone, foreign)


def test_freeing_frees_every_listed_seat_in_one_go(freeing: Freeing) -> None:
    assert freeing.free(freeing.gone) == 2
    assert freeing.open_seats() == {freeing.kept, freeing.other_license_gone, freeing.foreign}
    with session_scope(freeing.engine, write=False) as session:
        assert session.get(License, freeing.license_id).seats_assigned == 1
        [row] = [r for r in idle_seats(session, account_id=freeing.acme.account.id).licenses
                 if r.license_id == freeing.license_id]
    assert (row.unassigned, row.deactivated, row.action, row.reduce_to) == (4, [], "reduce", 1)


@pytest.mark.parametrize("case", ["another account's seat", "a seat of another license", "an active person's seat",
                                  "a seat that does not exist"])
def test_freeing_refuses_a_seat_it_did_not_list_and_frees_none(freeing: Freeing, case: str) -> None:
    stranger = {"another account's seat": freeing.foreign, "a seat of another license": freeing.other_license_gone,
                "an active person's seat": freeing.kept, "a seat that does not exist": 999_999}[case]
    before = freeing.open_seats()
    with pytest.raises(DomainError) as refused:
        freeing.free([*freeing.gone, stranger])
    expected = "The seats changed since they were shown" if case == "an active person's seat" else "That seat was not"
    assert refused.value.message.startswith(expected)
    assert freeing.open_seats() == before


def test_freeing_refuses_another_accounts_license(freeing: Freeing) -> None:
    with session_scope(freeing.engine, write=False) as session:
        theirs = session.exec(select(SeatAssignment.license_id).where(SeatAssignment.id == freeing.foreign)).one()
    before = freeing.open_seats()
    with pytest.raises(NotFound, match="That license was not found."):
        freeing.free([freeing.foreign], license_id=theirs)
    assert freeing.open_seats() == before


def test_freeing_a_seat_already_freed_frees_none(freeing: Freeing) -> None:
    freeing.free(freeing.gone[:1])
    before = freeing.open_seats()
    with pytest.raises(DomainError, match="changed since they were shown"):
        freeing.free(freeing.gone)
    assert freeing.open_seats() == before


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("license_admin", True), ("billing_admin", False),
                                               ("viewer", False)])
def test_freeing_needs_manage_seats(freeing: Freeing, role: str, allowed: bool) -> None:
    actor = freeing.acme.actor.model_copy(update={"role": role})
    if allowed:
        assert freeing.free(freeing.gone, actor=actor) == 2
    else:
        with pytest.raises(NotAllowed, match="Only owners and license admins"):
            freeing.free(freeing.gone, actor=actor)
        assert set(freeing.gone) <= freeing.open_seats()


# --- with the services that act on it --------------------------------------------------------------------------


def test_the_suggested_reduction_is_one_the_license_accepts(seeded: Seeded, provider: SandboxProvider) -> None:
    card = seeded.add_card(provider)
    plan = seeded.plans["awareness-starter"]
    bought = create_license(seeded.engine, provider, actor=seeded.actor, now=NOW, request=PurchaseRequest(
        reference_name="Pilot", plan_id=plan.id, quantity=5, payment_method_id=card.id,
        expected_total=5 * plan.unit_amount, idempotency_key=uuid.uuid4().hex))
    with session_scope(seeded.engine) as session:
        people = session.exec(select(Employee.id).where(Employee.account_id == seeded.actor.account_id)
                              .order_by(Employee.id).limit(3)).all()
        seats.assign(session, actor=seeded.actor, license_id=bought.license_id, now=NOW,
                     holders=[Holder(kind="employee", id=i) for i in people])
        session.execute(sa.update(Employee).where(Employee.id == people[2]).values(active=False))
        row = only(idle_seats(session, account_id=seeded.actor.account_id, now=NOW))
    assert (row.action, row.unassigned, len(row.deactivated)) == ("free", 2, 1)
    # The decrease the panel would otherwise suggest is refused while the deactivated person holds a seat.
    with pytest.raises(DomainError, match="3 licenses are assigned"):
        license_changes.schedule_decrease(seeded.engine, provider, actor=seeded.actor, license_id=row.license_id,
                                          quantity=2, now=NOW)

    with session_scope(seeded.engine) as session:
        free_deactivated_seats(session, actor=seeded.actor, license_id=row.license_id,
                               assignment_ids=[h.assignment_id for h in row.deactivated], now=NOW)
        row = only(idle_seats(session, account_id=seeded.actor.account_id, now=NOW))
    assert (row.action, row.reduce_to, row.idle_cost) == ("reduce", 2, 3 * plan.unit_amount)
    license_changes.schedule_decrease(seeded.engine, provider, actor=seeded.actor, license_id=row.license_id,
                                      quantity=row.reduce_to, now=NOW)
    with session_scope(seeded.engine, write=False) as session:
        assert idle_seats(session, account_id=seeded.actor.account_id, now=NOW).summary == "No idle seats"

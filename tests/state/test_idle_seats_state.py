"""The Idle seats panel's state: what it shows, who may act, and ids of other accounts (or of nothing)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import reflex as rx
import sqlalchemy as sa
from reflex_base.utils.format import json_dumps
from sqlmodel import select

from cf_portal import db
from cf_portal.models import Employee, License, PaymentMethod, Plan, Role, SeatAssignment, User
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services import seats
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.entitlements import record_use
from cf_portal.services.errors import NotAllowed
from cf_portal.services.payment_methods import add_payment_method
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.services.seats import Holder
from cf_portal.state.idle_seats import IdleSeatsState
from tests.factories import make_account
from tests.state.conftest import demo_owner_id, new_root_state, sign_in_as, substate
from tests.state.test_access import nothing_changes, toast
from tests.support.events import run_now

BILLING_ADMIN = "billing@acme-security.example"
LICENSE_ADMIN = "it-admin@acme-security.example"
VIEWER = "auditor@acme-security.example"


@dataclass(frozen=True)
class Bought:
    license_id: int
    gone: list[int]  # seats of deactivated people
    held: list[int]  # seats of active people


def buy(actor: Actor, *, name: str, quantity: int, active: int, deactivated: int) -> Bought:
    """A license of the actor's account, its seats given to active employees who hold no seat yet, the last
    `deactivated` of whom are then deactivated without their seats being freed."""
    provider, now = SandboxProvider(), datetime.now(UTC)
    with db.session_scope(write=False) as session:
        plan = session.exec(select(Plan).where(Plan.code == "awareness-starter")).one()
        card_id = session.exec(select(PaymentMethod.id).where(PaymentMethod.account_id == actor.account_id)).first()
    card_id = card_id or add_payment_method(None, provider, actor=actor, number="4242424242424242", expiry="12/34",
                                            cvc="123", today=now.date()).id
    bought = create_license(None, provider, actor=actor, now=now, request=PurchaseRequest(
        reference_name=name, plan_id=plan.id, quantity=quantity, payment_method_id=card_id,
        expected_total=quantity * plan.unit_amount, idempotency_key=uuid.uuid4().hex))
    with db.session_scope() as session:
        holding = select(SeatAssignment.employee_id).where(SeatAssignment.unassigned_at.is_(None),
                                                          SeatAssignment.employee_id.is_not(None))
        people = session.exec(select(Employee.id).where(Employee.account_id == actor.account_id, Employee.active,
                                                        Employee.id.not_in(holding))
                              .order_by(Employee.id).limit(active + deactivated)).all()
        ids = seats.assign(session, actor=actor, license_id=bought.license_id,
                           holders=[Holder(kind="employee", id=i) for i in people])
        session.execute(sa.update(Employee).where(Employee.id.in_(people[active:])).values(active=False))
    return Bought(bought.license_id, gone=ids[active:], held=ids[:active])


def user_id(email: str) -> int:
    with db.session_scope(write=False) as session:
        return session.exec(select(User.id).where(User.email == email)).one()


def panel(root: rx.State) -> IdleSeatsState:
    state = substate(root, IdleSeatsState)
    run_now(state, "load")
    return state


def signed_in(email: str) -> rx.State:
    root = new_root_state()
    sign_in_as(root, user_id(email))
    return root


def open_seats() -> set[int]:
    with db.session_scope(write=False) as session:
        return set(session.exec(select(SeatAssignment.id).where(SeatAssignment.unassigned_at.is_(None))))


@dataclass(frozen=True)
class Two:
    """The demo account's licenses with idle seats, and another account's."""

    unassigned: Bought  # 5 seats, 2 held: "Reduce to 2 at renewal"
    deactivated: Bought  # 4 seats, 1 held by an active person, 2 by deactivated ones: "Free these seats"
    other: Bought


@pytest.fixture
def two(root_state: rx.State) -> Two:
    with db.session_scope() as session:
        demo = actor_for_user(session, demo_owner_id())
        globex, owner = make_account(session, "Globex Corporation")
        # The same people (and emails) as the demo account, as a demo copy has.
        for person in session.exec(select(Employee).where(Employee.account_id == demo.account_id).limit(6)).all():
            session.add(Employee(account_id=globex.id, name=person.name, email=person.email))
        other = actor_for_user(session, owner.id)
    return Two(unassigned=buy(demo, name="Sales team", quantity=5, active=2, deactivated=0),
               deactivated=buy(demo, name="Support", quantity=4, active=1, deactivated=2),
               other=buy(other, name="Globex team", quantity=9, active=1, deactivated=3))


def test_the_panel_shows_the_accounts_idle_seats_and_their_cost(root_state: rx.State, two: Two) -> None:
    state = panel(root_state)
    assert state.loaded and state.has_licenses and state.has_idle_seats
    rows = {row.license_id: row for row in state.panel.licenses}
    assert set(rows) == {two.unassigned.license_id, two.deactivated.license_id}
    sales, support = rows[two.unassigned.license_id], rows[two.deactivated.license_id]
    assert (sales.unassigned, sales.action_label) == (3, "Reduce to 2 at renewal")
    assert (support.unassigned, len(support.deactivated), support.action_label) == (1, 2, "Free these seats")
    assert sorted(h.assignment_id for h in support.deactivated) == sorted(two.deactivated.gone)
    assert state.panel.summary == "$54.00 a month on 6 idle seats"  # Starter: $9.00 a seat
    assert (state.can_reduce, state.can_free) == (True, True)
    delta = json_dumps(root_state.get_delta())  # as Reflex sends it to the browser
    assert "Support" in delta and "Globex team" not in delta


def test_seats_the_products_report_unused_for_30_days_are_shown(root_state: rx.State, two: Two) -> None:
    """The panel takes the entitlement checks' stamps (`last_used_at`): one seat of Sales team checked 40 days ago
    and the other never, both given 60 days ago, are unused; a seat checked yesterday is not."""
    long_ago = datetime.now(UTC) - timedelta(days=60)
    with db.session_scope() as session:
        session.execute(sa.update(SeatAssignment).values(assigned_at=long_ago).where(
            SeatAssignment.id.in_(two.unassigned.held + two.deactivated.held)))
    [stale, never] = two.unassigned.held
    with db.session_scope() as session:
        account_id = actor_for_user(session, demo_owner_id()).account_id
        record_use(session, account_id=account_id, seat_ids=[stale],
                   now=datetime.now(UTC) - timedelta(days=40))
        record_use(session, account_id=account_id, seat_ids=two.deactivated.held,
                   now=datetime.now(UTC) - timedelta(days=1))
    rows = {row.license_id: row for row in panel(root_state).panel.licenses}
    assert sorted(h.assignment_id for h in rows[two.unassigned.license_id].unused) == sorted([stale, never])
    assert rows[two.unassigned.license_id].unused_text.startswith("2 not used for 30 days")
    assert rows[two.deactivated.license_id].unused == []


@pytest.mark.parametrize(("email", "can_reduce", "can_free"), [
    (BILLING_ADMIN, True, False), (LICENSE_ADMIN, False, True), (VIEWER, False, False)])
def test_each_role_may_take_only_its_actions(two: Two, email: str, can_reduce: bool, can_free: bool) -> None:
    state = panel(signed_in(email))
    assert (state.can_reduce, state.can_free) == (can_reduce, can_free)
    for license_id, allowed, refusal in [
            (two.unassigned.license_id, can_reduce, "Only owners and billing admins can change or cancel licenses."),
            (two.deactivated.license_id, can_free, "Only owners and license admins can change employees and seats.")]:
        with nothing_changes():
            shown = toast(state.ask(license_id))
        if allowed:
            assert (shown, state.confirm_license.license_id) == (("", ""), license_id)
            state.set_confirm_open(False)
        else:
            assert shown == ("error", refusal)
            assert (state.confirm_kind, state.confirm_license) == ("", None)


def test_a_role_taken_away_after_asking_changes_nothing(root_state: rx.State, two: Two) -> None:
    state = panel(signed_in(BILLING_ADMIN))
    state.ask(two.unassigned.license_id)
    with db.session_scope() as session:
        session.execute(sa.update(User).where(User.email == BILLING_ADMIN).values(role=Role.VIEWER.value))
    with nothing_changes(), pytest.raises(NotAllowed, match="Only owners and billing admins"):
        run_now(state, "reduce")
    assert (state.working, state.confirm_kind) == (False, "")


def test_reduce_schedules_the_decrease_and_the_panel_updates(root_state: rx.State, two: Two) -> None:
    state = panel(root_state)
    assert state.ask(two.unassigned.license_id) is None
    assert (state.confirm_kind, state.confirm_license.reduce_to) == ("reduce", 2)
    events = run_now(state, "reduce")
    kind, text = toast(events[-1])
    assert kind == "success" and text.startswith("Reduced at renewal: Sales team, 5 → 2 on ")
    assert (state.working, state.confirm_kind, state.confirm_license) == (False, "", None)
    assert two.unassigned.license_id not in {row.license_id for row in state.panel.licenses}
    with db.session_scope(write=False) as session:
        assert session.get(License, two.unassigned.license_id).next_quantity == 2


def test_free_frees_the_deactivated_peoples_seats_then_suggests_reducing(root_state: rx.State, two: Two) -> None:
    state = panel(root_state)
    state.ask(two.deactivated.license_id)
    assert state.confirm_kind == "free"
    events = state.free()
    assert toast(events[-1]) == ("success", "Support: 2 seats freed.")
    assert not set(two.deactivated.gone) & open_seats()
    [row] = [row for row in state.panel.licenses if row.license_id == two.deactivated.license_id]
    assert (row.unassigned, row.deactivated, row.action_label) == (3, [], "Reduce to 1 at renewal")


def test_a_person_reactivated_meanwhile_keeps_their_seat_and_nobody_is_freed(root_state: rx.State, two: Two) -> None:
    state = panel(root_state)
    state.ask(two.deactivated.license_id)
    with db.session_scope() as session:
        person = session.exec(select(SeatAssignment.employee_id).where(
            SeatAssignment.id == two.deactivated.gone[0])).one()
        session.execute(sa.update(Employee).where(Employee.id == person).values(active=True))
    before = open_seats()
    kind, text = toast(state.free()[-1])
    assert kind == "error" and "Nothing was freed" in text
    assert open_seats() == before
    assert state.confirm_kind == ""


@pytest.mark.parametrize("license_id", ["other", "not idle", 999_999, "12abc", -1, True])
def test_asking_about_a_license_the_panel_does_not_show_is_not_found(root_state: rx.State, two: Two,
                                                                     license_id: object) -> None:
    state = panel(root_state)
    state.ask(two.unassigned.license_id)
    run_now(state, "reduce")  # "Sales team" is then no longer idle
    license_id = {"other": two.other.license_id, "not idle": two.unassigned.license_id}.get(license_id, license_id)
    with nothing_changes():
        assert toast(state.ask(license_id)) == ("error", "That license was not found.")
    assert (state.confirm_kind, state.confirm_license) == ("", None)


@pytest.mark.parametrize("forged", ["their license", "their seats"])
def test_a_forged_confirmation_with_another_accounts_ids_changes_nothing(root_state: rx.State, two: Two,
                                                                         forged: str) -> None:
    """Were the panel's row ever to name another account's objects, the services would still refuse them."""
    state = panel(root_state)
    state.ask(two.deactivated.license_id)
    row = state.confirm_license
    if forged == "their license":
        state.confirm_license = row.model_copy(update={"license_id": two.other.license_id})
    else:
        state.confirm_license = row.model_copy(update={"deactivated": [
            h.model_copy(update={"assignment_id": i}) for h, i in zip(row.deactivated, two.other.gone, strict=False)]})
    with nothing_changes():
        kind, text = toast(state.free()[-1])
    assert (kind, text) == ("error", "That license was not found." if forged == "their license"
                            else "That seat was not found.")

    state.ask(two.unassigned.license_id)
    state.confirm_license = state.confirm_license.model_copy(update={"license_id": two.other.license_id})
    with nothing_changes():
        kind, text = toast(run_now(state, "reduce")[-1])
    assert (kind, text) == ("error", "That license was not found.")


def test_no_licenses_no_panel_and_nothing_idle_says_so(root_state: rx.State) -> None:
    state = panel(root_state)
    assert (state.loaded, state.has_licenses, state.has_idle_seats) == (True, False, False)
    with db.session_scope(write=False) as session:
        demo = actor_for_user(session, demo_owner_id())
    buy(demo, name="Full", quantity=2, active=2, deactivated=0)
    run_now(state, "load")
    assert (state.has_licenses, state.has_idle_seats, state.panel.summary) == (True, False, "No idle seats")

"""Who may do what, checked on the server by every handler: tenant isolation, roles, sessions, the last owner.

A second company ("Globex") has the same kinds of objects as the demo account: employees, a child account,
two cards, a license with a seat held, its invoice, a member who is not an owner, an open invitation. The demo
owner then sends handlers Globex's ids, and ids that exist nowhere: each answer is "... was not found" (or
the field message the handler uses for it) and the database stays exactly as it was, for both accounts.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
import reflex as rx
import sqlalchemy as sa
from reflex.istate.data import RouterData, SessionData
from sqlmodel import select

from cf_portal import db
from cf_portal.db import all_metadata
from cf_portal.models import (
    Account,
    AuthSession,
    Invitation,
    Invoice,
    PaymentMethod,
    Plan,
    Role,
    SeatAssignment,
    Throttle,
    User,
    WebhookEvent,
)
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services import api_keys, employees, members, seats, webhooks
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.employees import MAX_SEARCH_LENGTH, MAX_SELECTED, TOO_MANY_SELECTED
from cf_portal.services.errors import DomainError, SignInRequired
from cf_portal.services.ids import MAX_CLIENT_TEXT
from cf_portal.services.payment_methods import add_payment_method
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.services.roles import REFUSALS, Permission
from cf_portal.services.seats import Holder
from cf_portal.state.account_settings import AccountSettingsState
from cf_portal.state.add_license import AddLicenseCardsState, AddLicenseState, submit_purchase
from cf_portal.state.api_docs import ApiDocsState
from cf_portal.state.api_keys import ApiKeysState
from cf_portal.state.billing import BillingState, CardChangeOutcome, default_card_outcome, remove_card_outcome
from cf_portal.state.cards import save_card_outcome
from cf_portal.state.employees import EMPTY_HOLDER, AssignState, EmployeesState, ImportState, MoveState, PersonFormState
from cf_portal.state.licenses import LicensesState
from cf_portal.state.manage_license import AddLicensesState, ChangePlanState, ManageLicenseState, RemoveLicensesState
from cf_portal.state.members import MembersState
from cf_portal.state.portal import PortalState
from cf_portal.state.webhooks import AddEndpointState, RollSecretState, WebhooksState
from tests.state.conftest import at_url, demo_owner_id, new_root_state, sign_in_as, substate
from tests.support.events import run_event, run_now, run_on_a_loop

BILLING_ADMIN = "billing@acme-security.example"
LICENSE_ADMIN = "it-admin@acme-security.example"
VIEWER = "auditor@acme-security.example"
OWNER = "owner@acme-security.example"
MISSING = 999_999  # an id that no table has
CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12 / 34", "cvc": "123"}


# --- the two accounts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    """One account's objects, by id."""

    account_id: int
    owner_id: int
    member_id: int  # a member who is not an owner
    employee_id: int  # holds seat_id
    idle_employee_id: int  # holds nothing
    child_id: int
    license_id: int  # 3 seats, 1 of them held
    seat_id: int
    card_id: int  # a saved card that is not the default
    invoice_id: int
    invitation_id: int  # open

    @property
    def employee_key(self) -> str:
        return f"employee:{self.employee_id}"

    @property
    def idle_key(self) -> str:
        return f"employee:{self.idle_employee_id}"

    @property
    def child_key(self) -> str:
        return f"child:{self.child_id}"


NOBODY = Tenant(**{f.name: MISSING for f in fields(Tenant)})


@dataclass(frozen=True)
class World:
    demo: Tenant
    other: Tenant

    @staticmethod
    def user_id(email: str) -> int:
        with db.session_scope(write=False) as session:
            return session.exec(select(User.id).where(User.email == email)).one()

    def sign_in(self, user_id: int, *, client_ip: str = "") -> rx.State:
        """A new browser, signed in as `user_id` (from `client_ip`, if given)."""
        root = new_root_state()
        sign_in_as(root, user_id)
        if client_ip:
            root.rx_router_session = SessionData.from_router_data({"ip": client_ip})
        return root


def _now() -> datetime:
    return datetime.now(UTC)


def _furnish(actor: Actor, tag: str, member_id: int) -> Tenant:
    """Give the actor's account employees, a child account, two cards, a license with a seat held, and an
    invitation, through the services (as the portal would)."""
    provider = SandboxProvider()
    today = _now().date()
    with db.session_scope() as session:
        holder = employees.save_employee(session, actor=actor, name=f"Holder {tag.title()}",
                                         email=f"holder@{tag}.example", department="Operations")
        idle = employees.save_employee(session, actor=actor, name=f"Idle {tag.title()}", email=f"idle@{tag}.example",
                                       department="Operations")
        child = employees.save_child_account(session, actor=actor, name=f"{tag.title()} Subsidiary",
                                             contact_email=f"it@sub.{tag}.example")
        plan = session.exec(select(Plan).where(Plan.code == "awareness-starter")).one()
        holder_id, idle_id, child_id, plan_id, unit_amount = holder.id, idle.id, child.id, plan.id, plan.unit_amount
    default_card = add_payment_method(None, provider, actor=actor, number="4242424242424242", expiry="12/34",
                                      cvc="123", today=today)
    other_card = add_payment_method(None, provider, actor=actor, number="5555555555554444", expiry="11/33",
                                    cvc="123", today=today)
    bought = create_license(None, provider, actor=actor, now=_now(), request=PurchaseRequest(
        reference_name=f"{tag.title()} team", plan_id=plan_id, quantity=3, payment_method_id=default_card.id,
        expected_total=3 * unit_amount, idempotency_key=uuid.uuid4().hex))
    with db.session_scope() as session:
        # A webhook endpoint first, so the seat below queues an event for it (webhook_ids finds both).
        webhooks.create_endpoint(session, actor=actor, url=f"https://hooks.{tag}.example/cf",
                                 event_types=["seat.assigned"])
        [seat_id] = seats.assign(session, actor=actor, license_id=bought.license_id,
                                 holders=[Holder(kind="employee", id=holder_id)])
        members.invite(session, actor=actor, email=f"newcomer@{tag}.example", role=Role.VIEWER.value,
                       base_url="http://portal.example", now=_now())
        invoice_id = session.exec(select(Invoice.id).where(Invoice.license_id == bought.license_id)).one()
        invitation_id = session.exec(select(Invitation.id).where(Invitation.account_id == actor.account_id)).one()
    assert default_card.is_default and not other_card.is_default
    return Tenant(account_id=actor.account_id, owner_id=actor.user_id, member_id=member_id, employee_id=holder_id,
                  idle_employee_id=idle_id, child_id=child_id, license_id=bought.license_id, seat_id=seat_id,
                  card_id=other_card.id, invoice_id=invoice_id, invitation_id=invitation_id)


@pytest.fixture
def world(root_state: rx.State) -> World:
    with db.session_scope() as session:
        demo_actor = actor_for_user(session, demo_owner_id())
        globex = Account(name="Globex Corporation")
        session.add(globex)
        session.flush()
        owner = User(account_id=globex.id, name="Gina Globex", email="owner@globex.example", role=Role.OWNER.value)
        viewer = User(account_id=globex.id, name="Victor Globex", email="viewer@globex.example",
                      role=Role.VIEWER.value)
        session.add_all([owner, viewer])
        session.flush()
        other_actor = actor_for_user(session, owner.id)
        other_member_id = viewer.id
    return World(demo=_furnish(demo_actor, "acme", World.user_id(BILLING_ADMIN)),
                 other=_furnish(other_actor, "globex", other_member_id))


@pytest.fixture(params=["another account's ids", "ids that do not exist"])
def foreign(request: pytest.FixtureRequest, world: World) -> Tenant:
    return world.other if request.param == "another account's ids" else NOBODY


# --- helpers ----------------------------------------------------------------------------------------------

S = TypeVar("S", bound=PortalState)



def loaded(root: rx.State, cls: type[S]) -> S:
    state = substate(root, cls)
    run_now(state, "load")
    return state


def on_employees(root: rx.State, cls: type[S]) -> S:
    """The Employees page loaded, and the state of one of its dialogs."""
    loaded(root, EmployeesState)
    return substate(root, cls)


def toast(event: rx.event.EventSpec | None) -> tuple[str, str]:
    """(kind, text) of an `rx.toast.error(...)` / `rx.toast.success(...)` a handler returned; ("", "") for none."""
    if event is None:
        return "", ""
    script = str(event.args[0][1])
    found = re.search(r'\["(\w+)"\]\(("(?:[^"\\]|\\.)*")', script)
    assert found, f"not a toast: {script}"
    return found[1], json.loads(found[2])


def told(call: Callable[[], rx.event.EventSpec | None]) -> str:
    """What the member reads after `call`: the error toast it returns, or the message of a DomainError it lets
    through (the app's exception handler shows that as a toast)."""
    try:
        kind, text = toast(call())
    except DomainError as exc:
        return exc.message
    return text if kind == "error" else f"({kind or 'nothing'}) {text}"


def everything() -> dict[str, list[tuple]]:
    """Every row of every table, but the sessions (signing in adds those)."""
    with db.session_scope(write=False) as session:
        return {table.name: [tuple(row) for row in session.execute(
                    sa.select(table).order_by(*table.primary_key.columns))]
                for table in all_metadata().sorted_tables if table.name != "auth_session"}


@contextmanager
def nothing_changes() -> Iterator[None]:
    before = everything()
    yield
    after = everything()
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"tables changed: {changed}"


def open_seats() -> set[tuple[int, int | None, int | None]]:
    with db.session_scope(write=False) as session:
        return set(session.exec(select(SeatAssignment.license_id, SeatAssignment.employee_id,
                                       SeatAssignment.child_account_id)
                                .where(SeatAssignment.unassigned_at.is_(None))).all())


def default_card(account_id: int) -> int:
    with db.session_scope(write=False) as session:
        return session.exec(select(PaymentMethod.id).where(PaymentMethod.account_id == account_id,
                                                          PaymentMethod.is_default)).one()


def fill_add_license(state: AddLicenseState, *, card_id: int) -> None:
    """A filled-in Add License form (set as the browser would send it, whatever the page showed)."""
    with db.session_scope(write=False) as session:
        plan = session.exec(select(Plan).where(Plan.code == "awareness-starter")).one()
    state.reference_name, state.quantity = "Extra seats", "1"
    state.plan_id, state.product_id, state.payment_method_id = str(plan.id), str(plan.product_id), str(card_id)


# --- tenant isolation ---------------------------------------------------------------------------------------


def test_seat_history_of_a_foreign_license_is_not_found(root_state: rx.State, foreign: Tenant) -> None:
    state = loaded(root_state, LicensesState)
    with nothing_changes():
        shown = toast(state.open_history(foreign.license_id, "Their team"))
    assert shown == ("error", "That license was not found.")
    assert (state.history_open, state.history_title, state.history) == (False, "", [])


@pytest.mark.parametrize(("kind", "what"), [("employee", "That employee"), ("child", "That child account")])
def test_details_of_a_foreign_holder_are_not_found(root_state: rx.State, foreign: Tenant, kind: str,
                                                   what: str) -> None:
    state = loaded(root_state, EmployeesState)
    key = foreign.employee_key if kind == "employee" else foreign.child_key
    with nothing_changes():
        shown = toast(state.open_details(key))
    assert shown == ("error", f"{what} was not found.")
    assert (state.details_open, state.details.key, state.history) == (False, "", [])


@pytest.mark.parametrize("case", ["their license to our employee", "our license to their employee",
                                  "our license to their child account"])
def test_assign_with_foreign_ids_is_not_found(root_state: rx.State, world: World, foreign: Tenant,
                                              case: str) -> None:
    license_id, key, what = {
        "their license to our employee": (foreign.license_id, world.demo.idle_key, "That license"),
        "our license to their employee": (world.demo.license_id, foreign.idle_key, "That employee"),
        "our license to their child account": (world.demo.license_id, foreign.child_key, "That child account"),
    }[case]
    state = on_employees(root_state, AssignState)
    state.targets, state.license_id = [key], str(license_id)
    with nothing_changes():
        state.assign()
    assert state.error == f"{what} was not found."


@pytest.mark.parametrize("case", ["their seat to our employee", "our seat to their employee",
                                  "our seat to their child account"])
def test_move_with_foreign_ids_is_not_found(root_state: rx.State, world: World, foreign: Tenant, case: str) -> None:
    seat_id, to, what = {
        "their seat to our employee": (foreign.seat_id, world.demo.idle_key, "That seat"),
        "our seat to their employee": (world.demo.seat_id, foreign.idle_key, "That employee"),
        "our seat to their child account": (world.demo.seat_id, foreign.child_key, "That child account"),
    }[case]
    state = on_employees(root_state, MoveState)
    state.seat_id, state.to = seat_id, to
    with nothing_changes():
        state.move()
    assert state.error == f"{what} was not found."


def test_freeing_a_foreign_seat_is_not_found(root_state: rx.State, foreign: Tenant) -> None:
    state = loaded(root_state, EmployeesState)
    state.unassign_seat_id = foreign.seat_id
    with nothing_changes():
        shown = toast(state.unassign())
    assert shown == ("error", "That seat was not found.")
    assert state.unassign_seat_id == 0


@pytest.mark.parametrize(("kind", "what"), [("employee", "That employee"), ("child", "That child account")])
def test_editing_a_foreign_holder_is_not_found(root_state: rx.State, foreign: Tenant, kind: str, what: str) -> None:
    state = on_employees(root_state, PersonFormState)
    state.open_for(kind, foreign.employee_key if kind == "employee" else foreign.child_key)
    state.set_name("Mallory Takeover")
    state.set_email("mallory@acme-security.example")
    with nothing_changes():
        state.save()
    assert state.error == f"{what} was not found."
    assert state.is_open is True


@pytest.mark.parametrize("active", [False, True])
def test_deactivating_a_foreign_employee_is_not_found(root_state: rx.State, foreign: Tenant, active: bool) -> None:
    state = loaded(root_state, EmployeesState)
    # A details panel naming another account's employee: a stale or forged key.
    state.details = EMPTY_HOLDER.model_copy(update={"key": foreign.employee_key, "id": foreign.employee_id})
    with nothing_changes():
        shown = toast(state.set_active(active))
    assert shown == ("error", "That employee was not found.")


def change_card(state: BillingState, worker: Callable[[object, int], CardChangeOutcome],
                card_id: int) -> rx.event.EventSpec:
    """A change of cards as its background handler runs it: begin (role check, busy), the worker thread's
    call (the provider), finish (the toast)."""
    actor = state._begin_card_change(card_id)
    assert actor is not None
    return state._finish_card_change(worker(actor, card_id))


@pytest.mark.parametrize("handler", ["make_default", "ask_remove", "remove_card"])
def test_changing_a_foreign_card_is_not_found(root_state: rx.State, foreign: Tenant, handler: str) -> None:
    state = loaded(root_state, BillingState)
    with nothing_changes():
        if handler == "ask_remove":
            shown = toast(state.ask_remove(foreign.card_id))
        else:
            worker = default_card_outcome if handler == "make_default" else remove_card_outcome
            shown = toast(change_card(state, worker, foreign.card_id))
    assert shown == ("error", "That payment method was not found.")
    assert [card.is_default for card in state.cards] == [True, False]
    assert (state.removal, state.remove_open, state.changing) == (None, False, False)


def test_a_foreign_invoice_is_not_found(root_state: rx.State, foreign: Tenant) -> None:
    state = loaded(root_state, BillingState)
    with nothing_changes():
        shown = toast(state.open_invoice(foreign.invoice_id))
    assert shown == ("error", "That invoice was not found.")
    assert (state.invoice, state.invoice_open) == (None, False)


def test_a_foreign_license_or_card_is_not_found_on_manage_license(root_state: rx.State, world: World,
                                                                  foreign: Tenant) -> None:
    at_url(root_state, f"/licenses/manage?id={foreign.license_id}")
    page = loaded(root_state, ManageLicenseState)
    assert (page.detail, page.missing) == (None, "That license was not found.")
    with nothing_changes():
        assert told(page.ask_cancel) == "That license was not found."
    at_url(root_state, f"/licenses/manage?id={world.demo.license_id}")
    page = loaded(root_state, ManageLicenseState)
    page.set_card_choice(str(foreign.card_id))
    with nothing_changes():
        run_now(page, "change_card")
    assert page.card_error == "Add a payment method, or choose one of your saved payment methods."
    assert page.detail.card_id != foreign.card_id


def test_buying_with_a_foreign_card_charges_nobody(root_state: rx.State, foreign: Tenant) -> None:
    state = loaded(root_state, AddLicenseState)
    fill_add_license(state, card_id=foreign.card_id)
    with nothing_changes():
        begun = state._begin_create()
        assert begun is not None
        assert state._finish_create(submit_purchase(*begun)) is None
    assert state.payment_error == "Add a payment method, or choose one of your saved payment methods."
    assert state.creating is False


def test_changing_the_role_of_a_foreign_member_is_not_found(root_state: rx.State, foreign: Tenant) -> None:
    state = loaded(root_state, MembersState)
    with nothing_changes():
        shown = toast(state.change_role(foreign.member_id, Role.OWNER.value))
    assert shown == ("error", "That member was not found.")


def test_removing_a_foreign_member_is_not_found(root_state: rx.State, foreign: Tenant) -> None:
    state = loaded(root_state, MembersState)
    state.ask_remove(foreign.member_id, "Victor Globex")
    with nothing_changes():
        shown = toast(state.remove())
    assert shown == ("error", "That member was not found.")


def test_withdrawing_a_foreign_invitation_is_not_found(root_state: rx.State, foreign: Tenant) -> None:
    state = loaded(root_state, MembersState)
    with nothing_changes():
        shown = toast(state.revoke(foreign.invitation_id))
    assert shown == ("error", "That invitation was not found.")


def api_key_of(tenant: Tenant, name: str) -> int:
    """A new API key of the tenant's account, made by its owner."""
    with db.session_scope() as session:
        return api_keys.create(session, actor=actor_for_user(session, tenant.owner_id), name=name,
                               demo_mode=True).key.id


def test_revoking_a_foreign_api_key_is_not_found(root_state: rx.State, world: World, foreign: Tenant) -> None:
    theirs = api_key_of(world.other, "Globex product") if foreign is world.other else MISSING
    ours = api_key_of(world.demo, "Acme product")
    state = loaded(root_state, ApiKeysState)
    with nothing_changes():
        state.ask_revoke(theirs, "Globex product")  # only remembered: revoke decides
        shown = toast(state.revoke())
    assert shown == ("error", "That API key was not found.")
    assert [key.id for key in state.keys] == [ours]  # the list is this account's only


def webhook_ids(tenant: Tenant) -> tuple[int, int]:
    """(endpoint id, event id) of the tenant's webhook endpoint and of the event its held seat queued."""
    if tenant == NOBODY:
        return MISSING, MISSING
    with db.session_scope(write=False) as session:
        return tuple(session.exec(select(WebhookEvent.endpoint_id, WebhookEvent.id)
                                  .where(WebhookEvent.account_id == tenant.account_id)).one())


def test_a_foreign_webhook_endpoint_is_not_found(root_state: rx.State, foreign: Tenant) -> None:
    endpoint_id, _ = webhook_ids(foreign)
    state = loaded(root_state, WebhooksState)
    roll = substate(root_state, RollSecretState)

    def delete() -> rx.event.EventSpec | None:
        state.ask_delete(endpoint_id, "https://hooks.globex.example/cf")
        return state.delete()

    def roll_secret() -> rx.event.EventSpec | None:
        roll.ask_roll(endpoint_id, "https://hooks.globex.example/cf")
        return roll.roll()

    with nothing_changes():
        said = [told(lambda: state.show_log(endpoint_id)), told(lambda: state.set_enabled(endpoint_id, False)),
                told(lambda: state.set_enabled(endpoint_id, True)), told(delete), told(roll_secret)]
    assert said == ["That webhook endpoint was not found."] * 5
    assert (state.log_endpoint_id, state.log, roll.rolled) == (0, [], False)
    assert [e.id for e in state.endpoints] == [webhook_ids(loaded_tenant(root_state))[0]]


def loaded_tenant(root: rx.State) -> Tenant:
    """The signed-in member's account, as a Tenant that `webhook_ids` can look up."""
    with db.session_scope(write=False) as session:
        account_id = substate(root, WebhooksState)._actor(session).account_id
    return Tenant(**{**{f.name: MISSING for f in fields(Tenant)}, "account_id": account_id})


def test_a_foreign_webhook_event_is_not_found(root_state: rx.State, foreign: Tenant) -> None:
    _, event_id = webhook_ids(foreign)
    state = loaded(root_state, WebhooksState)
    with nothing_changes():
        said = [told(lambda: state.resend(event_id)), told(lambda: state.show_attempts(event_id, "evt_x"))]
    assert said == ["That webhook event was not found."] * 2
    assert (state.attempts_event, state.attempts) == ("", [])


def throttle_failures() -> dict[str, int]:
    with db.session_scope(write=False) as session:
        return {row.key: row.failures for row in session.exec(select(Throttle)) if row.failures}


def test_coupon_guesses_of_another_account_do_not_hold_this_one_up(root_state: rx.State, world: World) -> None:
    guesser = loaded(world.sign_in(world.other.owner_id, client_ip="203.0.113.7"), AddLicenseState)
    for attempt in range(1, 31):
        guesser.set_coupon_code(f"GUESS{attempt:02d}")
        if guesser.panel.coupon_message.startswith("Too many"):
            break
    assert guesser.panel.coupon_message.startswith("Too many coupon codes that don't exist were tried.")
    guesser.set_coupon_code("WELCOME20")  # a real code, but they must wait
    assert guesser.panel.coupon_status == "invalid" and guesser.panel.coupon_message.startswith("Too many")

    root_state.rx_router_session = SessionData.from_router_data({"ip": "198.51.100.4"})
    ours = loaded(root_state, AddLicenseState)
    ours.set_coupon_code("WELCOME20")
    assert (ours.panel.coupon_status, ours.panel.coupon_message) == ("valid", "20% off, forever")

    counted = throttle_failures()
    assert set(counted) == {f"coupon-account:{world.other.account_id}", "coupon-client:203.0.113.7"}
    assert counted[f"coupon-account:{world.other.account_id}"] >= 10
    assert counted["coupon-client:203.0.113.7"] == counted[f"coupon-account:{world.other.account_id}"]


def test_without_a_client_ip_only_the_account_is_counted(root_state: rx.State, world: World) -> None:
    """State tests have no client address. An empty one is not a key: otherwise every browser whose address
    is unknown would share one counter, and one guesser would hold them all up."""
    state = loaded(root_state, AddLicenseState)
    assert state.router.session.client_ip == ""
    state.set_coupon_code("NO-SUCH-CODE")
    assert state.panel.coupon_message == "This coupon code doesn't exist. Check the spelling."
    assert throttle_failures() == {f"coupon-account:{world.demo.account_id}": 1}


# --- roles ----------------------------------------------------------------------------------------------------


def _open_assign(root: rx.State, demo: Tenant) -> str:
    return told(lambda: on_employees(root, AssignState).open_for([demo.idle_key]))


def _assign(root: rx.State, demo: Tenant) -> str:
    state = on_employees(root, AssignState)
    state.targets, state.license_id = [demo.idle_key], str(demo.license_id)
    state.assign()
    return state.error


def _open_move(root: rx.State, demo: Tenant) -> str:
    return told(lambda: on_employees(root, MoveState).open_for(demo.seat_id, "Acme team"))


def _move(root: rx.State, demo: Tenant) -> str:
    state = on_employees(root, MoveState)
    state.seat_id, state.to = demo.seat_id, demo.idle_key
    state.move()
    return state.error


def _ask_unassign(root: rx.State, demo: Tenant) -> str:
    return told(lambda: loaded(root, EmployeesState).ask_unassign(demo.seat_id, "Acme team"))


def _unassign(root: rx.State, demo: Tenant) -> str:
    state = loaded(root, EmployeesState)
    state.unassign_seat_id = demo.seat_id
    return told(state.unassign)


def _open_form(root: rx.State, demo: Tenant) -> str:
    return told(lambda: on_employees(root, PersonFormState).open_for("employee"))


def _add_employee(root: rx.State, demo: Tenant) -> str:
    state = on_employees(root, PersonFormState)
    state.kind, state.holder_id = "employee", 0
    state.set_name("New Person")
    state.set_email("new.person@acme-security.example")
    state.save()
    return state.error


def _edit_child_account(root: rx.State, demo: Tenant) -> str:
    state = on_employees(root, PersonFormState)
    state.kind, state.holder_id = "child", demo.child_id
    state.set_name("Renamed Subsidiary")
    state.set_email("it@renamed.example")
    state.save()
    return state.error


def _ask_deactivate(root: rx.State, demo: Tenant) -> str:
    state = loaded(root, EmployeesState)
    state.open_details(demo.employee_key)  # looking is allowed
    assert state.details_open
    return told(state.ask_deactivate)


def _deactivate(root: rx.State, demo: Tenant) -> str:
    state = loaded(root, EmployeesState)
    state.open_details(demo.employee_key)
    return told(lambda: state.set_active(False))


EMPLOYEES_CSV = b"name,email,department\nCasey Import,casey@acme-security.example,Sales\n"


def told_by_event(state: rx.State, handler: str, *args: object) -> str:
    """`told` for a handler run on an event loop as Reflex runs it (async, background): its last event."""
    return told(lambda: ([None, *run_on_a_loop(run_event(state, handler, *args))])[-1])


def _preview_csv(root: rx.State, demo: Tenant) -> str:
    state = on_employees(root, ImportState)
    upload = rx.UploadFile(file=io.BytesIO(EMPLOYEES_CSV), path=Path("people.csv"))
    return told_by_event(state, "preview_csv", [upload])


def _import_csv(root: rx.State, demo: Tenant) -> str:
    state = on_employees(root, ImportState)
    state._data = EMPLOYEES_CSV  # as if a preview had accepted the file
    message = told_by_event(state, "import_csv")
    assert state.importing is False
    return message


def _card_change(root: rx.State, demo: Tenant, worker: Callable[[object, int], CardChangeOutcome]) -> str:
    state = loaded(root, BillingState)
    message = told(lambda: change_card(state, worker, demo.card_id))
    assert state.changing is False
    return message


def _make_default(root: rx.State, demo: Tenant) -> str:
    return _card_change(root, demo, default_card_outcome)


def _ask_remove_card(root: rx.State, demo: Tenant) -> str:
    state = loaded(root, BillingState)
    message = told(lambda: state.ask_remove(demo.card_id))
    assert state.remove_open is (message == "(nothing) ")
    return message


def _remove_card(root: rx.State, demo: Tenant) -> str:
    return _card_change(root, demo, remove_card_outcome)


def _add_card(root: rx.State, demo: Tenant) -> str:
    loaded(root, AddLicenseState)
    state = substate(root, AddLicenseCardsState)
    message = told(state._begin_save_card)
    assert state.saving_card is False
    return message


def _check_coupon(root: rx.State, demo: Tenant) -> str:
    state = loaded(root, AddLicenseState)
    state.set_coupon_code("NO-SUCH-CODE")
    assert state.panel.coupon_message == ""  # not looked up, not counted
    return state.plan_error


def _create(root: rx.State, demo: Tenant) -> str:
    state = loaded(root, AddLicenseState)
    fill_add_license(state, card_id=demo.card_id)
    message = told(state._begin_create)
    assert state.creating is False
    return message


def _open_invite(root: rx.State, demo: Tenant) -> str:
    return told(loaded(root, MembersState).open_invite)


def _invite(root: rx.State, demo: Tenant) -> str:
    state = loaded(root, MembersState)
    state.set_invite_email("friend@acme-security.example")
    state.set_invite_role(Role.OWNER.value)
    state.invite()
    assert state.created is None
    return state.invite_email_error


def _change_role(root: rx.State, demo: Tenant) -> str:
    return told(lambda: loaded(root, MembersState).change_role(demo.member_id, Role.VIEWER.value))


def _remove(root: rx.State, demo: Tenant) -> str:
    state = loaded(root, MembersState)
    state.ask_remove(demo.member_id, "Priya Shah")
    return told(state.remove)


def _revoke(root: rx.State, demo: Tenant) -> str:
    return told(lambda: loaded(root, MembersState).revoke(demo.invitation_id))


def _open_create_api_key(root: rx.State, demo: Tenant) -> str:
    return told(loaded(root, ApiKeysState).open_create)


def _create_api_key(root: rx.State, demo: Tenant) -> str:
    state = loaded(root, ApiKeysState)
    try:
        run_now(state, "create", {"name": "Mine"})
    except DomainError as exc:
        return exc.message
    return state.name_error


def _ask_revoke_api_key(root: rx.State, demo: Tenant) -> str:
    return told(lambda: loaded(root, ApiKeysState).ask_revoke(MISSING, "Phishing Simulator"))


def _revoke_api_key(root: rx.State, demo: Tenant) -> str:
    state = loaded(root, ApiKeysState)
    state.revoke_id = MISSING  # as if the browser had asked
    return told(state.revoke)


def _reset_demo(root: rx.State, demo: Tenant) -> str:
    return told_by_event(loaded(root, AccountSettingsState), "reset_demo")


def _advance_month(root: rx.State, demo: Tenant) -> str:
    return told_by_event(loaded(root, AccountSettingsState), "advance_month")


def _open_add_endpoint(root: rx.State, demo: Tenant) -> str:
    loaded(root, WebhooksState)
    return told(substate(root, AddEndpointState).open_add)


def _add_endpoint(root: rx.State, demo: Tenant) -> str:
    loaded(root, WebhooksState)
    dialog = substate(root, AddEndpointState)
    dialog.set_url("https://hooks.acme.example/other")
    assert dialog.create() is None and dialog.created_url == ""
    return dialog.url_error


def _show_webhook_log(root: rx.State, demo: Tenant) -> str:
    return told(lambda: loaded(root, WebhooksState).show_log(webhook_ids(demo)[0]))


def _pause_endpoint(root: rx.State, demo: Tenant) -> str:
    return told(lambda: loaded(root, WebhooksState).set_enabled(webhook_ids(demo)[0], False))


def _roll_secret(root: rx.State, demo: Tenant) -> str:
    loaded(root, WebhooksState)
    roll = substate(root, RollSecretState)
    roll.roll_id = webhook_ids(demo)[0]  # whatever the browser's state says
    return told(roll.roll)


def _delete_endpoint(root: rx.State, demo: Tenant) -> str:
    state = loaded(root, WebhooksState)
    state.delete_id = webhook_ids(demo)[0]
    return told(state.delete)


def _resend_webhook(root: rx.State, demo: Tenant) -> str:
    return told(lambda: loaded(root, WebhooksState).resend(webhook_ids(demo)[1]))


def _show_webhook_attempts(root: rx.State, demo: Tenant) -> str:
    return told(lambda: loaded(root, WebhooksState).show_attempts(webhook_ids(demo)[1], "evt"))


MUTATIONS = [
    (_open_assign, Permission.MANAGE_SEATS), (_assign, Permission.MANAGE_SEATS),
    (_open_move, Permission.MANAGE_SEATS), (_move, Permission.MANAGE_SEATS),
    (_ask_unassign, Permission.MANAGE_SEATS), (_unassign, Permission.MANAGE_SEATS),
    (_open_form, Permission.MANAGE_SEATS), (_add_employee, Permission.MANAGE_SEATS),
    (_edit_child_account, Permission.MANAGE_SEATS), (_ask_deactivate, Permission.MANAGE_SEATS),
    (_deactivate, Permission.MANAGE_SEATS), (_preview_csv, Permission.MANAGE_SEATS),
    (_import_csv, Permission.MANAGE_SEATS),
    (_make_default, Permission.MANAGE_PAYMENT_METHODS), (_ask_remove_card, Permission.MANAGE_PAYMENT_METHODS),
    (_remove_card, Permission.MANAGE_PAYMENT_METHODS), (_add_card, Permission.MANAGE_PAYMENT_METHODS),
    (_check_coupon, Permission.BUY), (_create, Permission.BUY),
    (_open_invite, Permission.MANAGE_MEMBERS), (_invite, Permission.MANAGE_MEMBERS),
    (_change_role, Permission.MANAGE_MEMBERS), (_remove, Permission.MANAGE_MEMBERS),
    (_revoke, Permission.MANAGE_MEMBERS),
    (_open_create_api_key, Permission.MANAGE_API_KEYS), (_create_api_key, Permission.MANAGE_API_KEYS),
    (_ask_revoke_api_key, Permission.MANAGE_API_KEYS), (_revoke_api_key, Permission.MANAGE_API_KEYS),
    (_reset_demo, Permission.RESET_DEMO), (_advance_month, Permission.RESET_DEMO),
    (_open_add_endpoint, Permission.MANAGE_WEBHOOKS), (_add_endpoint, Permission.MANAGE_WEBHOOKS),
    (_show_webhook_log, Permission.MANAGE_WEBHOOKS), (_pause_endpoint, Permission.MANAGE_WEBHOOKS),
    (_roll_secret, Permission.MANAGE_WEBHOOKS), (_delete_endpoint, Permission.MANAGE_WEBHOOKS),
    (_resend_webhook, Permission.MANAGE_WEBHOOKS), (_show_webhook_attempts, Permission.MANAGE_WEBHOOKS),
]


@pytest.mark.parametrize(("action", "needs"), MUTATIONS, ids=[action.__name__.strip("_") for action, _ in MUTATIONS])
def test_a_viewer_is_refused_every_change(world: World, action: Callable[[rx.State, Tenant], str],
                                          needs: Permission) -> None:
    viewer = world.sign_in(world.user_id(VIEWER))
    with nothing_changes():
        assert action(viewer, world.demo) == REFUSALS[needs]


def test_the_owner_passes_the_same_checks(root_state: rx.State, world: World) -> None:
    """The refusals above come from the role, not from the forms: the owner's same clicks get through."""
    assert _assign(root_state, world.demo) == ""
    assert _import_csv(root_state, world.demo) == "(success) 1 employees imported."
    assert _make_default(root_state, world.demo) == "(success) Mastercard ending in 4444 is now your default card."
    assert _ask_remove_card(root_state, world.demo) == "(nothing) "
    assert _remove_card(root_state, world.demo) == ("(success) Mastercard ending in 4444 removed. Visa ending in 4242 "
                                                    "is now your default card.")
    assert _revoke(root_state, world.demo).startswith("(success) The invitation for newcomer@acme.example")


def test_a_license_admin_assigns_but_neither_buys_nor_changes_cards(world: World) -> None:
    admin = world.sign_in(world.user_id(LICENSE_ADMIN))
    assert _assign(admin, world.demo) == ""
    assert (world.demo.license_id, world.demo.idle_employee_id, None) in open_seats()
    with nothing_changes():
        assert _create(admin, world.demo) == REFUSALS[Permission.BUY]
        assert _add_card(admin, world.demo) == REFUSALS[Permission.MANAGE_PAYMENT_METHODS]
        assert _make_default(admin, world.demo) == REFUSALS[Permission.MANAGE_PAYMENT_METHODS]
        assert _ask_remove_card(admin, world.demo) == REFUSALS[Permission.MANAGE_PAYMENT_METHODS]
        assert _remove_card(admin, world.demo) == REFUSALS[Permission.MANAGE_PAYMENT_METHODS]
        assert _invite(admin, world.demo) == REFUSALS[Permission.MANAGE_MEMBERS]
    assert loaded(admin, AddLicenseState).allowed is False


def test_a_billing_admin_buys_and_changes_cards_but_does_not_assign(world: World) -> None:
    billing = world.sign_in(world.user_id(BILLING_ADMIN))
    state = loaded(billing, AddLicenseState)
    assert state.allowed is True
    state.set_reference_name("Bought by billing")
    begun = state._begin_create()
    assert begun is not None
    created = state._finish_create(submit_purchase(*begun))
    assert created is not None and created.reference_name == "Bought by billing"
    another_visa = {**CARD, "expiry": "10 / 35"}  # the account has this Visa with 12/34 already
    cards = substate(billing, AddLicenseCardsState)
    assert cards._finish_save_card(save_card_outcome(cards._begin_save_card(), another_visa)) == \
        "Visa ending in 4242 added."
    assert _make_default(billing, world.demo) == "(success) Mastercard ending in 4444 is now your default card."
    assert default_card(world.demo.account_id) == world.demo.card_id
    assert _ask_remove_card(billing, world.demo) == "(nothing) "
    assert _remove_card(billing, world.demo).startswith("(success) Mastercard ending in 4444 removed.")
    with nothing_changes():
        assert _assign(billing, world.demo) == REFUSALS[Permission.MANAGE_SEATS]
        assert _unassign(billing, world.demo) == REFUSALS[Permission.MANAGE_SEATS]
        assert _add_employee(billing, world.demo) == REFUSALS[Permission.MANAGE_SEATS]
        assert _invite(billing, world.demo) == REFUSALS[Permission.MANAGE_MEMBERS]


@pytest.mark.parametrize("email", [BILLING_ADMIN, LICENSE_ADMIN, VIEWER, OWNER])
def test_only_an_owner_invites(world: World, email: str) -> None:
    state = loaded(world.sign_in(world.user_id(email)), MembersState)
    state.set_invite_email("friend@acme-security.example")
    state.set_invite_role(Role.OWNER.value)
    state.invite()
    with db.session_scope(write=False) as session:
        invited = session.exec(select(Invitation.role).where(Invitation.email == "friend@acme-security.example")).all()
    if email == OWNER:
        assert state.invite_email_error == "" and state.created is not None
        assert invited == [Role.OWNER.value]
    else:
        assert state.invite_email_error == REFUSALS[Permission.MANAGE_MEMBERS]
        assert state.created is None and invited == []


@pytest.mark.parametrize(("email", "label", "flags"), [
    (OWNER, "Owner", (True, True, True, True)),
    (BILLING_ADMIN, "Billing admin", (True, True, False, False)),
    (LICENSE_ADMIN, "License admin", (False, False, True, False)),
    (VIEWER, "Viewer", (False, False, False, False)),
])
def test_the_pages_flags_follow_the_role(world: World, email: str, label: str,
                                         flags: tuple[bool, bool, bool, bool]) -> None:
    root = world.sign_in(world.user_id(email))
    portal = substate(root, PortalState)
    assert (portal.role_label, portal.can_buy, portal.can_manage_seats) == ("", False, False)  # before any load
    loaded(root, LicensesState)
    assert portal.role_label == label
    assert (portal.can_buy, portal.can_manage_payment_methods, portal.can_manage_seats,
            portal.can_manage_members) == flags


def test_a_changed_role_counts_at_the_next_click(root_state: rx.State, world: World) -> None:
    """The role is read again on every call: a page opened as license admin cannot assign after a demotion."""
    admin = world.sign_in(world.user_id(LICENSE_ADMIN))
    assign = on_employees(admin, AssignState)
    assert substate(admin, PortalState).can_manage_seats is True
    owner_members = loaded(root_state, MembersState)
    assert toast(owner_members.change_role(world.user_id(LICENSE_ADMIN), Role.VIEWER.value))[0] == "success"
    assign.targets, assign.license_id = [world.demo.idle_key], str(world.demo.license_id)
    with nothing_changes():
        assign.assign()
    assert assign.error == REFUSALS[Permission.MANAGE_SEATS]
    assert substate(admin, PortalState).can_manage_seats is False


# --- sessions --------------------------------------------------------------------------------------------------


def test_an_ended_session_has_to_sign_in_again(root_state: rx.State, world: World) -> None:
    licenses = loaded(root_state, LicensesState)
    assert licenses.licenses
    with db.session_scope() as session:
        session.execute(sa.delete(AuthSession).where(
            AuthSession.token_hash == substate(root_state, PortalState)._session_digest()))
    with pytest.raises(SignInRequired):
        licenses.load()
    billing = substate(root_state, BillingState)
    with nothing_changes():
        for handler in (billing._begin_card_change, billing.ask_remove):
            with pytest.raises(SignInRequired):
                handler(world.demo.card_id)
    assert billing.changing is False


def test_a_removed_member_is_signed_out_at_their_next_click(root_state: rx.State, world: World) -> None:
    admin = world.sign_in(world.user_id(LICENSE_ADMIN))
    page = loaded(admin, EmployeesState)
    assign = substate(admin, AssignState)
    owner_members = loaded(root_state, MembersState)
    owner_members.ask_remove(world.user_id(LICENSE_ADMIN), "Tom Becker")
    assert toast(owner_members.remove()) == ("success", "Tom Becker was removed and signed out.")
    with pytest.raises(SignInRequired):
        run_now(page, "load")
    assign.targets, assign.license_id = [world.demo.idle_key], str(world.demo.license_id)
    with nothing_changes(), pytest.raises(SignInRequired):
        assign.assign()


def test_a_signed_out_browser_is_asked_to_sign_in_and_come_back(signed_out_state: rx.State) -> None:
    signed_out_state.router = RouterData.from_router_data({"pathname": "/employees", "asPath": "/employees?page=2"})
    with pytest.raises(SignInRequired) as caught:
        run_now(substate(signed_out_state, EmployeesState), "load")
    assert caught.value.next_path == "/employees?page=2"
    with pytest.raises(SignInRequired):
        substate(signed_out_state, MembersState).revoke(MISSING)


# --- the last owner -----------------------------------------------------------------------------------------------


def test_the_last_owner_can_neither_step_down_nor_leave(root_state: rx.State, world: World) -> None:
    state = loaded(root_state, MembersState)
    me = demo_owner_id()
    with nothing_changes():
        assert told(lambda: state.change_role(me, Role.VIEWER.value)) == (
            "An account needs at least one owner. Make someone else an owner first.")
        state.ask_remove(me, "Alex Morgan")
        assert told(state.remove) == "The last owner cannot be removed. Make someone else an owner first."
    assert next(m.role for m in state.members if m.is_you) == Role.OWNER.value
    # With a second owner, the same change goes through.
    assert toast(state.change_role(world.demo.member_id, Role.OWNER.value)) == ("success", "Priya Shah is now owner.")
    assert toast(state.change_role(me, Role.VIEWER.value)) == ("success", "Alex Morgan is now viewer.")
    assert substate(root_state, PortalState).can_manage_members is False



# --- ids out of range, text and lists that grow -------------------------------------------------------------------

# What an edited websocket frame can put where an id belongs. 30 digits used to reach the database driver
# (OverflowError on SQLite, NumericValueOutOfRange on PostgreSQL) and end in a traceback.
BAD_IDS = [10**30 - 1, "9" * 30, 2**63, -5, 0, "-5", "12abc", " 12", "١٢", 1.5, True, None, "9" * 5000]


def refuses_bad_ids(attempt: Callable[[object], str], expected: str) -> None:
    """`attempt(bad id)` says `expected` for every bad id, and nothing changes."""
    with nothing_changes():
        said = {repr(bad)[:40]: attempt(bad) for bad in BAD_IDS}
    assert said == {repr(bad)[:40]: expected for bad in BAD_IDS}


def test_bad_ids_in_the_webhooks_page_are_not_found(root_state: rx.State, world: World) -> None:
    state = loaded(root_state, WebhooksState)
    endpoint, event = "That webhook endpoint was not found.", "That webhook event was not found."
    refuses_bad_ids(lambda bad: told(lambda: state.show_log(bad)), endpoint)
    refuses_bad_ids(lambda bad: told(lambda: state.set_enabled(bad, False)), endpoint)
    refuses_bad_ids(lambda bad: told(lambda: state.ask_delete(bad, "x")), endpoint)
    refuses_bad_ids(lambda bad: told(lambda: substate(root_state, RollSecretState).ask_roll(bad, "x")), endpoint)
    refuses_bad_ids(lambda bad: told(lambda: state.resend(bad)), event)
    refuses_bad_ids(lambda bad: told(lambda: state.show_attempts(bad, "x")), event)


def test_bad_ids_in_the_licenses_page_are_not_found(root_state: rx.State) -> None:
    state = loaded(root_state, LicensesState)
    refuses_bad_ids(lambda bad: told(lambda: state.open_history(bad, "Their team")), "That license was not found.")
    assert state.history_open is False


@pytest.mark.parametrize(("kind", "what"), [("employee", "That employee"), ("child", "That child account")])
def test_bad_holder_ids_in_the_employees_page_are_not_found(root_state: rx.State, world: World, kind: str,
                                                            what: str) -> None:
    state = loaded(root_state, EmployeesState)
    person_form, assign, move = (substate(root_state, cls) for cls in (PersonFormState, AssignState, MoveState))

    def details(bad: object) -> str:
        return told(lambda: state.open_details(f"{kind}:{bad}"))

    def form(bad: object) -> str:
        return told(lambda: person_form.open_for(kind, f"{kind}:{bad}"))

    def assign_to(bad: object) -> str:
        said = told(lambda: assign.open_for([world.demo.idle_key, f"{kind}:{bad}"]))
        if assign.is_open:
            assign.assign()
            said = assign.error
        return said

    def move_to(bad: object) -> str:
        move.open_for(world.demo.seat_id, "Acme team")
        move.set_to(f"{kind}:{bad}")
        move.move()
        return move.error

    for attempt in (details, form, assign_to, move_to):
        refuses_bad_ids(attempt, f"{what} was not found.")
    assert (state.details_open, person_form.holder_id) == (False, 0)


def test_bad_license_and_seat_ids_in_the_employees_page_are_not_found(root_state: rx.State, world: World) -> None:
    state = loaded(root_state, EmployeesState)
    assign, move = substate(root_state, AssignState), substate(root_state, MoveState)

    def assign_license(bad: object) -> str:
        assign.open_for([world.demo.idle_key])
        assign.set_license(bad)
        assign.assign()
        return assign.error

    def move_seat(bad: object) -> str:
        said = told(lambda: move.open_for(bad, "Their seat"))
        if move.is_open:
            move.set_to(world.demo.idle_key)
            move.move()
            said = move.error
        return said

    def free_seat(bad: object) -> str:
        said = told(lambda: state.ask_unassign(bad, "Their seat"))
        return told(state.unassign) if state.unassign_seat_id else said

    refuses_bad_ids(assign_license, "That license was not found.")
    refuses_bad_ids(move_seat, "That seat was not found.")
    refuses_bad_ids(free_seat, "That seat was not found.")


def test_bad_ids_in_the_billing_page_are_not_found(root_state: rx.State, world: World) -> None:
    state = loaded(root_state, BillingState)
    refuses_bad_ids(lambda bad: told(lambda: state.open_invoice(bad)), "That invoice was not found.")
    refuses_bad_ids(lambda bad: told(lambda: state.ask_remove(bad)), "That payment method was not found.")
    for worker in (default_card_outcome, remove_card_outcome):
        refuses_bad_ids(lambda bad, worker=worker: told(lambda: change_card(state, worker, bad)),
                        "That payment method was not found.")
    assert (state.invoice_open, state.remove_open, state.changing) == (False, False, False)


def test_bad_ids_in_manage_license_are_not_found(root_state: rx.State, world: World) -> None:
    """The license's id comes from the URL; the card's and the plan's from the page's select and radios."""
    def page_at(license_id: object) -> ManageLicenseState:
        at_url(root_state, f"/licenses/manage?id={license_id}")
        return loaded(root_state, ManageLicenseState)

    refuses_bad_ids(lambda bad: page_at(bad).missing, "That license was not found.")
    page = page_at(world.demo.license_id)
    assert page.detail is not None

    def card(bad: object) -> str:
        page.set_card_choice(bad)
        run_now(page, "change_card")
        return page.card_error

    def plan(bad: object) -> str:
        change = substate(root_state, ChangePlanState)
        change.open()
        change.set_plan(bad)
        return change.plan_error

    refuses_bad_ids(card, "That payment method was not found.")
    refuses_bad_ids(plan, "That plan was not found.")


def test_bad_ids_in_the_members_page_are_not_found(root_state: rx.State, world: World) -> None:
    state = loaded(root_state, MembersState)

    def remove(bad: object) -> str:
        said = told(lambda: state.ask_remove(bad, "Someone"))
        return told(state.remove) if state.remove_id else said

    refuses_bad_ids(lambda bad: told(lambda: state.change_role(bad, Role.VIEWER.value)), "That member was not found.")
    refuses_bad_ids(remove, "That member was not found.")
    refuses_bad_ids(lambda bad: told(lambda: state.revoke(bad)), "That invitation was not found.")


def test_bad_ids_in_the_api_keys_page_are_not_found(root_state: rx.State) -> None:
    state = loaded(root_state, ApiKeysState)

    def revoke(bad: object) -> str:
        said = told(lambda: state.ask_revoke(bad, "Some key"))
        return told(state.revoke) if state.revoke_id else said

    refuses_bad_ids(revoke, "That API key was not found.")


def test_bad_ids_in_add_license_are_refused_next_to_their_fields(root_state: rx.State, world: World) -> None:
    state = loaded(root_state, AddLicenseState)

    def plan(bad: object) -> str:
        state.set_plan(bad)
        return state.plan_error

    def card(bad: object) -> str:
        fill_add_license(state, card_id=world.demo.card_id)
        state.set_payment_method(bad)
        assert state._begin_create() is None
        assert state.creating is False
        return f"{state.form_error} {state.payment_error}"

    refuses_bad_ids(plan, "Choose a plan.")
    refuses_bad_ids(card, "Check the highlighted fields. Choose a payment method.")


def test_the_selection_stops_growing_at_its_cap(root_state: rx.State) -> None:
    state = loaded(root_state, EmployeesState)
    for number in range(1, MAX_SELECTED + 1):
        state.toggle_selected(f"employee:{number}", True)
    assert state.selected_count == MAX_SELECTED
    with pytest.raises(DomainError) as refused:
        state.toggle_selected(f"employee:{MAX_SELECTED + 1}", True)
    assert refused.value.message == TOO_MANY_SELECTED
    with pytest.raises(DomainError):
        state.select_page(True)  # the page's 25 rows would go past it too
    assert state.selected_count == MAX_SELECTED
    state.toggle_selected("employee:1", False)
    state.toggle_selected(state.rows[0].key, True)  # room for one again
    assert state.selected_count == MAX_SELECTED
    state.clear_selection()
    assert state.selected == []


def test_the_selection_and_assign_take_only_holder_keys(root_state: rx.State) -> None:
    state = loaded(root_state, EmployeesState)
    for key in [f"employee:{10**30}", "employee:-1", "robot:1", "employee:", 12, None, ["employee:1"]]:
        assert told(lambda key=key: state.toggle_selected(key, True)).endswith("was not found.")
    state.toggle_selected("employee:7", True)
    state.toggle_selected("employee:7", True)  # once only
    assert state.selected == ["employee:7"]
    too_many = [f"employee:{number}" for number in range(1, MAX_SELECTED + 2)]
    assign = substate(root_state, AssignState)
    for keys in (too_many, [f"employee:{n}" for n in range(10**6)]):
        assert told(lambda keys=keys: assign.open_for(keys)) == TOO_MANY_SELECTED
    assert told(lambda: assign.open_for("employee:1")) == "That employee or child account was not found."
    assert (assign.is_open, assign.targets) == (False, [])


def test_text_from_the_browser_is_bounded(root_state: rx.State) -> None:
    huge = "x" * 1_000_000
    grid = loaded(root_state, EmployeesState)
    run_now(grid, "set_search", huge)
    assert len(grid.search) == MAX_SEARCH_LENGTH and grid.total == 0
    form = substate(root_state, PersonFormState)
    form.open_for("employee")
    form.set_name(huge)
    form.set_email(huge)
    form.set_department_name(huge)
    assert max(len(form.name), len(form.email), len(form.department_name)) <= MAX_CLIENT_TEXT
    with nothing_changes():
        form.save()
    assert form.name_error.startswith("Use at most 120 characters for the name")
    members_page = loaded(root_state, MembersState)
    members_page.set_invite_email(huge)
    assert len(members_page.invite_email) <= MAX_CLIENT_TEXT


SIGNED_OUT_CALLS = [
    (EmployeesState, "toggle_selected", ("employee:1", True)), (EmployeesState, "select_page", (True,)),
    (EmployeesState, "clear_selection", ()), (AssignState, "open_for", (["employee:1"],)),
    (EmployeesState, "set_search", ("a",)), (PersonFormState, "set_name", ("a",)),
    (AssignState, "set_license", ("1",)), (MoveState, "set_to", ("employee:1",)),
    (EmployeesState, "open_details", ("employee:1",)), (EmployeesState, "next_page", ()),
    (LicensesState, "open_history", (1, "a")), (BillingState, "open_invoice", (1,)),
    (MembersState, "ask_remove", (1, "a")), (MembersState, "set_invite_email", ("a",)),
    (ManageLicenseState, "load", ()), (ManageLicenseState, "ask_cancel", ()), (ManageLicenseState, "cancel", ()),
    (ManageLicenseState, "set_card_choice", ("1",)), (ManageLicenseState, "change_card", ()),
    (AddLicensesState, "open", ()), (AddLicensesState, "set_add", ("2",)), (AddLicensesState, "confirm", ()),
    (RemoveLicensesState, "set_quantity", ("2",)), (RemoveLicensesState, "save", ()),
    (ChangePlanState, "set_plan", ("1",)), (ChangePlanState, "confirm", ()),
    (ApiKeysState, "load", ()), (ApiKeysState, "open_create", ()), (ApiKeysState, "set_create_open", (True,)),
    (ApiKeysState, "create", ({"name": "a"},)), (ApiKeysState, "ask_revoke", (1, "a")),
    (ApiKeysState, "cancel_revoke", ()), (ApiKeysState, "revoke", ()), (ApiDocsState, "load", ()),
]


@pytest.mark.parametrize(("cls", "handler", "args"), SIGNED_OUT_CALLS,
                         ids=[f"{cls.__name__}.{handler}" for cls, handler, _ in SIGNED_OUT_CALLS])
def test_handlers_resolve_the_member_before_anything(signed_out_state: rx.State, cls: type[PortalState],
                                                     handler: str, args: tuple) -> None:
    state = substate(signed_out_state, cls)
    before = state.dict()
    with pytest.raises(SignInRequired):
        run_now(state, handler, *args)
    assert state.dict() == before

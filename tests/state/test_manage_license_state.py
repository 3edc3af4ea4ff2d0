"""The Manage license page's states: each handler as the browser sends it, for each role, and with a license of
another account (the page's own id swapped for it, as a tampered state would have it).

A license "Sales team" of the demo account (Security Awareness Training, Business, 5 licenses, 2 assigned, billed
to a Visa; a Mastercard saved too) is the subject of every test. Handlers run as Reflex runs them (`run_now`:
background ones through a proxy), so these tests also run after the browser tests.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import reflex as rx
import sqlalchemy as sa
from sqlmodel import select

from cf_portal import db
from cf_portal.db import all_metadata
from cf_portal.models import Account, Invoice, License, LicenseChange, Plan, Role, User
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services import employees, license_changes, renewals, seats
from cf_portal.services.actors import actor_for_user
from cf_portal.services.errors import DomainError
from cf_portal.services.license_changes import preview_add, preview_plan_change
from cf_portal.services.payment_methods import add_payment_method
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.services.roles import REFUSALS, Permission
from cf_portal.services.seats import Holder
from cf_portal.state.calls import Outcome, Unexpected
from cf_portal.state.manage_license import (
    AddLicensesState,
    ChangePlanState,
    ManageLicenseState,
    RemoveLicensesState,
)
from tests.state.conftest import at_url, demo_owner_id, new_root_state, sign_in_as, substate
from tests.support.events import run_now

OWNER = "owner@acme-security.example"
BILLING_ADMIN = "billing@acme-security.example"
LICENSE_ADMIN = "it-admin@acme-security.example"
VIEWER = "auditor@acme-security.example"
REFUSED = REFUSALS[Permission.CHANGE_LICENSES]


@dataclass(frozen=True)
class Subject:
    license_id: int
    visa_id: int
    master_id: int
    other_license_id: int  # Globex's license


def _now() -> datetime:
    return datetime.now(UTC)


def _buy(actor, name: str, plan_code: str, quantity: int, card_id: int) -> int:  # noqa: ANN001
    with db.session_scope(write=False) as session:
        plan = session.exec(select(Plan).where(Plan.code == plan_code)).one()
    return create_license(None, SandboxProvider(), actor=actor, now=_now(), request=PurchaseRequest(
        reference_name=name, plan_id=plan.id, quantity=quantity, payment_method_id=card_id,
        expected_total=quantity * plan.unit_amount, idempotency_key=uuid.uuid4().hex)).license_id


@pytest.fixture
def subject(root_state: rx.State) -> Subject:
    provider, today = SandboxProvider(), _now().date()
    with db.session_scope(write=False) as session:
        actor = actor_for_user(session, demo_owner_id())
    visa = add_payment_method(None, provider, actor=actor, number="4242424242424242", expiry="12/34", cvc="123",
                              today=today)
    master = add_payment_method(None, provider, actor=actor, number="5555555555554444", expiry="11/33", cvc="123",
                                today=today)
    license_id = _buy(actor, "Sales team", "awareness-business", 5, visa.id)
    with db.session_scope() as session:
        people = [employees.save_employee(session, actor=actor, name=f"Seat Holder {n}",
                                          email=f"seat.holder.{n}@acme-security.example", department="Sales")
                  for n in (1, 2)]
        seats.assign(session, actor=actor, license_id=license_id,
                     holders=[Holder(kind="employee", id=person.id) for person in people])
        globex = Account(name="Globex Corporation")
        session.add(globex)
        session.flush()
        gina = User(account_id=globex.id, name="Gina Globex", email="owner@globex.example", role=Role.OWNER.value)
        session.add(gina)
        session.flush()
        other = actor_for_user(session, gina.id)
    other_card = add_payment_method(None, provider, actor=other, number="4242424242424242", expiry="12/34",
                                    cvc="123", today=today)
    other_license = _buy(other, "Globex team", "awareness-business", 3, other_card.id)
    return Subject(license_id=license_id, visa_id=visa.id, master_id=master.id, other_license_id=other_license)


def user_id(email: str) -> int:
    with db.session_scope(write=False) as session:
        return session.exec(select(User.id).where(User.email == email)).one()


def open_page(root: rx.State, license_id: object) -> ManageLicenseState:
    """The page at /licenses/manage?id=<license_id>, loaded."""
    at_url(root, f"/licenses/manage?id={license_id}")
    page = substate(root, ManageLicenseState)
    run_now(page, "load")
    return page


def browser(email: str, license_id: int) -> rx.State:
    root = new_root_state()
    sign_in_as(root, user_id(email))
    open_page(root, license_id)
    return root


def license_row(license_id: int) -> License:
    with db.session_scope(write=False) as session:
        return session.get(License, license_id)


def invoices_of(license_id: int) -> int:
    with db.session_scope(write=False) as session:
        return len(session.exec(select(Invoice.id).where(Invoice.license_id == license_id)).all())


def toast(event: rx.event.EventSpec) -> tuple[str, str]:
    script = str(event.args[0][1])
    found = re.search(r'\["(\w+)"\]\(("(?:[^"\\]|\\.)*")', script)
    assert found, f"not a toast: {script}"
    return found[1], json.loads(found[2])


def told(state: rx.State, handler: str, *args: object, field: str = "") -> str:
    """What the member reads after `handler`: the message of a refusal the handler let through (the app shows
    it as a toast), else the message next to `field`, else the toast it sent ("(success) …" for a good one)."""
    try:
        events = run_now(state, handler, *args)
    except DomainError as exc:
        return exc.message
    if field and getattr(state, field):
        return getattr(state, field)
    toasts = [toast(event) for event in events if isinstance(event, rx.event.EventSpec)]
    if not toasts:
        return ""
    kind, text = toasts[-1]
    return text if kind == "error" else f"({kind}) {text}"


def everything() -> dict[str, list]:
    with db.session_scope(write=False) as session:
        return {name: sorted(map(repr, session.execute(sa.select(table)).all()))
                for name, table in all_metadata().tables.items() if name not in ("auth_session", "throttle")}


@contextmanager
def nothing_changes() -> Iterator[None]:
    before = everything()
    yield
    after = everything()
    assert [name for name in before if before[name] != after[name]] == []


def owner_preview_add(license_id: int, add: int = 1):  # noqa: ANN201
    with db.session_scope(write=False) as session:
        actor = actor_for_user(session, demo_owner_id())
        return preview_add(session, actor=actor, license_id=license_id, add=add, now=_now())


def plan_id(code: str) -> int:
    with db.session_scope(write=False) as session:
        return session.exec(select(Plan.id).where(Plan.code == code)).one()


# --- the page ---------------------------------------------------------------------------------------------------


def test_the_page_shows_the_license_and_its_cards(root_state: rx.State, subject: Subject) -> None:
    page = open_page(root_state, subject.license_id)
    d = page.detail
    assert (d.reference_name, d.product, d.plan, d.quantity, d.assigned, d.available) == (
        "Sales team", "Security Awareness Training", "Business", 5, 2, 3)
    assert (d.unit_price, d.monthly_now, d.card, d.can_change) == ("$19.00", "$95.00", "Visa •••• 4242", True)
    assert [plan.direction for plan in d.plans] == ["downgrade", "current", "upgrade"]
    assert len(d.invoices) == 1 and page.missing == ""
    assert [card.last4 for card in page.cards] == ["4242", "4444"]  # the default first
    assert page.card_choice == str(subject.visa_id)
    assert page.employees_url == f"/employees?license={subject.license_id}"
    delta = str(root_state.get_delta())
    assert "pm_" not in delta and "sub_" not in delta  # no provider ids reach the browser


@pytest.mark.parametrize("bad", ["", "abc", "-1", "9" * 30, "0"])
def test_a_bad_id_in_the_url_is_not_found(root_state: rx.State, subject: Subject, bad: str) -> None:
    page = open_page(root_state, bad)
    assert (page.detail, page.missing, page.loaded) == (None, "That license was not found.", True)


def test_another_accounts_license_in_the_url_is_not_found(root_state: rx.State, subject: Subject) -> None:
    page = open_page(root_state, subject.license_id)
    page = open_page(root_state, subject.other_license_id)
    assert (page.detail, page.missing, page._license_id) == (None, "That license was not found.", 0)
    # Nothing of the page can act on a license it does not show.
    assert told(page, "cancel") == "That license was not found."
    assert told(substate(root_state, AddLicensesState), "open") == "That license was not found."


# --- Add licenses ----------------------------------------------------------------------------------------------


def test_add_licenses_previews_then_charges_once(root_state: rx.State, subject: Subject) -> None:
    page = open_page(root_state, subject.license_id)
    add = substate(root_state, AddLicensesState)
    add.open()
    key = add._key
    assert add.is_open and len(key) == 32 and add.add == "1" and add.preview is not None
    add.set_add("abc")
    assert add.preview is None and "number of licenses to add" in add.add_error
    add.set_add("3")
    assert add.add_error == "" and add.preview.due_now > 0
    expected = owner_preview_add(subject.license_id, 3)
    assert add.preview == expected
    assert "a month from" in add.preview.summary and "$152.00" in add.preview.summary  # 8 × $19.00

    # A second click while the first is under way sends nothing; the first one finishes.
    begun = add._begin_charge()
    assert begun is not None and add.charging
    assert add._begin_charge() is None
    add.set_open(False)
    assert add.is_open  # stays open while charging
    add.charging = False
    assert told(add, "confirm") == f"(success) 3 licenses added. {expected.due_now_display} charged now."
    assert (add.is_open, add.charging, add._key) == (False, False, "")
    assert page.detail.quantity == 8 and len(page.detail.invoices) == 2
    assert license_row(subject.license_id).quantity == 8


def test_a_retry_after_an_unconfirmed_answer_reuses_the_key_and_charges_once(root_state: rx.State,
                                                                             subject: Subject) -> None:
    open_page(root_state, subject.license_id)
    add = substate(root_state, AddLicensesState)
    add.open()
    key = add._key
    # The provider's answer was lost: the dialog keeps its key and says to press Confirm again.
    add._begin_charge()
    assert add._finish_charge(Outcome(error=Unexpected("Press Confirm again."))) is None
    assert (add._key, add.form_error, add.is_open) == (key, "Press Confirm again.", True)
    assert told(add, "confirm").startswith("(success) 1 license added.")
    # Confirm pressed again with the same key (a retry the browser sent twice): no second charge.
    add._key, add.preview, add.is_open = key, owner_preview_add(subject.license_id), True
    assert told(add, "confirm").startswith("(success) 1 license added.")
    assert license_row(subject.license_id).quantity == 6
    assert invoices_of(subject.license_id) == 2
    with db.session_scope(write=False) as session:
        assert len(session.exec(select(LicenseChange.id)).all()) == 1


def test_a_refused_add_keeps_what_was_typed_and_takes_a_new_key(root_state: rx.State, subject: Subject) -> None:
    open_page(root_state, subject.license_id)
    add = substate(root_state, AddLicensesState)
    add.open()
    add.set_add("2")
    key = add._key
    add.preview = add.preview.model_copy(update={"due_now": add.preview.due_now + 1})  # a price shown earlier
    with nothing_changes():
        said = told(add, "confirm", field="form_error")
    assert said.startswith("The price has changed since it was shown.")
    assert (add.add, add.is_open, add.charging) == ("2", True, False)
    assert add._key != key and add.preview.due_now == owner_preview_add(subject.license_id, 2).due_now


# --- Remove licenses --------------------------------------------------------------------------------------------


def test_remove_below_the_assigned_seats_says_how_many_to_free(root_state: rx.State, subject: Subject) -> None:
    open_page(root_state, subject.license_id)
    remove = substate(root_state, RemoveLicensesState)
    remove.open()
    assert (remove.is_open, remove.quantity) == (True, "5")
    remove.set_quantity("1")
    with nothing_changes():
        said = told(remove, "save", field="quantity_error")
    assert said == "2 licenses are assigned. Free 1 seat first, then reduce to 1."
    assert (remove.quantity, remove.is_open, remove.saving) == ("1", True, False)


def test_remove_at_renewal_then_withdraw(root_state: rx.State, subject: Subject) -> None:
    page = open_page(root_state, subject.license_id)
    remove = substate(root_state, RemoveLicensesState)
    remove.open()
    remove.set_quantity("3")
    said = told(remove, "save")
    assert re.fullmatch(r"\(success\) From the next renewal: 5 → 3 on \d+ \w+ \d{4}\.", said)
    assert remove.is_open is False
    assert page.detail.scheduled_quantity.startswith("5 → 3 on ") and page.detail.quantity == 5
    assert page.detail.available == 1  # 2 assigned: one more may be, as the decrease counts already
    assert license_row(subject.license_id).next_quantity == 3
    assert told(page, "withdraw_decrease").startswith("(success) The decrease was withdrawn.")
    assert page.detail.scheduled_quantity == "" and page.busy == ""
    assert license_row(subject.license_id).next_quantity is None


# --- Change plan ------------------------------------------------------------------------------------------------


def test_an_upgrade_is_charged_now_and_a_downgrade_waits_for_the_renewal(root_state: rx.State,
                                                                          subject: Subject) -> None:
    page = open_page(root_state, subject.license_id)
    change = substate(root_state, ChangePlanState)
    change.open()
    assert (change.plan_id, change.preview) == (str(page.detail.plan_id), None)
    assert told(change, "confirm", field="plan_error") == "Choose another plan."
    change.set_plan(str(plan_id("awareness-starter")))
    assert change.preview.at_renewal and change.preview.due_now == 0
    assert told(change, "confirm") == "(success) The plan changes at the next renewal."
    assert page.detail.next_plan == "Starter" and page.detail.plan == "Business"
    assert told(page, "withdraw_plan_change").startswith("(success) The plan change was withdrawn.")
    assert page.detail.next_plan == ""

    change.open()
    change.set_plan(str(plan_id("awareness-enterprise")))
    with db.session_scope(write=False) as session:
        actor = actor_for_user(session, demo_owner_id())
        expected = preview_plan_change(session, actor=actor, license_id=subject.license_id,
                                       plan_id=plan_id("awareness-enterprise"), now=_now())
    assert change.preview == expected and not expected.at_renewal
    assert told(change, "confirm") == f"(success) Plan changed. {expected.due_now_display} charged now."
    assert page.detail.plan == "Enterprise" and invoices_of(subject.license_id) == 2


def test_a_plan_of_another_product_is_not_found(root_state: rx.State, subject: Subject) -> None:
    open_page(root_state, subject.license_id)
    change = substate(root_state, ChangePlanState)
    change.open()
    for bad in (str(plan_id("phishing-advanced")), "abc", "9" * 30):
        change.set_plan(bad)
        assert (change.plan_error, change.preview) == ("That plan was not found.", None)


# --- cancel, resume, the card, paying what is due -----------------------------------------------------------------


def test_cancel_then_resume(root_state: rx.State, subject: Subject) -> None:
    page = open_page(root_state, subject.license_id)
    page.ask_cancel()
    assert page.cancel_open
    said = told(page, "cancel")
    assert re.fullmatch(r"\(success\) The license ends on \d+ \w+ \d{4}\. Its seats keep working until then\.", said)
    assert page.cancel_open is False and page.detail.cancel_at_period_end
    assert page.detail.ends_on.startswith("Ends on ") and page.detail.renews_on == ""
    # While it is set to end, nothing can be added.
    add = substate(root_state, AddLicensesState)
    add.open()
    assert told(add, "confirm", field="form_error") == "This license is set to end. Resume it first."
    assert told(page, "resume").startswith("(success) The license was resumed. It renews on ")
    assert page.detail.cancel_at_period_end is False and page.detail.ends_on == ""


def test_change_card_bills_the_license_to_another_saved_card(root_state: rx.State, subject: Subject) -> None:
    page = open_page(root_state, subject.license_id)
    page.set_card_choice("abc")
    assert told(page, "change_card", field="card_error") == "That payment method was not found."
    assert page.card_choice == "abc"
    page.set_card_choice(str(subject.master_id))
    assert told(page, "change_card") == "(success) Card changed. The next renewals are charged to it."
    assert page.detail.card == "Mastercard •••• 4444" and page.card_choice == str(subject.master_id)
    assert license_row(subject.license_id).payment_method_id == subject.master_id


def make_past_due(license_id: int) -> None:
    """The period ended an hour ago and its renewal was refused (the card billed declines every charge)."""
    with db.session_scope(write=False) as session:
        actor = actor_for_user(session, demo_owner_id())
    declining = add_payment_method(None, SandboxProvider(), actor=actor, number="4000000000000341", expiry="10/33",
                                   cvc="123", today=_now().date())
    license_changes.change_card(None, SandboxProvider(), actor=actor, license_id=license_id,
                                payment_method_id=declining.id, now=_now())
    with db.session_scope() as session:
        lic = session.get(License, license_id)
        shift = lic.period_end - _now() + timedelta(hours=1)
        session.execute(sa.update(License).where(License.id == license_id).values(
            created_at=lic.created_at - shift, period_start=lic.period_start - shift,
            period_end=lic.period_end - shift))
    assert renewals.bill_due(None, SandboxProvider(), now=_now(), license_id=license_id)["failed"] == 1


def test_a_past_due_license_is_paid_with_another_card(root_state: rx.State, subject: Subject) -> None:
    make_past_due(subject.license_id)
    page = open_page(root_state, subject.license_id)
    assert page.detail.status == "past_due" and "could not be charged" in page.detail.payment_problem
    assert told(page, "pay_now") == "The card was declined again. Change the card, then pay now."
    assert page.busy == ""
    page.set_card_choice(str(subject.visa_id))
    assert told(page, "change_card") == ("(success) Card changed and the overdue renewal paid. The license is "
                                         "active again.")
    assert page.detail.status == "active" and page.detail.payment_problem == ""
    assert told(page, "pay_now") == "This license has no payment due."


# --- roles ------------------------------------------------------------------------------------------------------


def _open_add(root: rx.State, s: Subject) -> str:
    return told(substate(root, AddLicensesState), "open")


def _preview_add(root: rx.State, s: Subject) -> str:
    add = substate(root, AddLicensesState)
    add.set_add("2")
    return add.add_error


def _confirm_add(root: rx.State, s: Subject) -> str:
    add = substate(root, AddLicensesState)
    add.add, add.preview, add._key = "1", owner_preview_add(s.license_id), uuid.uuid4().hex
    return told(add, "confirm", field="form_error")


def _open_remove(root: rx.State, s: Subject) -> str:
    return told(substate(root, RemoveLicensesState), "open")


def _remove(root: rx.State, s: Subject) -> str:
    remove = substate(root, RemoveLicensesState)
    remove.quantity = "4"
    return told(remove, "save", field="quantity_error")


def _open_change_plan(root: rx.State, s: Subject) -> str:
    return told(substate(root, ChangePlanState), "open")


def _preview_plan(root: rx.State, s: Subject) -> str:
    change = substate(root, ChangePlanState)
    change.set_plan(str(plan_id("awareness-starter")))
    return change.plan_error


def _change_plan(root: rx.State, s: Subject) -> str:
    change = substate(root, ChangePlanState)
    with db.session_scope(write=False) as session:
        actor = actor_for_user(session, demo_owner_id())
        change.preview = preview_plan_change(session, actor=actor, license_id=s.license_id,
                                             plan_id=plan_id("awareness-starter"), now=_now())
    change.plan_id, change._key = str(plan_id("awareness-starter")), uuid.uuid4().hex
    return told(change, "confirm", field="form_error")


def _ask_cancel(root: rx.State, s: Subject) -> str:
    return told(substate(root, ManageLicenseState), "ask_cancel")


def _cancel(root: rx.State, s: Subject) -> str:
    return told(substate(root, ManageLicenseState), "cancel")


def _resume(root: rx.State, s: Subject) -> str:
    return told(substate(root, ManageLicenseState), "resume")


def _withdraw_decrease(root: rx.State, s: Subject) -> str:
    return told(substate(root, ManageLicenseState), "withdraw_decrease")


def _withdraw_plan_change(root: rx.State, s: Subject) -> str:
    return told(substate(root, ManageLicenseState), "withdraw_plan_change")


def _change_card(root: rx.State, s: Subject) -> str:
    page = substate(root, ManageLicenseState)
    page.card_choice = str(s.master_id)
    return told(page, "change_card", field="card_error")


def _pay_now(root: rx.State, s: Subject) -> str:
    return told(substate(root, ManageLicenseState), "pay_now")


ACTIONS: list[Callable[[rx.State, Subject], str]] = [
    _open_add, _preview_add, _confirm_add, _open_remove, _remove, _open_change_plan, _preview_plan, _change_plan,
    _ask_cancel, _cancel, _resume, _withdraw_decrease, _withdraw_plan_change, _change_card, _pay_now,
]
IDS = [action.__name__.strip("_") for action in ACTIONS]


@pytest.mark.parametrize("email", [VIEWER, LICENSE_ADMIN], ids=["viewer", "license admin"])
@pytest.mark.parametrize("action", ACTIONS, ids=IDS)
def test_viewers_and_license_admins_see_the_page_but_change_nothing(subject: Subject, email: str,
                                                                     action: Callable[[rx.State, Subject], str]) -> None:
    root = browser(email, subject.license_id)
    page = substate(root, ManageLicenseState)
    assert page.detail.reference_name == "Sales team" and page.can_change is False and page.cards == []
    with nothing_changes():
        assert action(root, subject) == REFUSED
    assert page.busy == "" and not substate(root, AddLicensesState).charging


@pytest.mark.parametrize("email", [OWNER, BILLING_ADMIN], ids=["owner", "billing admin"])
def test_owners_and_billing_admins_change_the_license(subject: Subject, email: str) -> None:
    root = browser(email, subject.license_id)
    page = substate(root, ManageLicenseState)
    assert page.can_change is True
    for opens in (_open_add, _open_remove, _open_change_plan, _ask_cancel):
        assert opens(root, subject) == ""
    assert _preview_add(root, subject) == "" and _preview_plan(root, subject) == ""
    assert _confirm_add(root, subject).startswith("(success) 1 license added.")
    assert _remove(root, subject).startswith("(success) From the next renewal: 6 → 4 on ")
    assert _withdraw_decrease(root, subject).startswith("(success) The decrease was withdrawn.")
    assert _change_plan(root, subject) == "(success) The plan changes at the next renewal."
    assert _withdraw_plan_change(root, subject).startswith("(success) The plan change was withdrawn.")
    assert _change_card(root, subject) == "(success) Card changed. The next renewals are charged to it."
    assert _cancel(root, subject).startswith("(success) The license ends on ")
    assert _resume(root, subject).startswith("(success) The license was resumed.")
    assert _pay_now(root, subject) == "This license has no payment due."
    assert page.busy == ""


@pytest.mark.parametrize("action", ACTIONS, ids=IDS)
def test_another_accounts_license_is_not_found(root_state: rx.State, subject: Subject,
                                               action: Callable[[rx.State, Subject], str]) -> None:
    """The page's license swapped for Globex's (what a tampered state would hold): every handler answers "not
    found" and neither account changes."""
    page = open_page(root_state, subject.license_id)
    page._license_id = subject.other_license_id
    with nothing_changes():
        assert action(root_state, subject) == "That license was not found."
    assert page.busy == "" and not substate(root_state, AddLicensesState).charging

"""The Idle seats panel of the Licenses page in headless Chromium: what idle seats cost, reduce at renewal, free the
seats of deactivated people."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from sqlmodel import select

from cf_portal.db import make_engine, session_scope
from cf_portal.models import Employee, License, SeatAssignment, User
from cf_portal.services import seats
from cf_portal.services.actors import actor_for_user
from cf_portal.services.seats import Holder
from cf_portal.services.seed import DEMO_OWNER_EMAIL, demo_account
from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    PortalServer,
    assert_accessible,
    assert_no_horizontal_scroll,
    wait_until_connected,
)
from tests.e2e.test_employees import buy

pytestmark = pytest.mark.e2e


def give_seats(portal: PortalServer, license_name: str, people: list[str], *, deactivate: list[str] = ()) -> None:
    """Seats of the demo account's license to these people (found in the demo account only: demo copies share
    their names and emails), then `deactivate` some of them without freeing their seats, as an older deactivation
    or a directory sync would have left them."""
    engine = make_engine(portal.env["REFLEX_DB_URL"])
    with session_scope(engine) as session:
        account = demo_account(session)
        actor = actor_for_user(session, session.exec(select(User.id).where(User.email == DEMO_OWNER_EMAIL)).one())
        license_id = session.exec(select(License.id).where(License.account_id == account.id,
                                                           License.reference_name == license_name)).one()
        ids = {e.name: e.id for e in session.exec(select(Employee).where(Employee.account_id == account.id,
                                                                           Employee.name.in_(people)))}
        seats.assign(session, actor=actor, license_id=license_id,
                     holders=[Holder(kind="employee", id=ids[name]) for name in people])
        session.execute(sa.update(Employee).where(Employee.account_id == account.id, Employee.name.in_(deactivate))
                        .values(active=False))
    engine.dispose()


def open_seat_holders(portal: PortalServer, license_name: str) -> int:
    engine = make_engine(portal.env["REFLEX_DB_URL"])
    with session_scope(engine, write=False) as session:
        account = demo_account(session)
        count = session.exec(select(sa.func.count()).select_from(SeatAssignment).join(
            License, License.id == SeatAssignment.license_id).where(
            License.account_id == account.id, License.reference_name == license_name,
            SeatAssignment.unassigned_at.is_(None))).one()
    engine.dispose()
    return count


def test_idle_seats_are_reduced_at_renewal_and_freed(fresh_demo: PortalServer, app_page: Page) -> None:
    portal, page = fresh_demo, app_page
    buy(portal, "Pilot", 4)  # Phishing Simulator Standard, $12.00 a seat
    give_seats(portal, "Pilot", ["Ava Thompson"])
    buy(portal, "Support desk", 3)
    give_seats(portal, "Support desk", ["Noah Kim", "Mia Rossi"], deactivate=["Mia Rossi"])

    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/licenses")
    wait_until_connected(page)
    panel = page.get_by_role("region", name="Idle seats")
    expect(panel).to_contain_text("$60.00 a month on 5 idle seats")
    pilot = panel.get_by_role("listitem").filter(has_text="Pilot")
    expect(pilot).to_contain_text("3 unassigned · $36.00 a month")
    support = panel.get_by_role("listitem").filter(has_text="Support desk")
    expect(support).to_contain_text("1 held by a deactivated person (Mia Rossi) · $12.00 a month")
    assert_accessible(page)

    # Reduce Pilot to the one seat held, at the renewal: by keyboard, Escape first (nothing happens), then Enter.
    reduce = panel.get_by_role("button", name="Reduce to 1 at renewal (Pilot)")
    reduce.focus()
    page.keyboard.press("Enter")
    confirm = page.get_by_role("alertdialog", name="Reduce Pilot at renewal?")
    expect(confirm).to_be_visible()
    page.keyboard.press("Escape")
    expect(confirm).to_be_hidden()
    expect(reduce).to_be_focused()
    page.keyboard.press("Enter")
    expect(confirm).to_contain_text("billed for 1 license instead of 4: $36.00 a month less")
    assert_accessible(page)  # the confirmation
    confirm.get_by_role("button", name="Reduce at renewal").click()
    expect(page.get_by_text(re.compile(r"Reduced at renewal: Pilot, 4 → 1 on "))).to_be_visible()
    expect(confirm).to_be_hidden()
    expect(panel.get_by_role("button", name="Reduce to 1 at renewal (Pilot)")).to_have_count(0)
    expect(panel).to_contain_text("$24.00 a month on 2 idle seats")
    expect(panel.get_by_role("heading", name="Idle seats")).to_be_focused()  # its button is gone

    # Free the seat the deactivated person still holds: then Support desk can be reduced too.
    panel.get_by_role("button", name="Free these seats (Support desk)").click()
    confirm = page.get_by_role("alertdialog", name="Free the seats of deactivated people on Support desk?")
    expect(confirm).to_contain_text("Mia Rossi (deactivated) loses their seat.")
    confirm.get_by_role("button", name="Free seats").click()
    expect(page.get_by_text("Support desk: 1 seat freed.")).to_be_visible()
    expect(confirm).to_be_hidden()
    expect(support).to_contain_text("2 unassigned · $24.00 a month")
    expect(panel.get_by_role("button", name="Reduce to 1 at renewal (Support desk)")).to_be_focused()
    assert open_seat_holders(portal, "Support desk") == 1
    # The licenses table agrees.
    expect(page.get_by_role("row").filter(has_text="Support desk")).to_contain_text("1 of 3 assigned")

    # On a phone: no sideways scrolling, the action still in reach.
    page.set_viewport_size(PHONE)
    expect(panel.get_by_role("button", name="Reduce to 1 at renewal (Support desk)")).to_be_visible()
    assert_no_horizontal_scroll(page)
    assert_accessible(page)


def test_a_viewer_sees_the_idle_seats_but_no_actions(fresh_demo: PortalServer, anon_page: Page) -> None:
    portal, page = fresh_demo, anon_page
    buy(portal, "Pilot", 2)
    portal.sign_in(page, "auditor@acme-security.example")
    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/licenses")
    wait_until_connected(page)
    panel = page.get_by_role("region", name="Idle seats")
    expect(panel).to_contain_text("2 unassigned · $24.00 a month")
    expect(panel).to_contain_text("Owners and billing admins can reduce licenses.")
    expect(panel.get_by_role("button")).to_have_count(0)

"""Manage license in headless Chromium, by labels and roles: add licenses (the amount shown, then charged), remove
below the seats assigned (refused) and at the renewal (then withdrawn), cancel and resume, on a desktop and a phone.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Employee, License, Plan, User
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services import seats
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.license_changes import preview_add
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.services.seats import Holder
from cf_portal.services.seed import DEMO_OWNER_EMAIL
from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    PortalServer,
    assert_accessible,
    assert_no_horizontal_scroll,
    saved_visa,
    url_of,
    wait_for_animations,
    wait_until_connected,
)

pytestmark = pytest.mark.e2e
VIEWER = "auditor@acme-security.example"


def owner(portal: PortalServer) -> Actor:
    engine = portal.engine()
    with session_scope(engine, write=False) as session:
        actor = actor_for_user(session, session.exec(select(User.id).where(User.email == DEMO_OWNER_EMAIL)).one())
    engine.dispose()
    return actor


def buy(portal: PortalServer, name: str, quantity: int, *, assigned: int = 0) -> int:
    """A license of the demo account (Security Awareness Training, Business), bought through the purchase service,
    with `assigned` of its seats given to the account's first employees; returns its id."""
    engine, actor = portal.engine(), owner(portal)
    with session_scope(engine, write=False) as session:
        plan = session.exec(select(Plan).where(Plan.code == "awareness-business")).one()
        # Demo copies share employee emails: only this account's.
        people = session.exec(select(Employee.id).where(Employee.account_id == actor.account_id)
                              .order_by(Employee.id).limit(assigned)).all()
    license_id = create_license(engine, SandboxProvider(engine), actor=actor, now=datetime.now(UTC),
                                request=PurchaseRequest(
                                    reference_name=name, plan_id=plan.id, quantity=quantity,
                                    payment_method_id=saved_visa(engine, actor), expected_total=plan.unit_amount * quantity,
                                    idempotency_key=uuid.uuid4().hex)).license_id
    if people:
        with session_scope(engine) as session:
            seats.assign(session, actor=actor, license_id=license_id,
                         holders=[Holder(kind="employee", id=person) for person in people])
    engine.dispose()
    return license_id


def quantity_of(portal: PortalServer, license_id: int) -> tuple[int, int | None]:
    engine = portal.engine()
    with session_scope(engine, write=False) as session:
        lic = session.get(License, license_id)
        found = lic.quantity, lic.next_quantity
    engine.dispose()
    return found


def open_manage(portal: PortalServer, page: Page, name: str, viewport: dict = DESKTOP) -> None:
    """From the Licenses page, as a person gets there: its Manage button."""
    page.set_viewport_size(viewport)
    page.goto(portal.url + "/licenses")
    wait_until_connected(page)
    page.get_by_role("link", name=f"Manage {name}").first.click()
    expect(page).to_have_url(re.compile(re.escape(portal.url) + r"/licenses/manage/?\?id=\d+$"))
    expect(page.get_by_role("heading", name="Manage license", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name=name, level=2)).to_be_visible()


def fact(page: Page, term: str):  # noqa: ANN201
    return page.locator(".fact").filter(has=page.locator("dt", has_text=re.compile(f"^{term}$")))


def test_add_licenses_shows_the_amount_then_charges_it(fresh_demo: PortalServer, app_page: Page) -> None:
    portal, page = fresh_demo, app_page
    license_id = buy(portal, "Awareness team", 3)
    open_manage(portal, page, "Awareness team")
    expect(fact(page, "Licenses")).to_contain_text("3")
    invoices = page.get_by_role("table", name="Invoices of this license").get_by_role("row")
    expect(invoices).to_have_count(2)  # the header and the purchase

    page.get_by_role("button", name="Add licenses").click()
    dialog = page.get_by_role("dialog", name="Add licenses")
    dialog.get_by_label("Licenses to add").fill("2")
    engine = portal.engine()
    with session_scope(engine, write=False) as session:
        expected = preview_add(session, actor=owner(portal), license_id=license_id, add=2, now=datetime.now(UTC))
    engine.dispose()
    expect(dialog.get_by_role("status")).to_contain_text(expected.summary)
    assert_accessible(page)  # the dialog with its preview

    dialog.get_by_role("button", name="Confirm and pay").click()
    expect(page.get_by_text(f"2 licenses added. {expected.due_now_display} charged now.")).to_be_visible()
    expect(dialog).to_be_hidden()
    expect(fact(page, "Licenses")).to_contain_text("5")
    expect(invoices).to_have_count(3)
    assert quantity_of(portal, license_id) == (5, None)


def test_remove_below_the_assigned_is_refused_then_at_renewal_and_withdrawn(fresh_demo: PortalServer,
                                                                           app_page: Page) -> None:
    portal, page = fresh_demo, app_page
    license_id = buy(portal, "Phishing drill", 4, assigned=2)
    open_manage(portal, page, "Phishing drill")
    page.get_by_role("button", name="Remove licenses").click()
    dialog = page.get_by_role("dialog", name="Remove licenses")
    field = dialog.get_by_label("Number of licenses from the next renewal")
    field.fill("1")
    dialog.get_by_role("button", name="Remove at renewal").click()
    expect(dialog.get_by_role("alert")).to_have_text(re.compile("2 licenses are assigned. Free 1 seat first, then "
                                                                "reduce to 1."))
    expect(field).to_have_value("1")  # what was typed stays
    expect(dialog.get_by_role("link", name="free seats in Employees")).to_have_attribute(
        "href", f"/employees?license={license_id}")
    assert quantity_of(portal, license_id) == (4, None)

    field.fill("3")
    dialog.get_by_role("button", name="Remove at renewal").click()
    expect(page.get_by_text(re.compile(r"From the next renewal: 4 → 3 on \d+ \w+ \d{4}\."))).to_be_visible()
    expect(dialog).to_be_hidden()
    expect(page.get_by_text(re.compile(r"^4 → 3 on "))).to_be_visible()
    assert quantity_of(portal, license_id) == (4, 3)

    page.get_by_role("button", name="Withdraw the decrease").click()
    expect(page.get_by_text("The decrease was withdrawn.", exact=False)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^4 → 3 on "))).to_have_count(0)
    assert quantity_of(portal, license_id) == (4, None)

    # The link in the dialog lists who holds this license's seats.
    page.goto(portal.url + f"/employees?license={license_id}")
    expect(page.get_by_role("status").filter(has_text="Showing who holds a seat of")).to_contain_text(
        "Phishing drill")
    expect(page.get_by_role("button", name=re.compile("^Details of "))).to_have_count(2)


def test_cancel_then_resume(fresh_demo: PortalServer, app_page: Page) -> None:
    portal, page = fresh_demo, app_page
    buy(portal, "Ending team", 2)
    open_manage(portal, page, "Ending team")
    page.get_by_role("button", name="Cancel license").click()
    confirm = page.get_by_role("alertdialog", name="Cancel Ending team?")
    expect(confirm).to_contain_text("Seats keep working until")
    assert_accessible(page)
    confirm.get_by_role("button", name="Cancel license").click()
    expect(page.get_by_text(re.compile(r"The license ends on \d+ \w+ \d{4}\."))).to_be_visible()
    expect(confirm).to_be_hidden()
    expect(page.get_by_text(re.compile(r"^Ends on \d+ \w+ \d{4}$"))).to_be_visible()
    expect(page.get_by_role("button", name="Cancel license")).to_have_count(0)

    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_text("The license was resumed.", exact=False)).to_be_visible()
    expect(page.get_by_role("button", name="Cancel license")).to_be_visible()
    expect(fact(page, "Next renewal")).to_be_visible()


def test_a_viewer_sees_the_license_read_only(fresh_demo: PortalServer, anon_page: Page) -> None:
    portal, page = fresh_demo, anon_page
    buy(portal, "Read only team", 2)
    portal.sign_in(page, VIEWER)
    open_manage(portal, page, "Read only team")
    expect(page.get_by_text("Only owners and billing admins can change or cancel licenses.")).to_be_visible()
    for label in ("Add licenses", "Remove licenses", "Change plan", "Cancel license"):
        expect(page.get_by_role("button", name=label)).to_have_count(0)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_manage_license_has_no_accessibility_violations(fresh_demo: PortalServer, app_page: Page,
                                                        viewport: dict) -> None:
    portal, page = fresh_demo, app_page
    buy(portal, "A team with a rather long reference name", 6, assigned=1)
    open_manage(portal, page, "A team with a rather long reference name", viewport)
    expect(page.get_by_text("Visa •••• 4242")).to_be_visible()
    if viewport is PHONE:
        assert_no_horizontal_scroll(page)
    assert_accessible(page)

    page.get_by_role("button", name="Change plan").click()
    dialog = page.get_by_role("dialog", name="Change plan")
    dialog.get_by_role("radio", name=re.compile("^Enterprise")).click()
    expect(dialog.get_by_role("status")).to_contain_text("a month from")
    wait_for_animations(page)
    if viewport is PHONE:
        assert_no_horizontal_scroll(page)
    assert_accessible(page)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    page.get_by_role("link", name="All licenses").click()
    expect(page).to_have_url(url_of(portal, "/licenses"))

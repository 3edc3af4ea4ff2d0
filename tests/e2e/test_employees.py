"""The Employees section in headless Chromium: assign, move, unassign, bulk, CSV import, phone."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from sqlmodel import select

from cf_portal.db import make_engine, session_scope
from cf_portal.models import Plan, User
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services.actors import actor_for_user
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.services.seed import DEMO_OWNER_EMAIL
from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    PortalServer,
    assert_accessible,
    assert_no_horizontal_scroll,
    choose,
    saved_visa,
    wait_until_connected,
)

pytestmark = pytest.mark.e2e


def buy(portal: PortalServer, name: str, quantity: int, plan_code: str = "phishing-standard") -> None:
    """Buy a license for the demo account through the purchase service (the checkout has its own tests)."""
    engine = make_engine(portal.env["REFLEX_DB_URL"])
    provider = SandboxProvider(engine)
    with session_scope(engine, write=False) as session:
        actor = actor_for_user(session, session.exec(select(User).where(User.email == DEMO_OWNER_EMAIL)).one().id)
        plan = session.exec(select(Plan).where(Plan.code == plan_code)).one()
    create_license(engine, provider, actor=actor, now=datetime.now(UTC), request=PurchaseRequest(
        reference_name=name, plan_id=plan.id, quantity=quantity, payment_method_id=saved_visa(engine, actor),
        expected_total=plan.unit_amount * quantity, idempotency_key=uuid.uuid4().hex))
    engine.dispose()


def open_employees(portal: PortalServer, page: Page, viewport: dict = DESKTOP) -> None:
    page.set_viewport_size(viewport)
    page.goto(portal.url + "/employees")
    wait_until_connected(page)
    expect(page.get_by_role("heading", name="Employees", level=1)).to_be_visible()


def row_of(page: Page, name: str):  # noqa: ANN201
    return page.get_by_role("row").filter(has=page.get_by_role("button", name=f"Details of {name}"))


def open_seats(portal: PortalServer) -> int:
    engine = sa.create_engine(make_engine(portal.env["REFLEX_DB_URL"]).url)
    with engine.connect() as conn:
        value = conn.execute(sa.text("SELECT count(*) FROM seat_assignment WHERE unassigned_at IS NULL")).scalar_one()
    engine.dispose()
    return value


def test_assign_move_and_unassign(fresh_demo: PortalServer, app_page: Page) -> None:
    portal, page = fresh_demo, app_page
    buy(portal, "Phishing pilot", 2)
    open_employees(portal, page)
    page.get_by_label("Search").fill("ava thompson")
    expect(page.get_by_role("button", name="Details of Ava Thompson")).to_be_visible()
    row_of(page, "Ava Thompson").get_by_role("button", name="Assign a license to Ava Thompson").click()
    dialog = page.get_by_role("dialog", name="Assign a license")
    expect(dialog.get_by_label("License")).to_contain_text("Phishing pilot · Phishing Simulator Standard · 2 available")
    dialog.get_by_role("button", name="Assign").click()
    expect(dialog).to_be_hidden()
    expect(row_of(page, "Ava Thompson")).to_contain_text("Phishing Simulator · Phishing pilot")
    assert_accessible(page)  # the grid with a seat badge in it

    # Move the seat to someone else in one step.
    page.get_by_role("button", name="Details of Ava Thompson").click()
    details = page.get_by_role("dialog", name="Ava Thompson")
    details.get_by_role("button", name="Move Phishing Simulator · Phishing pilot").click()
    move = page.get_by_role("dialog", name="Move a seat")
    move.get_by_label("Move to").fill("Liam")
    choose(move.get_by_role("radio", name=re.compile("Liam Patel")))
    move.get_by_role("button", name="Move").click()
    expect(move).to_be_hidden()
    expect(details).to_contain_text("No license yet.")
    expect(details).to_contain_text("Liam Patel")  # the history shows where the seat went
    details.get_by_role("button", name="Close").click()
    assert open_seats(portal) == 1

    # Free it, after confirming.
    page.get_by_label("Search").fill("liam")
    page.get_by_role("button", name="Details of Liam Patel").click()
    details = page.get_by_role("dialog", name="Liam Patel")
    details.get_by_role("button", name="Unassign Phishing Simulator · Phishing pilot").click()
    confirm = page.get_by_role("alertdialog", name="Unassign this seat?")
    expect(confirm.get_by_role("button", name="Unassign")).to_be_visible()
    assert_accessible(page)  # the confirmation (its red action button must keep its contrast)
    confirm.get_by_role("button", name="Unassign").click()
    expect(details).to_contain_text("No license yet.")
    assert open_seats(portal) == 0

    # The Licenses page agrees.
    page.goto(portal.url + "/licenses")
    expect(page.get_by_role("row").filter(has_text="Phishing pilot")).to_contain_text("0 of 2 assigned")


def test_bulk_assign_beyond_the_seats_assigns_nobody(fresh_demo: PortalServer, app_page: Page) -> None:
    portal, page = fresh_demo, app_page
    buy(portal, "Small pack", 2, plan_code="darkweb-essentials")
    open_employees(portal, page)
    page.get_by_label("Department").select_option(label="Sales")
    expect(page.get_by_text("1–5 of 5")).to_be_visible()
    page.get_by_role("checkbox", name="Select everyone on this page").click()
    expect(page.get_by_text("5 selected")).to_be_visible()
    page.get_by_role("button", name="Assign license").click()
    dialog = page.get_by_role("dialog", name="Assign a license")
    dialog.get_by_role("button", name="Assign").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Only 2 seats left on this license for 5 people. 3 more are needed")
    add_license = dialog.get_by_role("link", name="Add License")
    expect(add_license).to_be_visible()
    assert open_seats(portal) == 0
    add_license.click()
    expect(page.get_by_label("Product")).to_have_value(re.compile(r"\d+"))
    expect(page.get_by_label("Plan")).to_contain_text("Essentials")
    expect(page.locator("#plan option:checked")).to_have_text(re.compile("^Essentials"))


def test_csv_import_reports_the_bad_row_and_imports_nothing(fresh_demo: PortalServer, app_page: Page,
                                                           tmp_path) -> None:  # noqa: ANN001
    portal, page = fresh_demo, app_page
    open_employees(portal, page)
    bad = tmp_path / "people.csv"
    bad.write_text("name,email,department\nNew Person,new.person@acme.example,Sales\nBroken,not-an-email,Sales\n")
    page.get_by_role("button", name="Import CSV").click()
    dialog = page.get_by_role("dialog", name="Import employees from CSV")
    dialog.locator("input[type=file]").set_input_files(str(bad))
    expect(dialog.get_by_role("table", name="Rows with errors")).to_contain_text("not-an-email")
    expect(dialog.get_by_role("button", name=re.compile("^Import"))).to_be_disabled()
    good = tmp_path / "good.csv"
    good.write_text("name,email,department\nNew Person,new.person@acme.example,Sales\n")
    dialog.locator("input[type=file]").set_input_files(str(good))
    expect(dialog.locator("input[type=file]")).to_have_attribute("aria-hidden", "true")  # one "Choose" button
    expect(dialog.get_by_role("button", name=re.compile("Choose"))).to_have_count(1)
    assert_accessible(page)  # the dialog with its drop zone and a file chosen
    dialog.get_by_role("button", name="Import 1 employee", exact=True).click()
    expect(dialog).to_be_hidden()
    page.get_by_label("Search").fill("new.person")
    expect(page.get_by_role("button", name="Details of New Person")).to_be_visible()


def go_to(page: Page, label: str) -> None:
    """Through the app's menu, as a person moves between pages (no reload)."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=label).click()
    expect(page.get_by_role("heading", name=label, level=1)).to_be_visible()


def test_a_page_forgets_its_dialogs_and_search_but_keeps_its_filters(fresh_demo: PortalServer,
                                                                     app_page: Page) -> None:
    """What survives leaving Employees: the filters. Not an open dialog, the Search text or the selection."""
    portal, page = fresh_demo, app_page
    buy(portal, "Small pack", 2, plan_code="darkweb-essentials")
    open_employees(portal, page)
    search = page.get_by_label("Search")

    # The details of Ava Thompson, then Licenses and back: no dialog, an empty Search, everyone.
    search.fill("Ava Thompson")
    page.get_by_role("button", name="Details of Ava Thompson").click()
    expect(page.get_by_role("dialog", name="Ava Thompson")).to_be_visible()
    page.goto(portal.url + "/licenses")  # the dialog covers the menu: by the address bar
    expect(page.get_by_role("heading", name="Licenses", level=1)).to_be_visible()
    go_to(page, "Employees")
    expect(page.get_by_text("1–25 of 27")).to_be_visible()
    expect(search).to_have_value("")
    expect(page.get_by_role("dialog")).to_have_count(0)

    # The Assign dialog's "Add License" link, and back: the filter stays; the dialog and the selection do not.
    page.get_by_label("Department").select_option(label="Sales")
    expect(page.get_by_text("1–5 of 5")).to_be_visible()
    page.get_by_role("checkbox", name="Select everyone on this page").click()
    page.get_by_role("button", name="Assign license").click()
    dialog = page.get_by_role("dialog", name="Assign a license")
    dialog.get_by_role("button", name="Assign").click()
    dialog.get_by_role("link", name="Add License").click()
    expect(page.get_by_role("heading", name="Add License", level=1)).to_be_visible()
    go_to(page, "Employees")
    expect(page.get_by_text("1–5 of 5")).to_be_visible()
    expect(page.get_by_label("Department")).to_have_value("Sales")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_text("5 selected")).to_have_count(0)
    expect(page.get_by_role("checkbox", name="Select everyone on this page")).not_to_be_checked()

    # Text typed as soon as the page is back is the Search text, not merged with the last visit's.
    page.get_by_label("Department").select_option(label="All departments")
    search.fill("Mia Rossi")
    expect(page.get_by_text("1–1 of 1")).to_be_visible()
    go_to(page, "Licenses")
    go_to(page, "Employees")
    expect(page.get_by_text("1–25 of 27")).to_be_visible()
    search.press_sequentially("Noah Kim")
    expect(search).to_have_value("Noah Kim")
    expect(page.get_by_text("1–1 of 1")).to_be_visible()
    expect(page.get_by_role("button", name="Details of Noah Kim")).to_be_visible()


def test_grid_on_a_phone(fresh_demo: PortalServer, app_page: Page) -> None:
    portal, page = fresh_demo, app_page
    open_employees(portal, page, PHONE)
    expect(page.get_by_text("1–25 of 27")).to_be_visible()
    assert_no_horizontal_scroll(page)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("26–27 of 27")).to_be_visible()
    expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    expect(page.get_by_role("button", name="Next")).to_be_disabled()
    assert_no_horizontal_scroll(page)
    page.get_by_role("button", name="Previous").click()
    expect(page.get_by_text("1–25 of 27")).to_be_visible()
    expect(page.get_by_role("button", name="Previous")).to_be_disabled()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_employees_page_has_no_accessibility_violations(fresh_demo: PortalServer, app_page: Page,
                                                        viewport: dict) -> None:
    open_employees(fresh_demo, app_page, viewport)
    expect(app_page.get_by_text("of 27")).to_be_visible()
    assert_accessible(app_page)

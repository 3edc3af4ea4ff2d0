"""Renewals in the demo, in headless Chromium: Settings' "Advance one month" renews a license (a second invoice on
Billing), and a license billed to the test card 4000 0000 0000 0341 becomes Past due, then Suspended."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import License, PaymentMethod, User
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services import license_changes
from cf_portal.services.actors import actor_for_user
from cf_portal.services.seed import DEMO_OWNER_EMAIL
from tests.e2e.conftest import (
    DESKTOP,
    PortalServer,
    assert_accessible,
    url_of,
    wait_until_connected,
)
from tests.e2e.test_add_license import add_card, open_form

pytestmark = pytest.mark.e2e


def advance_one_month(portal: PortalServer, page: Page, *, told: str) -> None:
    """Settings → Advance one month → confirm; the toast says what the month did."""
    page.goto(portal.url + "/settings")
    wait_until_connected(page)
    page.get_by_role("button", name="Advance one month").click()
    dialog = page.get_by_role("alertdialog", name="Advance one month?")
    expect(dialog).to_contain_text("Every license of the demo account moves a month into the past")
    dialog.get_by_role("button", name="Advance one month").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_text(told)).to_be_visible()


def license_row(portal: PortalServer, page: Page, name: str):  # noqa: ANN201
    page.goto(portal.url + "/licenses")
    wait_until_connected(page)
    return page.get_by_role("row").filter(has_text=name)


def bill_to_card_ending(portal: PortalServer, reference_name: str, last4: str) -> None:
    """Make a saved card the license's card, as the license's Manage page does (`license_changes.change_card`)."""
    engine = portal.engine()
    with session_scope(engine, write=False) as session:
        actor = actor_for_user(session, session.exec(select(User.id).where(User.email == DEMO_OWNER_EMAIL)).one())
        license_id = session.exec(select(License.id).where(License.account_id == actor.account_id,
                                                           License.reference_name == reference_name)).one()
        card_id = session.exec(select(PaymentMethod.id).where(PaymentMethod.account_id == actor.account_id,
                                                              PaymentMethod.last4 == last4)).one()
    license_changes.change_card(engine, SandboxProvider(engine), actor=actor, license_id=license_id,
                                payment_method_id=card_id, now=datetime.now(UTC))
    engine.dispose()


def test_advance_one_month_renews_then_a_declining_card_makes_the_license_past_due_then_suspended(
        fresh_demo: PortalServer, app_page: Page) -> None:
    portal, page = fresh_demo, app_page
    page.set_viewport_size(DESKTOP)

    # Buy a license with a good card.
    open_form(portal, page)
    add_card(page)
    page.get_by_label("License name").fill("Renewing team")
    page.get_by_label("Number of licenses").fill("2")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(url_of(portal, "/licenses"))
    expect(page.get_by_role("row").filter(has_text="Renewing team")).to_contain_text("Active")

    # A month later it has renewed: a second invoice on Billing, naming the license.
    advance_one_month(portal, page, told="A month has passed: 1 license renewed.")
    assert_accessible(page)  # Settings with the demo card and a toast
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    expect(page.get_by_role("row").filter(has_text="Renewing team")).to_have_count(2)

    # A card that saves but declines every charge, added on Billing and made the license's card.
    add_card(page, number="4000 0000 0000 0341")
    expect(page.get_by_text("Visa ending in 0341 added.")).to_be_visible()
    bill_to_card_ending(portal, "Renewing team", "0341")

    advance_one_month(portal, page, told="A month has passed: 1 license past due.")
    row = license_row(portal, page, "Renewing team")
    expect(row).to_contain_text("Past due")
    expect(page.get_by_role("alert").filter(has_text="A renewal payment failed")).to_be_visible()

    advance_one_month(portal, page, told="A month has passed: 1 license suspended.")
    expect(license_row(portal, page, "Renewing team")).to_contain_text("Suspended")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    expect(page.get_by_role("row").filter(has_text="Renewing team")).to_have_count(2)  # nothing more was charged

"""The Billing page in headless Chromium: removing a saved card, by labels and roles."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from pypdf import PdfReader
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import User
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services.actors import actor_for_user
from cf_portal.services.payment_methods import add_payment_method
from cf_portal.services.seed import DEMO_OWNER_EMAIL
from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    PortalServer,
    assert_accessible,
    assert_no_horizontal_scroll,
    wait_until_connected,
)
from tests.e2e.test_add_license import add_card, db_count
from tests.e2e.test_manage_license import buy

pytestmark = pytest.mark.e2e


def save_cards(portal: PortalServer) -> None:
    """The demo account's cards, saved as Add License saves them: a Visa (the default) and a Mastercard."""
    engine = portal.engine()
    provider = SandboxProvider(engine)
    with session_scope(engine, write=False) as session:
        owner_id = session.exec(select(User.id).where(User.email == DEMO_OWNER_EMAIL)).one()
        actor = actor_for_user(session, owner_id)
    today = datetime.now(UTC).date()
    for number, expiry in (("4242424242424242", "12/34"), ("5555555555554444", "11/33")):
        add_payment_method(engine, provider, actor=actor, number=number, expiry=expiry, cvc="123", today=today)
    engine.dispose()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_card_is_removed_after_a_confirmation_that_names_it(fresh_demo: PortalServer, app_page: Page,
                                                              viewport: dict) -> None:
    portal, page = fresh_demo, app_page
    save_cards(portal)
    page.set_viewport_size(viewport)
    page.goto(portal.url + "/billing")
    wait_until_connected(page)
    expect(page.get_by_text("Mastercard ending in 4444, expires 11/33")).to_be_visible()
    remove = page.get_by_role("button", name="Remove Mastercard ending in 4444, expires 11/33")
    at_provider = db_count(portal, "SELECT provider_id FROM payment_method WHERE last4 = '4444'")

    # Cancel keeps the card.
    remove.click()
    dialog = page.get_by_role("alertdialog", name="Remove Mastercard ending in 4444?")
    expect(dialog).to_contain_text("Our payment provider will no longer be able to charge it. No license is billed "
                                   "to it.")
    assert_accessible(page)
    if viewport is PHONE:
        assert_no_horizontal_scroll(page)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Mastercard ending in 4444, expires 11/33")).to_be_visible()
    assert_accessible(page)  # the cards with their buttons

    # Remove card takes it off the page, with a toast; the default card stays.
    remove.click()
    dialog.get_by_role("button", name="Remove card").click()
    expect(page.get_by_text("Mastercard ending in 4444 removed.")).to_be_visible()
    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Mastercard ending in 4444, expires 11/33")).to_have_count(0)
    expect(page.get_by_text("Visa ending in 4242, expires 12/34")).to_be_visible()
    assert db_count(portal, "SELECT count(*) FROM payment_method WHERE account_id = "
                            f"(SELECT account_id FROM \"user\" WHERE email = '{DEMO_OWNER_EMAIL}')") == 1
    # Detached at the provider too.
    assert db_count(portal, f"SELECT count(*) FROM sandbox_payment_method WHERE id = '{at_provider}' "
                            "AND customer_id IS NULL") == 1


def test_a_card_is_added_on_billing_with_the_add_license_dialog(fresh_demo: PortalServer, app_page: Page) -> None:
    """Billing offers the same add-card dialog as Add License (state/cards.py): the saved card joins the list."""
    portal, page = fresh_demo, app_page
    page.goto(portal.url + "/billing")
    wait_until_connected(page)
    expect(page.get_by_text("No payment method yet.")).to_be_visible()
    expect(page.get_by_text("Nothing paid in the last 12 months")).to_be_visible()  # the spend chart's empty state
    add_card(page, number="5555 5555 5555 4444", expiry="11 / 33")
    expect(page.get_by_text("Mastercard ending in 4444 added.")).to_be_visible()
    expect(page.get_by_text("Mastercard ending in 4444, expires 11/33")).to_be_visible()
    assert_accessible(page)


def test_an_invoice_downloads_as_a_pdf_and_the_spend_chart_reads_as_a_table(fresh_demo: PortalServer,
                                                                           app_page: Page) -> None:
    portal, page = fresh_demo, app_page
    license_id = buy(portal, "Helpdesk <i>team</i>", 3)
    with session_scope(engine := portal.engine(), write=False) as session:
        number, total, subtotal = session.execute(sa.text(
            "SELECT number, total, subtotal FROM invoice WHERE license_id = :id"), {"id": license_id}).one()
    engine.dispose()
    unit = subtotal // 3
    page.goto(portal.url + "/billing")
    wait_until_connected(page)
    paid = f"${total // 100:,}.{total % 100:02d}"
    this_month = datetime.now(UTC).strftime("%b %Y")
    spend = page.get_by_role("table", name="Monthly spend, last 12 months")
    expect(spend.get_by_role("row")).to_have_count(13)  # the header and 12 months
    expect(spend.get_by_role("row", name=this_month)).to_contain_text(paid)
    assert_accessible(page)

    with page.expect_download() as download_info:
        page.get_by_role("link", name=f"Download PDF of invoice {number}").click()
    download = download_info.value
    assert download.suggested_filename == f"invoice-{number}.pdf"
    with open(download.path(), "rb") as pdf:
        text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read())).pages).split())
    assert "Helpdesk <i>team</i>" in text and f"Invoice number: {number}" in text
    assert f"Total {paid} Paid {paid}" in text and f"${unit // 100:,}.{unit % 100:02d}" in text
    expect(page.get_by_role("heading", name="Invoices")).to_be_visible()  # the page stayed

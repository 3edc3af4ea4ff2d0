"""The Add License flow in headless Chromium, as a customer does it: by labels and roles."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    PortalServer,
    assert_accessible,
    assert_no_horizontal_scroll,
    choose,
    url_of,
    wait_for_animations,
    wait_until_connected,
)

pytestmark = pytest.mark.e2e


def open_form(portal: PortalServer, page: Page, viewport: dict = DESKTOP) -> None:
    page.set_viewport_size(viewport)
    page.goto(portal.url + "/licenses/new")
    wait_until_connected(page)
    expect(page.get_by_role("heading", name="Add License", level=1)).to_be_visible()
    expect(page.get_by_label("Plan")).not_to_have_value("")


def total(page: Page):  # noqa: ANN201
    return page.get_by_role("region", name="Price").locator("#total-due")


def add_card(page: Page, number: str = "4242 4242 4242 4242", expiry: str = "12 / 34", cvc: str = "123") -> None:
    page.get_by_role("button", name="Add payment method").click()
    dialog = page.get_by_role("dialog", name="Add payment method")
    dialog.get_by_label("Card number").fill(number)
    dialog.get_by_label("Expiry (MM / YY)").fill(expiry)
    dialog.get_by_label("CVC").fill(cvc)
    dialog.get_by_role("button", name="Save card").click()
    expect(dialog).to_be_hidden()


def db_count(portal: PortalServer, sql: str) -> int:
    engine = sa.create_engine(portal.env["REFLEX_DB_URL"].replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        value = conn.execute(sa.text(sql)).scalar_one()
    engine.dispose()
    return value


def test_whole_flow_prompt_card_coupon_create(fresh_demo: PortalServer, app_page: Page) -> None:
    portal, page = fresh_demo, app_page
    open_form(portal, page)
    # No payment method yet: the section says so and Create cannot succeed.
    expect(page.get_by_text("There is no payment method on your account yet")).to_be_visible()
    page.get_by_label("License name").fill("<script>alert('x')</script> Sales")
    page.get_by_label("Product").select_option(label="Phishing Simulator")
    page.get_by_label("Plan").select_option(label="Advanced — $24.00 per license / month")
    page.get_by_label("Number of licenses").fill("5")
    expect(total(page)).to_have_text("$120.00")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("Add a payment method to create licenses.")).to_be_visible()

    # A card that fails the Luhn check is refused next to its field; a good one is saved.
    page.get_by_role("button", name="Add payment method").click()
    dialog = page.get_by_role("dialog", name="Add payment method")
    dialog.get_by_label("Card number").fill("4242 4242 4242 4241")
    dialog.get_by_label("Expiry (MM / YY)").fill("12 / 34")
    dialog.get_by_label("CVC").fill("123")
    dialog.get_by_role("button", name="Save card").click()
    expect(dialog.get_by_text("This card number is not valid")).to_be_visible()
    expect(dialog.get_by_label("Card number")).to_have_value("4242 4242 4242 4241")  # kept as typed
    dialog.get_by_label("Card number").fill("4242 4242 4242 4242")
    dialog.get_by_role("button", name="Save card").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("radio", name=re.compile("Visa ending in 4242"))).to_be_checked()

    # Coupons validate while typing; an unknown one says why, a valid one changes the price.
    page.get_by_label("Coupon code").fill("nosuchcode")
    expect(page.get_by_text("This coupon code doesn't exist")).to_be_visible()
    expect(total(page)).to_have_text("$120.00")
    page.get_by_label("Coupon code").fill("  phish25 ")
    expect(page.get_by_text("25% off, forever")).to_be_visible()
    expect(total(page)).to_have_text("$90.00")

    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(url_of(portal, "/licenses"))
    expect(page.get_by_role("status").filter(has_text="is ready")).to_contain_text("0 of 5 assigned")
    row = page.get_by_role("row").filter(has_text="Sales")
    expect(row.get_by_role("rowheader")).to_have_text("<script>alert('x')</script> Sales")
    expect(row).to_contain_text("Phishing Simulator")
    expect(row).to_contain_text("$90.00")
    wait_for_animations(page)  # axe measures the toast's colours once it has faded in
    assert_accessible(page)  # the Licenses page with a license in it
    assert db_count(portal, "SELECT count(*) FROM invoice_line WHERE description LIKE '%Sales%'") == 1

    # The invoice names the license, as the help article promises; Billing shows it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    invoice = page.get_by_role("row").filter(has_text="Phishing Simulator Advanced × 5")
    expect(invoice).to_contain_text("<script>alert('x')</script> Sales")
    expect(invoice).to_contain_text("$90.00")
    expect(page.get_by_text("Visa ending in 4242, expires 12/34")).to_be_visible()
    assert_accessible(page)


def test_declined_card_keeps_the_form_and_buys_nothing(portal: PortalServer, app_page: Page) -> None:
    page = app_page
    licenses_before = db_count(portal, "SELECT count(*) FROM license")
    redemptions_before = db_count(portal, "SELECT count(*) FROM coupon_redemption")
    welcome20_before = db_count(portal, "SELECT times_redeemed FROM coupon WHERE code = 'WELCOME20'")
    open_form(portal, page)
    if page.get_by_role("radio", name=re.compile("ending in 0002")).count() == 0:  # the same card is saved once
        add_card(page, number="4000 0000 0000 0002")
    page.get_by_label("License name").fill("Declined team")
    page.get_by_label("Number of licenses").fill("3")
    page.get_by_label("Coupon code").fill("WELCOME20")
    expect(page.get_by_text("20% off, forever")).to_be_visible()
    choose(page.get_by_role("radio", name=re.compile("ending in 0002")))
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("alert").filter(has_text="Your card was declined")).not_to_have_count(0)
    expect(page.get_by_label("License name")).to_have_value("Declined team")
    expect(page.get_by_label("Number of licenses")).to_have_value("3")
    expect(page.get_by_label("Coupon code")).to_have_value("WELCOME20")
    assert db_count(portal, "SELECT count(*) FROM license") == licenses_before
    # The redemption taken for the purchase was given back (its row and the coupon's count).
    assert db_count(portal, "SELECT count(*) FROM coupon_redemption") == redemptions_before
    assert db_count(portal, "SELECT times_redeemed FROM coupon WHERE code = 'WELCOME20'") == welcome20_before


def test_double_click_on_create_buys_once(portal: PortalServer, app_page: Page) -> None:
    page = app_page
    open_form(portal, page)
    if page.get_by_text("There is no payment method on your account yet").is_visible():
        add_card(page)
    choose(page.get_by_role("radio", name=re.compile("Visa ending in 4242")))
    page.get_by_label("License name").fill("Double click team")
    page.get_by_label("Number of licenses").fill("2")
    expect(total(page)).to_have_text("$18.00")
    page.get_by_role("button", name="Create").dblclick()
    expect(page).to_have_url(url_of(portal, "/licenses"))
    expect(page.get_by_role("row").filter(has_text="Double click team")).to_have_count(1)
    assert db_count(portal, "SELECT count(*) FROM license WHERE reference_name = 'Double click team'") == 1
    assert db_count(portal, "SELECT count(*) FROM sandbox_subscription WHERE description = 'Double click team'") == 1


def test_bad_input_gets_messages_next_to_the_fields(portal: PortalServer, app_page: Page) -> None:
    page = app_page
    open_form(portal, page)
    page.get_by_label("Number of licenses").fill("abc")
    expect(page.get_by_text("Enter a whole number of licenses from 1 to 1,000.")).to_be_visible()
    expect(page.get_by_label("Number of licenses")).to_have_value("abc")
    expect(page.get_by_label("Number of licenses")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Number of licenses").fill("1001")
    expect(page.get_by_text("Enter a whole number of licenses from 1 to 1,000.")).to_be_visible()
    page.get_by_label("Number of licenses").fill("12")
    expect(page.get_by_text("Enter a whole number of licenses from 1 to 1,000.")).to_be_hidden()
    page.get_by_label("Coupon code").fill("TEAM10")
    expect(page.get_by_text("10% off, forever")).to_be_visible()
    page.get_by_label("Number of licenses").fill("9")  # changing the number re-checks the code
    expect(page.get_by_text("This coupon needs at least 10 licenses.")).to_be_visible()
    page.get_by_label("Coupon code").fill("EXPIRED25")
    expect(page.get_by_text("This coupon expired on")).to_be_visible()
    page.get_by_label("Coupon code").fill("LAUNCH50")
    expect(page.get_by_text("This coupon has been fully redeemed.")).to_be_visible()
    page.get_by_label("Coupon code").fill("")
    expect(page.get_by_text("This coupon has been fully redeemed.")).to_be_hidden()
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("Enter a name for this license")).to_be_visible()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_add_license_has_no_accessibility_violations(portal: PortalServer, app_page: Page, viewport: dict) -> None:
    open_form(portal, app_page, viewport)
    assert_accessible(app_page)


def test_checkout_on_a_phone(portal: PortalServer, app_page: Page) -> None:
    page = app_page
    open_form(portal, page, PHONE)
    assert_no_horizontal_scroll(page)
    controls = [page.get_by_label("License name"), page.get_by_label("Product"), page.get_by_label("Plan"),
                page.get_by_label("Number of licenses"), page.get_by_label("Coupon code"),
                page.get_by_role("button", name="Add payment method"), page.get_by_role("button", name="Create")]
    boxes = []
    for control in controls:
        box = control.bounding_box()
        # A text field's tap target is its whole frame (a tap on the frame focuses the input).
        height = control.evaluate("el => (el.closest('.rt-TextFieldRoot') || el).getBoundingClientRect().height")
        assert height >= 44, f"tap target too small: {control} is {height}px"
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        boxes.append(box)
    for above, below in zip(boxes, boxes[1:]):
        assert below["y"] >= above["y"] + above["height"] - 1, "the form is not one column"
    page.get_by_label("Coupon code").fill("SPRING15")
    expect(page.get_by_text("15% off for 3 months")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Then \$9\.00 / month after the discount ends"))).to_be_visible()
    assert_no_horizontal_scroll(page)

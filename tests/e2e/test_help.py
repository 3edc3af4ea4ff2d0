"""The Help panels in headless Chromium: opened with the keyboard, read, answered; the operator's report shows the
answer."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    PortalServer,
    assert_accessible,
    assert_no_horizontal_scroll,
    wait_until_connected,
)

pytestmark = pytest.mark.e2e


def test_help_on_add_license_is_read_and_answered(portal: PortalServer, app_page: Page) -> None:
    page = app_page
    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/licenses/new")
    wait_until_connected(page)
    # The field hints are read with their fields.
    name = page.get_by_label("License name")
    hint = page.locator(f"#{name.get_attribute('aria-describedby').split()[0]}")
    expect(hint).to_have_text("For your own reference, like a team or a person: shown in your licenses list and on "
                              "invoices.")
    expect(page.get_by_label("Coupon code")).to_have_attribute("aria-describedby", "coupon_code-status coupon_code-hint")

    # Opened from the keyboard; focus goes into the panel and Escape brings it back to the button.
    button = page.get_by_role("button", name="Help", exact=True)
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_have_attribute("aria-haspopup", "dialog")
    # While the panel is open the page behind it is hidden from the accessibility tree: find the button by its
    # relation to the panel instead.
    trigger = page.locator("button[aria-controls]", has_text="Help")
    button.focus()
    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog", name="Help: Add License")
    expect(panel).to_be_visible()
    expect(trigger).to_have_attribute("aria-expanded", "true")
    expect(panel).to_have_attribute("id", trigger.get_attribute("aria-controls"))
    assert panel.evaluate("(el) => el.contains(document.activeElement)")
    expect(panel.get_by_text("Create: charges the first month and adds the license to your account.")).to_be_visible()
    assert_accessible(page)
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(button).to_be_focused()

    # Answered: No, with a comment.
    button.click()
    panel.get_by_text("No", exact=True).click()
    panel.get_by_label("Comment (optional)").fill("Which card is charged each month?")
    panel.get_by_role("button", name="Send feedback").click()
    expect(page.get_by_text("Thanks for your feedback")).to_be_visible()
    expect(panel.get_by_label("Comment (optional)")).to_have_value("")  # the form is cleared once sent
    assert_accessible(page)

    report = portal.cli("help-feedback")
    assert "'Which card is charged each month?'" in report
    counts = {line.split()[0]: line.split()[1:] for line in report.splitlines()[2:5]}
    assert counts["add_license"][1] != "0"


@pytest.mark.parametrize(("path", "title"), [("/licenses", "Help: Licenses"), ("/employees", "Help: Employees")])
def test_help_on_a_phone_takes_the_screen_and_closes(portal: PortalServer, app_page: Page, path: str,
                                                     title: str) -> None:
    page = app_page
    page.set_viewport_size(PHONE)
    page.goto(portal.url + path)
    wait_until_connected(page)
    button = page.get_by_role("button", name="Help", exact=True)
    assert button.bounding_box()["height"] >= 44
    button.click()
    panel = page.get_by_role("dialog", name=title)
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box["width"] <= PHONE["width"] and box["x"] >= 0
    assert_no_horizontal_scroll(page)
    assert_accessible(page)
    panel.get_by_role("button", name="Close help").click()
    expect(panel).to_be_hidden()
    expect(button).to_be_focused()
    assert_accessible(page)

"""The Licenses page in real headless Chromium, on a desktop and a phone, as a person uses it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    PortalServer,
    assert_accessible,
    assert_no_horizontal_scroll,
    url_of,
    wait_until_connected,
)
from tests.e2e.test_manage_license import buy

pytestmark = pytest.mark.e2e


def test_root_leads_to_licenses_with_its_empty_state(fresh_demo: PortalServer, app_page: Page) -> None:
    app_page.set_viewport_size(DESKTOP)
    portal = fresh_demo
    app_page.goto(portal.url + "/")
    expect(app_page).to_have_url(url_of(portal, "/licenses"))
    wait_until_connected(app_page)
    expect(app_page.get_by_role("heading", name="Licenses", level=1)).to_be_visible()
    expect(app_page.get_by_role("heading", name="No licenses yet")).to_be_visible()
    nav = app_page.get_by_role("navigation", name="Main")
    for label in ("Licenses", "Employees", "Billing"):
        expect(nav.get_by_role("link", name=label)).to_be_visible()
    expect(nav.get_by_role("link", name="Licenses")).to_have_attribute("aria-current", "page")


def test_add_license_button_opens_the_add_license_screen(portal: PortalServer, app_page: Page) -> None:
    app_page.set_viewport_size(DESKTOP)
    app_page.goto(portal.url + "/licenses")
    wait_until_connected(app_page)
    app_page.get_by_role("link", name="Add License").first.click()
    expect(app_page).to_have_url(url_of(portal, "/licenses/new"))
    expect(app_page.get_by_role("heading", name="Add License", level=1)).to_be_visible()


def test_phone_has_a_menu_and_no_sideways_scrolling(portal: PortalServer, app_page: Page) -> None:
    app_page.set_viewport_size(PHONE)
    app_page.goto(portal.url + "/licenses")
    wait_until_connected(app_page)
    expect(app_page.get_by_role("heading", name="Licenses", level=1)).to_be_visible()
    add = app_page.get_by_role("link", name="Add License").first
    expect(add).to_be_visible()
    assert add.bounding_box()["height"] >= 40
    assert_no_horizontal_scroll(app_page)
    # The sidebar is replaced by a menu.
    expect(app_page.get_by_role("navigation", name="Main")).to_be_hidden()
    app_page.get_by_role("button", name="Open menu").click()
    app_page.get_by_role("menuitem", name="Employees").click()
    expect(app_page).to_have_url(url_of(portal, "/employees"))
    expect(app_page.get_by_role("heading", name="Employees", level=1)).to_be_visible()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_licenses_page_has_no_accessibility_violations(fresh_demo: PortalServer, app_page: Page,
                                                       viewport: dict) -> None:
    portal = fresh_demo
    app_page.set_viewport_size(viewport)
    app_page.goto(portal.url + "/licenses")
    wait_until_connected(app_page)
    expect(app_page.get_by_role("heading", name="No licenses yet")).to_be_visible()
    assert_accessible(app_page)

    # With a license: the seat chart, and its table for screen readers (axe checks both).
    buy(portal, "Sales <b>team</b>", 5, assigned=2)
    app_page.reload()
    wait_until_connected(app_page)
    seats = app_page.get_by_role("list", name="Seat use per license")
    expect(seats.get_by_role("listitem")).to_have_text(["Sales <b>team</b>: 2 assigned, 3 available, of 5 seats"])
    expect(app_page.locator(".recharts-bar-rectangle").first).to_be_visible()  # the chart drew its bars
    assert_accessible(app_page)
    if viewport is PHONE:
        assert_no_horizontal_scroll(app_page)

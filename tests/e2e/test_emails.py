"""Email in the browser (no mail server: demo mode delivers to the Sent emails log): an invitation appears in
Sent emails with its link, shown in a sandboxed frame and as text; the Contact us page, reached from the menu,
keeps field errors next to what was typed and sends."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import DESKTOP, PortalServer, url_of, wait_until_connected

pytestmark = pytest.mark.e2e


def test_an_invitation_shows_in_sent_emails_with_its_link(fresh_demo: PortalServer, app_page: Page) -> None:
    portal, page = fresh_demo, app_page
    email = f"mail-{uuid.uuid4().hex[:8]}@example.com"
    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/members")
    wait_until_connected(page)
    page.get_by_role("button", name="Invite member").click()
    dialog = page.get_by_role("dialog", name="Invite a member")
    dialog.get_by_label("Email").fill(email)
    dialog.get_by_role("button", name="Send invitation").click()
    expect(dialog.get_by_text("We emailed the invitation to")).to_be_visible()
    link = dialog.get_by_label("Invitation link").input_value()
    dialog.get_by_role("button", name="Done").click()
    portal.cli("deliver-emails")  # the app's own worker would within 5 s; the test need not wait

    page.goto(portal.url + "/settings/emails")
    row = page.get_by_role("row").filter(has_text=email)
    expect(row).to_contain_text("invited you to Acme Security Ltd")
    expect(row).to_contain_text("Sent")
    row.get_by_role("button", name=re.compile("^View the email")).click()
    viewer = page.get_by_role("dialog")
    frame = viewer.locator("iframe[title='The email as formatted']")
    expect(frame).to_have_attribute("sandbox", "")
    # The same token; the address is the configured one (CF_PUBLIC_URL, else this machine), never the browser's
    # Host header (which whoever sends the request chooses).
    emailed = re.compile(r"^http://localhost:\d+" + re.escape(link[link.index("/invitation?token="):]) + "$")
    expect(page.frame_locator("iframe[title='The email as formatted']").get_by_role(
        "link", name="Accept the invitation")).to_have_attribute("href", emailed)
    viewer.get_by_role("tab", name="Plain text").click()
    expect(viewer.get_by_label("The email as plain text")).to_contain_text(link[link.index("/invitation?token="):])


def test_contact_us_from_the_menu_sends_a_message(portal: PortalServer, app_page: Page) -> None:
    page = app_page
    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/licenses")
    wait_until_connected(page)
    page.get_by_role("link", name="Contact us").click()
    expect(page).to_have_url(url_of(portal, "/contact?from=/licenses"))
    expect(page.get_by_role("heading", name="Contact us", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="support@chatfortress.com")).to_have_attribute(
        "href", "mailto:support@chatfortress.com")
    page.get_by_label("Message").fill("Where do I assign seats?")
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_label("Subject")).to_have_accessible_description("Enter a subject.")
    expect(page.get_by_label("Message")).to_have_value("Where do I assign seats?")  # kept
    page.get_by_label("Subject").fill("Seats")
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_text("Message sent. We will answer by email.")).to_be_visible()
    expect(page.get_by_label("Subject")).to_have_value("")

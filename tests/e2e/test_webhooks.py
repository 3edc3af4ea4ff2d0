"""Settings → Webhooks in headless Chromium, against the running app and a real HTTP receiver on 127.0.0.1 (demo
mode allows http to loopback): the owner adds an endpoint and copies its secret from the read-only input, a seat
is assigned, the app's own worker delivers the event (no separate command), the receiver checks the CF-Signature
with that secret, the log says Delivered, Resend delivers again; rolling the secret, pausing and deleting; a
viewer is told it is for owners. Axe on desktop and on a 390 px phone."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

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
from tests.e2e.test_employees import buy
from tests.e2e.test_idle_seats import give_seats
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_the_app_delivers_signed_events_to_an_endpoint_added_in_the_ui(fresh_demo: PortalServer, app_page: Page,
                                                                      receiver: Receiver) -> None:
    portal, page = fresh_demo, app_page
    url = receiver.url("e2e")  # the receiver checks what comes to /hooks/e2e with the secret it is given
    buy(portal, "Pilot", 3)
    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/settings/webhooks")
    wait_until_connected(page)
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="No endpoints yet")).to_be_visible()
    assert_accessible(page)

    # Add the endpoint: a wrong address first (the message next to the field, what was typed kept).
    page.get_by_role("button", name="Add endpoint").click()
    dialog = page.get_by_role("dialog", name="Add endpoint")
    url_field = dialog.get_by_label("Endpoint URL")
    url_field.fill("ftp://example.com/hooks")
    for kind in ("seat.assigned", "seat.unassigned", "seat.moved", "license.suspended", "license.canceled"):
        expect(dialog.get_by_role("checkbox", name=kind)).to_be_checked()
    dialog.get_by_role("button", name="Add endpoint").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Enter the full address of your endpoint")
    expect(url_field).to_have_value("ftp://example.com/hooks")
    assert_accessible(page)
    url_field.fill(url)
    dialog.get_by_label("Description (optional)").fill("Provisioning")
    dialog.get_by_role("button", name="Add endpoint").dblclick()  # a double click adds one endpoint

    secret_field = dialog.get_by_label("Signing secret")
    expect(secret_field).to_have_value(re.compile(r"^whsec_[0-9a-f]{64}$"))
    expect(secret_field).to_have_attribute("readonly", "")
    expect(dialog).to_contain_text("it will not be shown again")
    secret = secret_field.input_value()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=portal.url)
    dialog.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Secret copied.")).to_be_visible()
    copied = ""
    for _ in range(20):  # the copy is asynchronous
        copied = page.evaluate("navigator.clipboard.readText()")
        if copied:
            break
        time.sleep(0.1)
    assert copied == secret
    receiver.secrets["/hooks/e2e"] = secret
    assert_accessible(page)
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    endpoints = page.get_by_role("list", name="Endpoints")
    expect(endpoints.get_by_role("listitem")).to_have_count(1)
    endpoint = endpoints.get_by_role("listitem").first
    expect(endpoint).to_contain_text(url)
    expect(endpoint).to_contain_text("Enabled")
    expect(endpoint).to_contain_text("Provisioning")

    # A seat assigned: the app's own worker delivers it, signed with the secret the dialog showed.
    give_seats(portal, "Pilot", ["Ava Thompson"])
    [first] = receiver.wait_for(1)
    event = first["event"]
    assert event["type"] == "seat.assigned" and event["data"]["holder"]["name"] == "Ava Thompson"
    assert event["data"]["license"]["reference"] == "Pilot"

    # The delivery log says Delivered; Resend sends the same event again.
    page.get_by_role("button", name=f"Delivery log of {url}").click()
    log = page.get_by_role("list", name="Events, newest first")
    entry = log.get_by_role("listitem").filter(has_text=event["id"])
    expect(entry).to_contain_text("seat.assigned")
    expect(entry).to_contain_text("Delivered")
    expect(entry).to_contain_text("Attempts: 1")
    expect(entry).to_contain_text("HTTP 200")
    assert_accessible(page)
    entry.get_by_role("button", name=f"Resend {event['id']}").click()
    expect(page.get_by_text("Queued again: it is sent within a few seconds.")).to_be_visible()
    second = receiver.wait_for(2)[1]
    assert second["event"]["id"] == event["id"]  # the same event: receivers deduplicate by its id
    for _ in range(20):  # the log is refreshed on demand
        page.get_by_role("button", name="Refresh").click()
        if "Delivered" in (entry.text_content() or ""):
            break
        time.sleep(0.5)
    expect(entry).to_contain_text("Delivered")
    entry.get_by_role("button", name=f"Attempts of {event['id']}").click()
    attempts = page.get_by_role("dialog", name="Attempts")
    expect(attempts.get_by_role("row")).to_have_count(3)  # the header and the two deliveries
    assert_accessible(page)
    attempts.get_by_role("button", name="Close").click()
    expect(attempts).to_be_hidden()

    # On a phone: no sideways scrolling, and still clean for axe.
    page.set_viewport_size(PHONE)
    expect(entry.get_by_role("button", name=f"Resend {event['id']}")).to_be_visible()
    assert_no_horizontal_scroll(page)
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)

    # Roll the secret: the new one is shown once, and signs the next delivery.
    page.get_by_role("button", name=f"Roll the secret of {url}").click()
    roll = page.get_by_role("alertdialog", name="Roll the signing secret?")
    expect(roll).to_contain_text("the old one stops working at once")
    assert_accessible(page)
    roll.get_by_role("button", name="Roll secret").click()
    rolled = page.get_by_role("alertdialog", name="New signing secret").get_by_label("Signing secret")
    expect(rolled).to_have_value(re.compile(r"^whsec_"))
    new_secret = rolled.input_value()
    assert new_secret != secret
    assert_accessible(page)
    page.get_by_role("alertdialog", name="New signing secret").get_by_role("button", name="Done").click()
    receiver.secrets["/hooks/e2e"] = new_secret
    give_seats(portal, "Pilot", ["Noah Kim"])
    third = receiver.wait_for(3)[2]
    assert third["event"]["data"]["holder"]["name"] == "Noah Kim"
    assert receiver.refused == 0  # every delivery verified with the secret the page showed

    # Pause, resume, then delete (confirmed).
    endpoint.get_by_role("button", name=f"Pause {url}").click()
    expect(endpoint).to_contain_text("Paused")
    endpoint.get_by_role("button", name=f"Resume {url}").click()
    expect(endpoint).to_contain_text("Enabled")
    endpoint.get_by_role("button", name=f"Delete {url}").click()
    confirm = page.get_by_role("alertdialog", name="Delete this endpoint?")
    confirm.get_by_role("button", name="Delete").click()
    expect(page.get_by_text(f"Endpoint {url} deleted, with its delivery log.")).to_be_visible()
    expect(page.get_by_role("heading", name="No endpoints yet")).to_be_visible()
    expect(log).to_have_count(0)


def test_a_viewer_is_told_webhooks_are_for_owners(fresh_demo: PortalServer, anon_page: Page) -> None:
    portal, page = fresh_demo, anon_page
    portal.sign_in(page, "auditor@acme-security.example")
    page.set_viewport_size(PHONE)
    page.goto(portal.url + "/settings")
    wait_until_connected(page)
    assert_accessible(page)  # its Integrations card
    page.get_by_role("link", name="Webhooks").click()
    expect(page).to_have_url(url_of(portal, "/settings/webhooks"))
    expect(page.get_by_text("Only owners can manage webhooks.")).to_be_visible()
    expect(page.get_by_role("button", name="Add endpoint")).to_have_count(0)
    assert_no_horizontal_scroll(page)
    assert_accessible(page)

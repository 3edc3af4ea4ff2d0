"""Settings → Webhooks in headless Chromium, against the running app and a real HTTP receiver on 127.0.0.1 (demo
mode allows http to loopback): the owner adds an endpoint and copies its secret from the read-only input, a seat
is assigned, the app's own worker delivers the event (no separate command), the receiver checks the CF-Signature
with that secret, the log says Delivered, Resend delivers again; rolling the secret, pausing and deleting; a
viewer is told it is for owners. Axe on desktop and on a 390 px phone."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from cf_portal.services.webhooks import verify_signature
from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    PortalServer,
    assert_no_horizontal_scroll,
    wait_for_animations,
    wait_until_connected,
)
from tests.e2e.test_employees import buy
from tests.e2e.test_idle_seats import give_seats

pytestmark = pytest.mark.e2e


class Receiver:
    """A real HTTP server on 127.0.0.1 that keeps every POST (its headers and body) and answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/cf-hooks"

    def wait_for(self, count: int, timeout_s: float = 45) -> list[tuple[dict[str, str], bytes]]:
        """The deliveries once there are `count` (the app's worker passes every few seconds)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.2)
        raise AssertionError(f"{len(self.received)} deliveries within {timeout_s} s, expected {count}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()
    server.server.server_close()


def axe_clean(page: Page) -> None:
    wait_for_animations(page)
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def signed_by(secret: str, delivery: tuple[dict[str, str], bytes]) -> dict:
    headers, body = delivery
    assert verify_signature(secret, headers["CF-Signature"], body), "the signature does not verify"
    return json.loads(body)


def test_the_app_delivers_signed_events_to_an_endpoint_added_in_the_ui(fresh_demo: PortalServer, app_page: Page,
                                                                      receiver: Receiver) -> None:
    portal, page = fresh_demo, app_page
    buy(portal, "Pilot", 3)
    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/settings/webhooks")
    wait_until_connected(page)
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="No endpoints yet")).to_be_visible()
    axe_clean(page)

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
    axe_clean(page)
    url_field.fill(receiver.url)
    dialog.get_by_label("Description (optional)").fill("Provisioning")
    dialog.get_by_role("button", name="Add endpoint").dblclick()  # a double click adds one endpoint

    secret_field = dialog.get_by_label("Signing secret")
    expect(secret_field).to_have_value(re.compile(r"^whsec_[0-9a-f]{64}$"))
    expect(secret_field).to_have_attribute("readonly", "")
    expect(dialog).to_contain_text("it will not be shown again")
    expect(dialog.get_by_role("button", name="Copy")).to_be_visible()
    secret = secret_field.input_value()
    axe_clean(page)
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    endpoints = page.get_by_role("list", name="Endpoints")
    expect(endpoints.get_by_role("listitem")).to_have_count(1)
    endpoint = endpoints.get_by_role("listitem").first
    expect(endpoint).to_contain_text(receiver.url)
    expect(endpoint).to_contain_text("Enabled")
    expect(endpoint).to_contain_text("Provisioning")

    # A seat assigned: the app's own worker delivers it, signed with the secret the dialog showed.
    give_seats(portal, "Pilot", ["Ava Thompson"])
    [first] = receiver.wait_for(1)
    event = signed_by(secret, first)
    assert event["type"] == "seat.assigned" and event["data"]["holder"]["name"] == "Ava Thompson"
    assert event["data"]["license"]["reference"] == "Pilot"

    # The delivery log says Delivered; Resend sends the same event again.
    page.get_by_role("button", name=f"Delivery log of {receiver.url}").click()
    log = page.get_by_role("list", name="Events, newest first")
    entry = log.get_by_role("listitem").filter(has_text=event["id"])
    expect(entry).to_contain_text("seat.assigned")
    expect(entry).to_contain_text("Delivered")
    expect(entry).to_contain_text("Attempts: 1")
    expect(entry).to_contain_text("HTTP 200")
    axe_clean(page)
    entry.get_by_role("button", name=f"Resend {event['id']}").click()
    expect(page.get_by_text("Queued again: it is sent within a few seconds.")).to_be_visible()
    second = receiver.wait_for(2)[1]
    assert signed_by(secret, second)["id"] == event["id"]  # the same event: receivers deduplicate by its id
    for _ in range(20):  # the log is refreshed on demand
        page.get_by_role("button", name="Refresh").click()
        if "Delivered" in (entry.text_content() or ""):
            break
        time.sleep(0.5)
    expect(entry).to_contain_text("Delivered")
    entry.get_by_role("button", name=f"Attempts of {event['id']}").click()
    attempts = page.get_by_role("dialog", name="Attempts")
    expect(attempts.get_by_role("row")).to_have_count(3)  # the header and the two deliveries
    axe_clean(page)
    attempts.get_by_role("button", name="Close").click()
    expect(attempts).to_be_hidden()

    # On a phone: no sideways scrolling, and still clean for axe.
    page.set_viewport_size(PHONE)
    expect(entry.get_by_role("button", name=f"Resend {event['id']}")).to_be_visible()
    assert_no_horizontal_scroll(page)
    axe_clean(page)
    page.set_viewport_size(DESKTOP)

    # Roll the secret: the new one is shown once, and signs the next delivery.
    page.get_by_role("button", name=f"Roll the secret of {receiver.url}").click()
    roll = page.get_by_role("alertdialog", name="Roll the signing secret?")
    expect(roll).to_contain_text("the old one stops working at once")
    axe_clean(page)
    roll.get_by_role("button", name="Roll secret").click()
    rolled = page.get_by_role("alertdialog", name="New signing secret").get_by_label("Signing secret")
    expect(rolled).to_have_value(re.compile(r"^whsec_"))
    new_secret = rolled.input_value()
    assert new_secret != secret
    axe_clean(page)
    page.get_by_role("alertdialog", name="New signing secret").get_by_role("button", name="Done").click()
    give_seats(portal, "Pilot", ["Noah Kim"])
    third = receiver.wait_for(3)[2]
    assert signed_by(new_secret, third)["data"]["holder"]["name"] == "Noah Kim"
    assert not verify_signature(secret, third[0]["CF-Signature"], third[1])

    # Pause, resume, then delete (confirmed).
    endpoint.get_by_role("button", name=f"Pause {receiver.url}").click()
    expect(endpoint).to_contain_text("Paused")
    endpoint.get_by_role("button", name=f"Resume {receiver.url}").click()
    expect(endpoint).to_contain_text("Enabled")
    endpoint.get_by_role("button", name=f"Delete {receiver.url}").click()
    confirm = page.get_by_role("alertdialog", name="Delete this endpoint?")
    confirm.get_by_role("button", name="Delete").click()
    expect(page.get_by_text(f"Endpoint {receiver.url} deleted, with its delivery log.")).to_be_visible()
    expect(page.get_by_role("heading", name="No endpoints yet")).to_be_visible()
    expect(log).to_have_count(0)


def test_a_viewer_is_told_webhooks_are_for_owners(fresh_demo: PortalServer, anon_page: Page) -> None:
    portal, page = fresh_demo, anon_page
    portal.sign_in(page, "auditor@acme-security.example")
    page.set_viewport_size(PHONE)
    page.goto(portal.url + "/settings/webhooks")
    wait_until_connected(page)
    expect(page.get_by_text("Only owners can manage webhooks.")).to_be_visible()
    expect(page.get_by_role("button", name="Add endpoint")).to_have_count(0)
    assert_no_horizontal_scroll(page)
    axe_clean(page)

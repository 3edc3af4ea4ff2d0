"""Settings → API keys and API documentation in headless Chromium: an owner makes a key (shown once), a product
calls the running API with it, the owner revokes it and the API refuses it at once; the documentation's examples
name this portal; other members read why they cannot manage keys."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect
from sqlmodel import select

from cf_portal.db import make_engine, session_scope
from cf_portal.models import ApiKey, Employee
from cf_portal.services.seed import demo_account
from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    PortalServer,
    assert_accessible,
    assert_no_horizontal_scroll,
    wait_until_connected,
)
from tests.e2e.test_employees import buy
from tests.e2e.test_idle_seats import give_seats

pytestmark = pytest.mark.e2e

VIEWER_EMAIL = "auditor@acme-security.example"


def fits_a_phone(page: Page, shown: Locator) -> None:
    """At 390 px: `shown` still visible, no sideways scrolling, no axe violation."""
    page.set_viewport_size(PHONE)
    expect(shown).to_be_visible()
    assert_no_horizontal_scroll(page)
    assert_accessible(page)


def toast(page: Page, text: str) -> Locator:
    return page.locator("[data-sonner-toast]").filter(has_text=text)


def demo_email(portal: PortalServer, name: str) -> str:
    engine = make_engine(portal.env["REFLEX_DB_URL"])
    with session_scope(engine, write=False) as session:
        account_id = demo_account(session).id
        email = session.exec(select(Employee.email).where(Employee.account_id == account_id,
                                                          Employee.name == name)).one()
    engine.dispose()
    return email


def demo_keys(portal: PortalServer) -> int:
    engine = make_engine(portal.env["REFLEX_DB_URL"])
    with session_scope(engine, write=False) as session:
        count = len(session.exec(select(ApiKey.id).where(ApiKey.account_id == demo_account(session).id)).all())
    engine.dispose()
    return count


def check(portal: PortalServer, key: str, email: str) -> httpx.Response:
    return httpx.get(f"{portal.url}/api/v1/entitlements/check", params={"product": "phishing", "email": email},
                     headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_an_owner_creates_a_key_the_api_takes_then_revokes_it(fresh_demo: PortalServer, app_page: Page) -> None:
    portal, page = fresh_demo, app_page
    buy(portal, "Security team", 2)  # Phishing Simulator Standard
    give_seats(portal, "Security team", ["Ava Thompson"])
    ava = demo_email(portal, "Ava Thompson")
    before = demo_keys(portal)

    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/settings/api-keys")
    wait_until_connected(page)
    expect(page.get_by_role("heading", name="API keys", level=1)).to_be_visible()
    expect(page.get_by_text("50 requests a second per key, in bursts of up to 100")).to_be_visible()
    if before == 0:
        expect(page.get_by_role("heading", name="No API keys yet")).to_be_visible()
    assert_accessible(page)

    # A name is needed; what was typed stays, and markup is only text.
    page.get_by_role("button", name="Create API key").click()
    dialog = page.get_by_role("dialog", name="Create API key")
    name = dialog.get_by_label("Name", exact=True)
    name.fill("   ")
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("Name the key after what will use it")
    expect(name).to_have_value("   ")
    expect(name).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)

    # A double click makes one key, shown once in a read-only field.
    name.fill("Phishing <script>Simulator</script>")
    dialog.get_by_role("button", name="Create", exact=True).dblclick()
    made = page.get_by_role("dialog", name="API key created")
    expect(made).to_contain_text("Copy it now: it will not be shown again")
    field = made.get_by_label("Your new API key")
    expect(field).to_have_value(re.compile(r"^cfk_demo_[A-Za-z0-9_-]{43}$"))
    expect(field).to_have_attribute("readonly", "")
    key = field.input_value()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=portal.url)
    made.get_by_role("button", name="Copy").click()
    expect(toast(page, "API key copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key
    assert_accessible(page)
    assert demo_keys(portal) == before + 1

    # A product calls the running API with it.
    answer = check(portal, key, ava)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["entitled"] is True and answer.json()["holder"]["name"] == "Ava Thompson"

    made.get_by_role("button", name="Done").click()
    expect(made).to_be_hidden()
    card = page.get_by_role("list", name="API keys").get_by_role("listitem").filter(
        has_text="Phishing <script>Simulator</script>")
    expect(card).to_contain_text(key[:15] + "…")
    expect(card).to_contain_text("Active")
    assert key not in page.content()  # shown once: gone with its dialog
    assert key not in portal.log_path.read_text()
    page.reload()
    wait_until_connected(page)
    expect(card.get_by_text("Never")).to_have_count(0)  # the call above was recorded as its last use

    # Revoked: refused at once.
    card.get_by_role("button", name="Revoke Phishing <script>Simulator</script>").click()
    confirm = page.get_by_role("alertdialog", name="Revoke Phishing <script>Simulator</script>?")
    expect(confirm).to_contain_text("refused from now on")
    assert_accessible(page)
    confirm.get_by_role("button", name="Revoke key").click()
    expect(toast(page, "was revoked: the API refuses it from now on.")).to_be_visible()
    expect(card).to_contain_text(re.compile(r"Revoked on \d+ \w+ \d{4}"))
    expect(card.get_by_role("button")).to_have_count(0)
    refused = check(portal, key, ava)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    assert_accessible(page)

    fits_a_phone(page, card)


def test_the_documentation_shows_this_portals_examples(portal: PortalServer, app_page: Page) -> None:
    page = app_page
    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/settings")
    wait_until_connected(page)
    integrations = page.get_by_role("list").filter(has=page.get_by_role("link", name="API documentation"))
    expect(integrations.get_by_role("link")).to_have_text(["API keys", "Webhooks", "API documentation"])
    integrations.get_by_role("link", name="API documentation").click()
    expect(page.get_by_role("heading", name="API documentation", level=1)).to_be_visible()

    curl = page.get_by_role("region", name="curl examples")
    expect(curl).to_contain_text(f'curl -s "{portal.url}/api/v1/entitlements/check?product=phishing')
    expect(curl).to_contain_text(f"{portal.url}/api/v1/products/phishing/holders")
    expect(page.get_by_role("region", name="Python (httpx) example")).to_contain_text(
        f'base_url="{portal.url}/api/v1"')
    codes = page.get_by_role("table").get_by_role("rowheader")
    expect(codes).to_have_text(["awareness", "phishing", "darkweb"])
    expect(page.get_by_role("region", name="Python webhook receiver")).to_contain_text("def verify_cf_signature(")
    for kind in ("seat.assigned", "seat.unassigned", "seat.moved", "license.suspended", "license.canceled"):
        expect(page.get_by_text(kind, exact=True)).to_be_visible()
    expect(page.get_by_text("Retry-After", exact=False).first).to_be_visible()
    assert_accessible(page)

    fits_a_phone(page, curl)


def test_a_viewer_is_told_only_owners_manage_keys(portal: PortalServer, anon_page: Page) -> None:
    page = anon_page
    portal.sign_in(page, VIEWER_EMAIL)
    page.set_viewport_size(PHONE)
    page.goto(portal.url + "/settings/api-keys")
    wait_until_connected(page)
    expect(page.get_by_text("Only owners can manage API keys.")).to_be_visible()
    expect(page.get_by_role("button", name="Create API key")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("API documentation"))).to_be_visible()
    assert_no_horizontal_scroll(page)
    assert_accessible(page)

"""Accounts in headless Chromium: sign-up, sign-in (remember me, wrong password, throttling, deep links),
sign-out, invitations, what a viewer cannot do (even with crafted events), and two accounts that never see
each other's data.

Failed sign-ins count per email and per client; every e2e test signs in from 127.0.0.1, which is slowed down
after 10 failures in 15 minutes, so this whole file fails at most 7 sign-ins (1, and 3 to 6 while throttled)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Locator, Page, WebSocket, expect
from reflex.utils.format import format_event_handler
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.middleware import SESSION_COOKIE
from cf_portal.models import Employee, Plan, User
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services import auth
from cf_portal.services.actors import actor_for_user
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.services.seed import DEMO_ACCOUNT_NAME, DEMO_OWNER_EMAIL
from cf_portal.state.add_license import AddLicenseState
from cf_portal.state.employees import AssignState, EmployeesState
from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    PortalServer,
    assert_accessible,
    assert_no_horizontal_scroll,
    saved_visa,
    url_of,
    wait_until_connected,
)

pytestmark = pytest.mark.e2e

VIEWER_EMAIL = "auditor@acme-security.example"
PASSWORD = "violet harbour lantern 42"
WRONG_PASSWORD = "not the password at all"
SEATS_REFUSAL = "Only owners and license admins can change employees and seats."
BUY_REFUSAL = "Only owners and billing admins can buy licenses."
WRONG_CREDENTIALS = "The email or password is not right."
THROTTLED = re.compile(r"Too many failed sign-ins\. Wait (\d+) seconds? and try again\.")


# --- helpers --------------------------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def db_value(portal: PortalServer, sql: str, **params: object) -> int:
    engine = portal.engine()
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()
    finally:
        engine.dispose()


def user_exists(portal: PortalServer, email: str) -> bool:
    engine = portal.engine()
    with session_scope(engine, write=False) as session:
        found = session.exec(select(User.id).where(User.email == email)).first() is not None
    engine.dispose()
    return found


def open_seats(portal: PortalServer) -> int:
    return db_value(portal, "SELECT count(*) FROM seat_assignment WHERE unassigned_at IS NULL")


def create_account(portal: PortalServer, *, company: str, name: str, email: str) -> None:
    """An account with an owner who has a password (as signing up makes it; the sign-up page has its own test)."""
    engine = portal.engine()
    auth.sign_up(engine, company=company, name=name, email=email, password=PASSWORD, client="",
                 now=datetime.now(UTC))
    engine.dispose()


def add_card(portal: PortalServer, owner_email: str) -> int:
    """A sandbox Visa on the account of `owner_email`; returns its id."""
    engine = portal.engine()
    with session_scope(engine, write=False) as session:
        actor = actor_for_user(session, session.exec(select(User).where(User.email == owner_email)).one().id)
    card_id = saved_visa(engine, actor)
    engine.dispose()
    return card_id


def buy(portal: PortalServer, owner_email: str, name: str, quantity: int) -> int:
    """Buy a Phishing Simulator Standard license for the account of `owner_email`; returns its id."""
    card_id = add_card(portal, owner_email)
    engine = portal.engine()
    with session_scope(engine, write=False) as session:
        actor = actor_for_user(session, session.exec(select(User).where(User.email == owner_email)).one().id)
        plan = session.exec(select(Plan).where(Plan.code == "phishing-standard")).one()
    request = PurchaseRequest(reference_name=name, plan_id=plan.id, quantity=quantity, payment_method_id=card_id,
                              expected_total=plan.unit_amount * quantity, idempotency_key=uuid.uuid4().hex)
    result = create_license(engine, SandboxProvider(engine), actor=actor, now=datetime.now(UTC), request=request)
    engine.dispose()
    return result.license_id


def employee_key(portal: PortalServer, email: str, *, owner_email: str = DEMO_OWNER_EMAIL) -> str:
    """The grid's key of the employee `email` in the account of `owner_email` (visitors' copies of the demo
    account have employees with the same addresses)."""
    engine = portal.engine()
    with session_scope(engine, write=False) as session:
        account = select(User.account_id).where(User.email == owner_email).scalar_subquery()
        employee_id = session.exec(select(Employee.id).where(Employee.email == email,
                                                             Employee.account_id == account)).one()
    engine.dispose()
    return f"employee:{employee_id}"


def watch_console(page: Page, errors: list[str]) -> None:
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))


@pytest.fixture
def new_browser(browser: Browser, browser_context_args: dict, portal: PortalServer) -> Iterator[Callable[[], Page]]:
    """Opens a page in another browser (its own cookies and storage), checked for console errors like
    `anon_page` (which checks the app's log for every test of this file)."""
    contexts, errors = [], []

    def open_page() -> Page:
        context = browser.new_context(**{**browser_context_args, "viewport": DESKTOP})
        contexts.append(context)
        page = context.new_page()
        watch_console(page, errors)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert errors == [], f"browser console errors in the other browser: {errors}"


def wait_until_hydrated(page: Page) -> None:
    """React has taken over the page (the form submits through the app, not as a plain HTML form)."""
    page.wait_for_function("() => window.__reflex !== undefined")


def open_sign_in(portal: PortalServer, page: Page, path: str = "/signin") -> None:
    page.goto(portal.url + path)
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    # The demo button appears once the page's load event has answered: the page is live.
    expect(page.get_by_role("button", name="Try the demo")).to_be_visible()


def fill_sign_in(page: Page, email: str, password: str, *, remember: bool = False) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    if remember:
        page.get_by_label("Remember me for 30 days").check()


def submit_and_read_alert(page: Page, button: str = "Sign in") -> Locator:
    """Press `button` and return the form's message from this attempt (a message from an earlier attempt
    with the same words is marked first, so it is not mistaken for the new one)."""
    for stale in page.get_by_role("alert").all():
        stale.evaluate("element => element.setAttribute('data-stale', '')")
    page.get_by_role("button", name=button, exact=True).click()
    fresh = page.locator("[role=alert]:not([data-stale])")
    expect(fresh).to_be_visible()
    return fresh


def sign_up(portal: PortalServer, page: Page, *, company: str, name: str, email: str) -> None:
    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/signup")
    expect(page.get_by_role("heading", name="Create your account", level=1)).to_be_visible()
    wait_until_hydrated(page)
    page.get_by_label("Company name").fill(company)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(url_of(portal, "/licenses"))
    expect(page.get_by_role("heading", name="No licenses yet")).to_be_visible()


def sign_in_to(portal: PortalServer, path: str) -> re.Pattern[str]:
    """The sign-in page's URL that returns to `path` afterwards (the server may add a trailing slash)."""
    return re.compile(re.escape(f"{portal.url}/signin?next={quote(path, safe='')}") + "(%2F)?$")


def sidebar(page: Page) -> Locator:
    """The desktop sidebar: the account's name, the main navigation, who is signed in."""
    return page.get_by_role("banner").filter(has=page.get_by_role("navigation", name="Main"))


def go_to(page: Page, label: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=label).click()
    expect(page.get_by_role("heading", name=label, level=1)).to_be_visible()


def send_event(page: Page, state: type, handler: str, **payload: object) -> None:
    """Queue an event as if the page had sent it, whether or not the page offers it (a crafted request)."""
    name = format_event_handler(state.event_handlers[handler])
    page.evaluate(
        """([name, payload]) => {
            const reflex = window.__reflex;
            reflex["$/utils/context-registry"].eventLoop.addEvents(
                [reflex["$/utils/state"].ReflexEvent(name, payload)]);
        }""",
        [name, payload],
    )


def send_and_wait_for_reply(page: Page, socket: WebSocket, state: type, handler: str, **payload: object) -> str:
    """`send_event`, then wait for the server's answer to it (for events whose effect the page does not show)."""
    with socket.expect_event("framereceived", predicate=lambda frame: str(frame).startswith("42")) as reply:
        send_event(page, state, handler, **payload)
    return str(reply.value)


def toast(page: Page, text: str) -> Locator:
    return page.locator("[data-sonner-toast]").filter(has_text=text)


# --- signing up -------------------------------------------------------------------------------------------------


def test_sign_up_starts_an_account_of_ones_own(portal: PortalServer, anon_page: Page) -> None:
    page = anon_page
    company, email = unique("Northwind Tests"), f"{unique('dana')}@northwind.example"
    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/signin")
    page.get_by_role("link", name="Create an account").click()
    expect(page).to_have_url(url_of(portal, "/signup"))
    expect(page.get_by_role("heading", name="Create your account", level=1)).to_be_visible()
    wait_until_hydrated(page)
    page.get_by_label("Company name").fill(company)
    page.get_by_label("Your name").fill("Dana Ortiz")
    page.get_by_label("Work email").fill(email)

    # A common password is refused next to its field; what was typed stays.
    password = page.get_by_label("Password", exact=True)
    password.fill("password123")
    page.get_by_role("button", name="Create account").click()
    expect(password).to_have_accessible_description(re.compile("This password is too easy to guess"))
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Company name")).to_have_value(company)
    expect(page.get_by_label("Work email")).to_have_value(email)
    assert not user_exists(portal, email)

    password.fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(url_of(portal, "/licenses"))
    expect(page.get_by_role("heading", name="No licenses yet")).to_be_visible()
    expect(sidebar(page)).to_contain_text(company)
    expect(sidebar(page)).to_contain_text("Dana Ortiz")
    expect(sidebar(page)).to_contain_text("Owner")

    # None of the demo account is there.
    expect(page.get_by_text(DEMO_ACCOUNT_NAME)).to_have_count(0)
    go_to(page, "Employees")
    expect(page.get_by_role("heading", name="Nobody matches")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Details of"))).to_have_count(0)
    go_to(page, "Members")
    members = page.get_by_role("table", name="Members")
    expect(members.get_by_role("row")).to_have_count(2)  # the header and the new owner
    expect(members).to_contain_text("Dana Ortiz")
    expect(members).to_contain_text(email)
    expect(members).not_to_contain_text("Alex Morgan")


# --- signing in -------------------------------------------------------------------------------------------------


def test_sign_in_with_remember_me_keeps_a_30_day_cookie(portal: PortalServer, anon_page: Page,
                                                       new_browser: Callable[[], Page]) -> None:
    page = anon_page
    company, email = unique("Remembered Ltd"), f"{unique('rita')}@remembered.example"
    create_account(portal, company=company, name="Rita Remembered", email=email)
    page.set_viewport_size(DESKTOP)
    open_sign_in(portal, page)
    fill_sign_in(page, email, PASSWORD, remember=True)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(url_of(portal, "/licenses"))
    expect(sidebar(page)).to_contain_text(company)

    cookies = {c["name"]: c for c in page.context.cookies()}
    remembered = cookies.get(SESSION_COOKIE)
    assert remembered is not None and remembered["value"], f"no {SESSION_COOKIE} cookie: {list(cookies)}"
    days = (remembered["expires"] - time.time()) / 86400
    assert 29 < days <= 30.01, f"the remembered session cookie lasts {days:.2f} days"
    assert remembered["httpOnly"] and remembered["sameSite"] == "Strict", remembered

    # A browser restarted later has only the lasting cookies, and is still signed in.
    later = new_browser()
    later.context.add_cookies([c for c in page.context.cookies() if c["expires"] > 0])
    later.goto(portal.url + "/employees")
    expect(later.get_by_role("heading", name="Employees", level=1)).to_be_visible()
    expect(sidebar(later)).to_contain_text(company)
    expect(later).to_have_url(url_of(portal, "/employees"))


def test_wrong_password_says_so_and_keeps_the_email(portal: PortalServer, anon_page: Page) -> None:
    page = anon_page
    email = f"{unique('wendy')}@wrong.example"
    create_account(portal, company=unique("Wrong Password Ltd"), name="Wendy Wrong", email=email)
    page.set_viewport_size(DESKTOP)
    open_sign_in(portal, page)
    fill_sign_in(page, email, WRONG_PASSWORD)
    alert = submit_and_read_alert(page)
    expect(alert).to_have_text(WRONG_CREDENTIALS)
    expect(page.get_by_label("Email")).to_have_value(email)
    expect(page).to_have_url(url_of(portal, "/signin"))
    assert SESSION_COOKIE not in {c["name"] for c in page.context.cookies() if c["value"]}


def test_repeated_failures_slow_down_signing_in(portal: PortalServer, anon_page: Page) -> None:
    page = anon_page
    company, email = unique("Throttled Ltd"), f"{unique('theo')}@throttled.example"
    create_account(portal, company=company, name="Theo Throttled", email=email)
    page.set_viewport_size(DESKTOP)
    open_sign_in(portal, page)
    fill_sign_in(page, email, WRONG_PASSWORD)
    for _ in range(3):  # free failures
        expect(submit_and_read_alert(page)).to_have_text(WRONG_CREDENTIALS)

    # The next try within the wait (1 s, doubling per failure) is refused before the password is checked.
    # A slow machine may miss the first wait; it then counts one more failure and has a longer wait.
    for _ in range(3):
        alert = submit_and_read_alert(page)
        if THROTTLED.search(alert.inner_text()):
            break
        expect(alert).to_have_text(WRONG_CREDENTIALS)
    expect(alert).to_have_text(THROTTLED)
    expect(page.get_by_label("Email")).to_have_value(email)
    expect(page).to_have_url(url_of(portal, "/signin"))

    # After waiting as asked, the right password signs in.
    time.sleep(int(THROTTLED.search(alert.inner_text()).group(1)))
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(url_of(portal, "/licenses"))
    expect(sidebar(page)).to_contain_text(company)


def test_deep_link_returns_to_its_page_after_signing_in(portal: PortalServer, anon_page: Page,
                                                      new_browser: Callable[[], Page]) -> None:
    page = anon_page
    company, email = unique("Deep Link Ltd"), f"{unique('dora')}@deeplink.example"
    create_account(portal, company=company, name="Dora Deeplink", email=email)
    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/employees")
    expect(page).to_have_url(sign_in_to(portal, "/employees"))
    expect(page.get_by_role("button", name="Try the demo")).to_be_visible()
    fill_sign_in(page, email, PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(url_of(portal, "/employees"))
    expect(page.get_by_role("heading", name="Employees", level=1)).to_be_visible()
    expect(sidebar(page)).to_contain_text(company)

    # Without "Remember me" the session ends with the browser: its cookie has no expiry.
    session_cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert session_cookie["value"] and session_cookie["expires"] == -1, session_cookie
    later = new_browser()
    later.context.add_cookies([c for c in page.context.cookies() if c["expires"] > 0])
    later.goto(portal.url + "/licenses")
    expect(later).to_have_url(sign_in_to(portal, "/licenses"))


def test_try_the_demo_then_sign_out(portal: PortalServer, anon_page: Page,
                                    new_browser: Callable[[], Page]) -> None:
    page = anon_page
    page.set_viewport_size(DESKTOP)
    open_sign_in(portal, page)
    page.get_by_role("button", name="Try the demo").click()
    expect(page).to_have_url(url_of(portal, "/licenses"))
    wait_until_connected(page)
    expect(sidebar(page)).to_contain_text(DEMO_ACCOUNT_NAME)
    expect(sidebar(page)).to_contain_text("Alex Morgan")
    expect(sidebar(page)).to_contain_text("Owner")
    token = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)

    sidebar(page).get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(url_of(portal, "/signin"))
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    page.goto(portal.url + "/licenses")
    expect(page).to_have_url(sign_in_to(portal, "/licenses"))
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()

    # The server ended that session: the old cookie, wherever it was copied, no longer signs anybody in.
    copied = new_browser()
    copied.context.add_cookies([token])
    copied.goto(portal.url + "/licenses")
    expect(copied).to_have_url(sign_in_to(portal, "/licenses"))


# --- invitations ------------------------------------------------------------------------------------------------


def test_invitation_accepted_in_another_browser(fresh_demo: PortalServer, app_page: Page,
                                                new_browser: Callable[[], Page]) -> None:
    portal, owner = fresh_demo, app_page
    email = f"{unique('lena')}@acme-security.example"
    owner.set_viewport_size(DESKTOP)
    owner.goto(portal.url + "/members")
    wait_until_connected(owner)
    owner.get_by_role("button", name="Invite member").click()
    dialog = owner.get_by_role("dialog", name="Invite a member")
    dialog.get_by_label("Email").fill(email)
    dialog.get_by_label("Role").select_option(label="License admin")
    dialog.get_by_role("button", name="Send invitation").click()
    link_field = dialog.get_by_label("Invitation link")
    expect(link_field).to_have_value(re.compile(re.escape(portal.url) + r"/invitation\?token=\S+$"))
    expect(link_field).to_have_attribute("readonly", "")
    expect(dialog.get_by_role("button", name="Copy link")).to_be_visible()
    link = link_field.input_value()
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    expect(owner.get_by_role("button", name=f"Withdraw the invitation for {email}")).to_be_visible()

    invitee = new_browser()
    invitee.goto(link)
    expect(invitee.get_by_role("heading", name="Join your team", level=1)).to_be_visible()
    expect(invitee.get_by_text(f"You are invited to {DEMO_ACCOUNT_NAME} as License admin.")).to_be_visible()
    expect(invitee.get_by_text(email)).to_be_visible()
    invitee.get_by_label("Your name").fill("Lena Invited")
    invitee.get_by_label("Password", exact=True).fill(PASSWORD)
    invitee.get_by_label("Confirm password").fill(PASSWORD + "!")
    invitee.get_by_role("button", name="Accept invitation").click()
    expect(invitee.get_by_label("Confirm password")).to_have_accessible_description(
        "The two passwords are not the same.")
    invitee.get_by_label("Confirm password").fill(PASSWORD)
    invitee.get_by_role("button", name="Accept invitation").click()
    expect(invitee).to_have_url(url_of(portal, "/licenses"))
    wait_until_connected(invitee)
    expect(sidebar(invitee)).to_contain_text("Lena Invited")
    expect(sidebar(invitee)).to_contain_text("License admin")
    # The role's rights: seats yes, buying no.
    expect(invitee.get_by_role("heading", name="No licenses yet")).to_be_visible()
    expect(invitee.get_by_role("link", name="Add License")).to_have_count(0)
    go_to(invitee, "Employees")
    expect(invitee.get_by_role("button", name="Add employee")).to_be_visible()

    # The link worked once.
    invitee.goto(link)
    expect(invitee.get_by_text("This invitation has already been used. Sign in instead.")).to_be_visible()
    expect(invitee.get_by_role("button", name="Accept invitation")).to_have_count(0)

    # The owner sees the new member with the role, and the invitation is no longer pending.
    owner.reload()
    expect(owner.get_by_label("Role of Lena Invited")).to_have_value("license_admin")
    expect(owner.get_by_role("button", name=f"Withdraw the invitation for {email}")).to_have_count(0)

    # And the new member can sign in with the password they chose.
    again = new_browser()
    open_sign_in(portal, again)
    fill_sign_in(again, email, PASSWORD)
    again.get_by_role("button", name="Sign in", exact=True).click()
    expect(again).to_have_url(url_of(portal, "/licenses"))
    expect(sidebar(again)).to_contain_text("Lena Invited")


# --- a viewer ---------------------------------------------------------------------------------------------------


def open_employees(portal: PortalServer, page: Page) -> None:
    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + "/employees")
    wait_until_connected(page)
    expect(page.get_by_text("1–25 of 27")).to_be_visible()


def test_viewer_cannot_assign_seats_even_with_crafted_events(fresh_demo: PortalServer, app_page: Page,
                                                            new_browser: Callable[[], Page]) -> None:
    portal, owner = fresh_demo, app_page
    license_id = buy(portal, DEMO_OWNER_EMAIL, "Phishing pilot", 3)
    ava = employee_key(portal, "ava.thompson@acme-security.example")
    liam = employee_key(portal, "liam.patel@acme-security.example")

    # The crafted events reach the server: from the owner, they assign a seat.
    open_employees(portal, owner)
    send_event(owner, AssignState, "open_for", keys=[ava])
    send_event(owner, AssignState, "set_license", value=str(license_id))
    send_event(owner, AssignState, "assign")
    expect(toast(owner, "License assigned to 1 person.")).to_be_visible()
    assert open_seats(portal) == 1

    viewer = new_browser()
    portal.sign_in(viewer, VIEWER_EMAIL)
    viewer.goto(portal.url + "/licenses")
    expect(sidebar(viewer)).to_contain_text("Viewer")
    expect(viewer.get_by_role("row").filter(has_text="Phishing pilot")).to_contain_text("1 of 3 assigned")
    expect(viewer.get_by_role("link", name="Add License")).to_have_count(0)
    expect(viewer.get_by_role("link", name="Assign Phishing pilot in Employees")).to_have_count(0)

    open_employees(portal, viewer)
    expect(viewer.get_by_role("button", name="Details of Ava Thompson")).to_be_visible()
    expect(viewer.get_by_role("button", name=re.compile("^Assign"))).to_have_count(0)
    expect(viewer.get_by_role("button", name="Add employee")).to_have_count(0)
    expect(viewer.get_by_role("button", name="Import CSV")).to_have_count(0)

    # The same crafted events from the viewer are refused by the server.
    send_event(viewer, AssignState, "open_for", keys=[liam])
    expect(toast(viewer, SEATS_REFUSAL)).to_be_visible()
    expect(viewer.get_by_role("dialog", name="Assign a license")).to_have_count(0)
    send_event(viewer, AssignState, "set_license", value=str(license_id))
    send_event(viewer, AssignState, "set_open", is_open=True)  # only shows the dialog
    dialog = viewer.get_by_role("dialog", name="Assign a license")
    dialog.get_by_role("button", name="Assign").click()
    expect(dialog.get_by_role("alert")).to_have_text(SEATS_REFUSAL)
    assert open_seats(portal) == 1


def test_viewer_cannot_buy_even_with_crafted_events(fresh_demo: PortalServer, app_page: Page,
                                                    new_browser: Callable[[], Page]) -> None:
    portal, owner = fresh_demo, app_page
    card_id = add_card(portal, DEMO_OWNER_EMAIL)
    engine = portal.engine()
    with session_scope(engine, write=False) as session:
        plan = session.exec(select(Plan).where(Plan.code == "awareness-business")).one()
    engine.dispose()
    licenses = "SELECT count(*) FROM license"
    licenses_before = db_value(portal, licenses)

    # The crafted events reach the server: from the owner, Create buys a license.
    owner.set_viewport_size(DESKTOP)
    owner.goto(portal.url + "/licenses/new")
    wait_until_connected(owner)
    expect(owner.get_by_label("Plan")).not_to_have_value("")
    expect(owner.get_by_role("radio", name=re.compile("Visa ending in 4242"))).to_be_checked()
    send_event(owner, AddLicenseState, "set_reference_name", value="Crafted by the owner")
    expect(owner.get_by_label("License name")).to_have_value("Crafted by the owner")
    send_event(owner, AddLicenseState, "create")
    expect(owner).to_have_url(url_of(portal, "/licenses"))
    expect(owner.get_by_role("row").filter(has_text="Crafted by the owner")).to_be_visible()
    assert db_value(portal, licenses) == licenses_before + 1

    viewer = new_browser()
    portal.sign_in(viewer, VIEWER_EMAIL)
    with viewer.expect_websocket() as connecting:
        viewer.goto(portal.url + "/licenses/new")
    socket = connecting.value
    wait_until_connected(viewer)
    expect(viewer.get_by_text("Your role (Viewer) cannot buy licenses.")).to_be_visible()
    expect(viewer.get_by_role("button", name="Create")).to_have_count(0)
    expect(viewer.get_by_label("License name")).to_have_count(0)

    replies = {handler: send_and_wait_for_reply(viewer, socket, AddLicenseState, handler, **payload)
               for handler, payload in [("set_reference_name", {"value": "Crafted by the viewer"}),
                                        ("set_product", {"value": str(plan.product_id)}),
                                        ("set_plan", {"value": str(plan.id)}),
                                        ("set_quantity", {"value": "2"}),
                                        ("set_payment_method", {"value": str(card_id)})]}
    assert BUY_REFUSAL in replies["set_plan"], replies["set_plan"]  # not even the price, for a viewer
    reply = send_and_wait_for_reply(viewer, socket, AddLicenseState, "create")
    assert BUY_REFUSAL in reply or "Check the highlighted fields." in reply, reply
    assert db_value(portal, licenses) == licenses_before + 1
    expect(viewer).to_have_url(url_of(portal, "/licenses/new"))
    expect(viewer.get_by_text("Your role (Viewer) cannot buy licenses.")).to_be_visible()


def test_member_whose_role_is_lowered_is_refused_at_the_next_click(fresh_demo: PortalServer, app_page: Page,
                                                                   new_browser: Callable[[], Page]) -> None:
    """The buttons a page shows decide nothing: the server checks the role again on every click."""
    portal, owner = fresh_demo, app_page
    buy(portal, DEMO_OWNER_EMAIL, "Phishing pilot", 3)
    seats_before, licenses_before = open_seats(portal), db_value(portal, "SELECT count(*) FROM license")

    # A license admin opens the Assign dialog, a billing admin fills in Add License...
    tom = new_browser()
    portal.sign_in(tom, "it-admin@acme-security.example")
    open_employees(portal, tom)
    tom.get_by_role("button", name="Assign a license to Ava Thompson").click()
    assign = tom.get_by_role("dialog", name="Assign a license")
    expect(assign.get_by_label("License")).to_contain_text("Phishing pilot")
    priya = new_browser()
    portal.sign_in(priya, "billing@acme-security.example")
    priya.goto(portal.url + "/licenses/new")
    wait_until_connected(priya)
    expect(priya.get_by_role("radio", name=re.compile("Visa ending in 4242"))).to_be_checked()
    priya.get_by_label("License name").fill("Bought after all")
    expect(priya.get_by_role("region", name="Price").locator("#total-due")).not_to_have_text("")

    # ...and meanwhile the owner makes both of them viewers.
    owner.set_viewport_size(DESKTOP)
    owner.goto(portal.url + "/members")
    wait_until_connected(owner)
    for name in ("Tom Becker", "Priya Shah"):
        owner.get_by_label(f"Role of {name}").select_option(label="Viewer")
        expect(toast(owner, f"{name} is now viewer.")).to_be_visible()

    assign.get_by_role("button", name="Assign").click()
    expect(assign.get_by_role("alert")).to_have_text(SEATS_REFUSAL)
    priya.get_by_role("button", name="Create").click()
    expect(toast(priya, BUY_REFUSAL)).to_be_visible()
    expect(priya).to_have_url(url_of(portal, "/licenses/new"))
    assert open_seats(portal) == seats_before
    assert db_value(portal, "SELECT count(*) FROM license") == licenses_before
    portal.cli("reset-demo")  # the seeded roles again, for the tests that follow


# --- two accounts -----------------------------------------------------------------------------------------------


def add_employee(page: Page, name: str, email: str) -> None:
    page.get_by_role("button", name="Add employee").click()
    dialog = page.get_by_role("dialog", name="Add employee")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_label("Email").fill(email)
    dialog.get_by_label("Department").fill("Research")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name=f"Details of {name}")).to_be_visible()


def test_two_accounts_never_see_each_others_data(portal: PortalServer, anon_page: Page,
                                                 new_browser: Callable[[], Page]) -> None:
    alpha, bravo = anon_page, new_browser()
    alpha_company, bravo_company = unique("Alpha Isolation"), unique("Bravo Isolation")
    alpha_email, bravo_email = f"{unique('ann')}@alpha.example", f"{unique('ben')}@bravo.example"
    sign_up(portal, alpha, company=alpha_company, name="Ann Alpha", email=alpha_email)
    sign_up(portal, bravo, company=bravo_company, name="Ben Bravo", email=bravo_email)
    expect(sidebar(alpha)).to_contain_text(alpha_company)
    expect(sidebar(alpha)).not_to_contain_text(bravo_company)
    expect(sidebar(bravo)).to_contain_text(bravo_company)
    expect(sidebar(bravo)).not_to_contain_text(alpha_company)

    quinn_email = f"{unique('quinn')}@alpha.example"
    go_to(alpha, "Employees")
    add_employee(alpha, "Quinn Isolated", quinn_email)
    go_to(bravo, "Employees")
    add_employee(bravo, "Bea Bravo", f"{unique('bea')}@bravo.example")
    alpha_license = buy(portal, alpha_email, "Alpha only", 2)
    buy(portal, bravo_email, "Bravo only", 2)

    # Bravo's pages show nothing of Alpha's, and the other way round.
    bravo.get_by_label("Search").fill("Quinn")
    expect(bravo.get_by_role("heading", name="Nobody matches")).to_be_visible()
    bravo.get_by_label("Search").fill("")
    expect(bravo.get_by_role("button", name="Details of Bea Bravo")).to_be_visible()
    expect(bravo.get_by_role("button", name=re.compile("^Details of"))).to_have_count(1)
    alpha.reload()
    expect(alpha.get_by_role("button", name="Details of Quinn Isolated")).to_be_visible()
    expect(alpha.get_by_role("button", name=re.compile("^Details of"))).to_have_count(1)
    go_to(bravo, "Licenses")
    expect(bravo.get_by_role("row").filter(has_text="Bravo only")).to_be_visible()
    expect(bravo.get_by_text("Alpha only")).to_have_count(0)
    go_to(alpha, "Licenses")
    expect(alpha.get_by_role("row").filter(has_text="Alpha only")).to_be_visible()
    expect(alpha.get_by_text("Bravo only")).to_have_count(0)
    go_to(bravo, "Members")
    expect(bravo.get_by_role("table", name="Members")).not_to_contain_text("Ann Alpha")

    # Not even crafted events with Alpha's ids reach Alpha's data from Bravo's browser.
    quinn = employee_key(portal, quinn_email, owner_email=alpha_email)
    go_to(bravo, "Employees")
    expect(bravo.get_by_role("button", name="Details of Bea Bravo")).to_be_visible()
    send_event(bravo, EmployeesState, "open_details", key=quinn)
    expect(toast(bravo, "That employee was not found.")).to_be_visible()
    expect(bravo.get_by_role("dialog", name="Quinn Isolated")).to_have_count(0)
    send_event(bravo, AssignState, "open_for", keys=[quinn])  # with Bravo's own license
    dialog = bravo.get_by_role("dialog", name="Assign a license")
    dialog.get_by_role("button", name="Assign").click()
    expect(dialog.get_by_role("alert")).to_have_text(re.compile("was not found"))
    dialog.get_by_role("button", name="Cancel").click()
    bravo.get_by_role("button", name="Assign a license to Bea Bravo").click()  # with Alpha's license
    send_event(bravo, AssignState, "set_license", value=str(alpha_license))
    dialog.get_by_role("button", name="Assign").click()
    expect(dialog.get_by_role("alert")).to_have_text(re.compile("was not found"))
    assert db_value(portal, "SELECT count(*) FROM seat_assignment WHERE license_id = :id", id=alpha_license) == 0
    assert db_value(portal, "SELECT count(*) FROM seat_assignment s JOIN employee e ON e.id = s.employee_id "
                            "WHERE e.email = :email", email=quinn_email) == 0


# --- accessibility ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("path", ["/signin", "/signup"])
def test_sign_in_and_sign_up_have_no_accessibility_violations(portal: PortalServer, anon_page: Page, path: str,
                                                              viewport: dict) -> None:
    page = anon_page
    page.set_viewport_size(viewport)
    page.goto(portal.url + path)
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in" if path == "/signin" else
                                                             "Create your account")
    wait_until_hydrated(page)
    if path == "/signin":
        expect(page.get_by_role("button", name="Try the demo")).to_be_visible()
    assert_no_horizontal_scroll(page)
    assert_accessible(page)

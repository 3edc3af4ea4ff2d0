"""Accessibility (issue 15), beyond the axe checks the other end-to-end tests make on each page and dialog:
Lighthouse's accessibility audit on every page, the whole checkout with the keyboard alone, the price announced
through a polite live region, target sizes, and focus never hidden under the sticky header or behind a dialog.
The accessibility statement (/accessibility) says that these run: keep the two in step.

Run in the SQLite pass only: nothing here depends on the database."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlmodel import select

from cf_portal import routes
from cf_portal.db import session_scope
from cf_portal.middleware import SESSION_COOKIE
from cf_portal.models import User
from cf_portal.services import members
from cf_portal.services.actors import actor_for_user
from cf_portal.services.seed import DEMO_OWNER_EMAIL
from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    PortalServer,
    saved_visa,
    url_of,
    wait_for_animations,
    wait_until_connected,
)
from tests.e2e.test_add_license import db_count
from tests.e2e.test_manage_license import buy, owner
from tests.support.lighthouse import missing as lighthouse_missing
from tests.support.lighthouse import run_lighthouse

pytestmark = [pytest.mark.e2e, pytest.mark.only_on("sqlite")]  # once: no database involved

SIGNED_IN_PAGES = (routes.LICENSES, routes.ADD_LICENSE, routes.EMPLOYEES, routes.BILLING, routes.MEMBERS,
                   routes.ACCOUNT_SETTINGS, routes.API_KEYS, routes.API_DOCS, routes.WEBHOOKS, routes.SENT_EMAILS,
                   routes.CONTACT)


# What an accessibility audit does not need (a third less time per page): the full-page screenshot, and the
# about:blank load Lighthouse makes before the page. Its waits for the page to settle stay as they are, so the
# signed-in pages are audited with their data loaded.
DOM_ONLY = ("--disable-full-page-screenshot", "--skip-about-blank")


def invitation_path(portal: PortalServer) -> str:
    """The invitation page of a fresh invitation (its form, not its "link not valid" message)."""
    engine = portal.engine()
    with session_scope(engine) as session:
        actor = actor_for_user(session, session.exec(select(User.id).where(User.email == DEMO_OWNER_EMAIL)).one())
        link = members.invite(session, actor=actor, email="lighthouse@acme-security.example", role="viewer",
                              base_url=portal.url, now=datetime.now(UTC)).link
    engine.dispose()
    return link.removeprefix(portal.url)


def test_lighthouse_accessibility_scores_100_on_every_page(portal: PortalServer, tmp_path: Path) -> None:
    """Lighthouse 12's accessibility category (its mobile profile), every page: the public ones, and the
    signed-in ones with the demo owner's session cookie (the page as the member sees it, data loaded)."""
    if reason := lighthouse_missing():
        pytest.fail(reason)
    manage = f"{routes.MANAGE_LICENSE}?id={buy(portal, 'Lighthouse team', 2)}"
    cookie = {"Cookie": f"{SESSION_COOKIE}={portal.session_token(DEMO_OWNER_EMAIL)}"}
    pages = [(path, None) for path in (routes.SIGN_IN, routes.SIGN_UP, invitation_path(portal),
                                       routes.ACCESSIBILITY)]
    pages += [(path, cookie) for path in (*SIGNED_IN_PAGES, manage)]
    below_100 = {}
    for number, (path, headers) in enumerate(pages):
        report = run_lighthouse(portal.url + path, tmp_path / f"report-{number}.json", categories=("accessibility",),
                                headers=headers, extra_args=DOM_ONLY)
        assert report["finalDisplayedUrl"].startswith(portal.url + path.split("?")[0]), (path, report["finalDisplayedUrl"])
        category = report["categories"]["accessibility"]
        if category["score"] != 1:
            below_100[path] = (category["score"], [ref["id"] for ref in category["auditRefs"]
                                                   if report["audits"][ref["id"]]["score"] == 0])
    assert below_100 == {}, f"Lighthouse accessibility below 100 (score, failed audits): {below_100}"


# --- the whole checkout with the keyboard alone ---------------------------------------------------------------

def is_focused(control: Locator) -> bool:
    return control.evaluate("el => el === document.activeElement")


def tab_to(page: Page, control: Locator, *, backwards: bool = False, limit: int = 40) -> None:
    """Press Tab (or Shift+Tab) until `control` has the focus; fails if it never gets it (unreachable)."""
    for _ in range(limit):
        if is_focused(control):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"{control} cannot be reached with {'Shift+Tab' if backwards else 'Tab'}")


def arrow_to(page: Page, select: Locator, label: str, *, limit: int = 10) -> None:
    """In a focused native <select>, press the down (or up) arrow until the option `label` is chosen. Each press
    sends the choice to the server; until its answer arrives, another field's answer may draw the select with the
    choice before (it is the state's value), so each press waits for the select to settle and the next one goes
    whichever way the target still is."""
    where = "el => [el.selectedIndex, [...el.options].findIndex(o => o.text === %r)]" % label
    for _ in range(limit):
        page.wait_for_timeout(300)  # settled: the server's answer to the last press is drawn
        current, target = select.evaluate(where)
        if target < 0:
            break
        if current == target:
            return
        page.keyboard.press("ArrowDown" if current < target else "ArrowUp")
    raise AssertionError(f"the arrow keys never chose {label!r} in {select}")


def test_the_whole_checkout_with_the_keyboard_alone(fresh_demo: PortalServer, app_page: Page) -> None:
    """From the Licenses page to a new license: Tab, Shift+Tab, Enter, Space, the arrow keys and typing; no
    click. On the way, the price panel's total is a polite live region that follows the coupon, and focus stays
    inside the add-card dialog while it is open."""
    portal, page = fresh_demo, app_page
    saved_visa(portal.engine(), owner(portal))  # one saved card; a second one is added through the dialog
    page.set_viewport_size(DESKTOP)
    page.goto(portal.url + routes.LICENSES)
    wait_until_connected(page)
    add_license = page.get_by_role("link", name="Add License").first
    tab_to(page, add_license)
    page.keyboard.press("Enter")
    expect(page).to_have_url(url_of(portal, routes.ADD_LICENSE))
    expect(page.get_by_label("Plan")).not_to_have_value("")

    name = page.get_by_label("License name")
    tab_to(page, name)
    page.keyboard.type("Keyboard team")
    page.keyboard.press("Tab")
    product = page.get_by_label("Product")
    assert is_focused(product)
    arrow_to(page, product, "Phishing Simulator")
    page.keyboard.press("Tab")
    plan = page.get_by_label("Plan")
    assert is_focused(plan)
    arrow_to(page, plan, "Advanced — $24.00 per license / month")
    page.keyboard.press("Tab")
    quantity = page.get_by_label("Number of licenses")
    assert is_focused(quantity)
    page.keyboard.press("Backspace")
    page.keyboard.type("5")

    total = page.locator("#total-due")
    announcer = total.locator("xpath=ancestor::*[@aria-live][1]")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(announcer).to_have_attribute("aria-atomic", "true")
    expect(announcer).to_have_text(re.compile(r"^Total due now\s*\$120\.00$"))
    page.keyboard.press("Tab")
    assert is_focused(page.get_by_label("Coupon code"))
    page.keyboard.type("PHISH25")
    expect(page.get_by_text("25% off, forever")).to_be_visible()
    expect(announcer).to_have_text(re.compile(r"^Total due now\s*\$90\.00$"))  # the live region's own text changed

    # A second card, through the dialog: focus moves into it and cannot leave it while it is open.
    add_card = page.get_by_role("button", name="Add payment method")
    tab_to(page, add_card)
    page.keyboard.press("Space")
    dialog = page.get_by_role("dialog", name="Add payment method")
    expect(dialog).to_be_visible()
    inside_dialog = "el => el.contains(document.activeElement)"
    for _ in range(12):  # more stops than the dialog has: Tab wraps around inside it
        assert dialog.evaluate(inside_dialog), "focus left the open dialog"
        page.keyboard.press("Tab")
    tab_to(page, dialog.get_by_label("Card number"))
    page.keyboard.type("5555 5555 5555 4444")
    page.keyboard.press("Tab")
    page.keyboard.type("12 / 34")
    page.keyboard.press("Tab")
    page.keyboard.type("123")
    tab_to(page, dialog.get_by_role("button", name="Save card"))
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    mastercard = page.get_by_role("radio", name=re.compile("ending in 4444"))
    visa = page.get_by_role("radio", name=re.compile("Visa ending in 4242"))
    expect(mastercard).to_be_checked()  # the card just added is the one used

    # Back to the cards (the checked one takes the focus) and to the Visa with an arrow key.
    tab_to(page, mastercard, backwards=True)
    page.keyboard.press("ArrowUp")
    expect(visa).to_be_checked()
    assert is_focused(visa)

    tab_to(page, page.get_by_role("button", name="Create"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(url_of(portal, routes.LICENSES))
    expect(page.get_by_role("row").filter(has_text="Keyboard team")).to_contain_text("$90.00")
    assert db_count(portal, "SELECT count(*) FROM license l JOIN payment_method p ON p.id = l.payment_method_id "
                            "WHERE l.reference_name = 'Keyboard team' AND l.quantity = 5 AND p.last4 = '4242'") == 1


# --- target sizes -----------------------------------------------------------------------------------------------

# Every visible control's target box: a radio, checkbox or switch inside a <label> is the label (the label is what is
# clicked), a Radix text field is its frame (a click on the frame focuses the input). The one exception applied
# (WCAG 2.5.8 "inline"): a link or link-looking button in a sentence (display: inline, with other text around it
# in the same element), whose height is the line's. The spacing and "equivalent" exceptions are not used.
TARGETS_JS = """() => {
  const selector = 'a[href], button, input:not([type="hidden"]), select, textarea, summary, [role="button"], '
    + '[role="link"], [role="checkbox"], [role="radio"], [role="switch"], [role="tab"], [role="menuitem"], '
    + '[role="combobox"], [tabindex]:not([tabindex="-1"])';
  const inSentence = (el) => {
    if (getComputedStyle(el).display !== 'inline') return false;
    const parent = el.parentElement;
    return parent !== null && parent.textContent.trim().length > el.textContent.trim().length;
  };
  const found = [];
  for (const el of document.querySelectorAll(selector)) {
    if (el.closest('[aria-hidden="true"], [inert]') || el.disabled || inSentence(el)) continue;
    const checkable = el.matches('input[type="radio"], input[type="checkbox"], [role="checkbox"], [role="radio"], '
      + '[role="switch"]');
    const target = (checkable && el.closest('label')) || el.closest('.rt-TextFieldRoot') || el;
    const box = target.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || getComputedStyle(target).visibility === 'hidden') continue;
    if (box.right <= 0) continue;  // parked off screen until it has the focus (the skip link)
    const name = (el.getAttribute('aria-label') || el.textContent || el.id || el.tagName).trim().slice(0, 50);
    found.push({name, width: Math.round(box.width * 10) / 10, height: Math.round(box.height * 10) / 10});
  }
  return found;
}"""


def too_small(page: Page, minimum: int) -> list[dict]:
    return [t for t in page.evaluate(TARGETS_JS) if t["width"] < minimum or t["height"] < minimum]


@pytest.mark.parametrize(("viewport", "minimum"), [(DESKTOP, 24), (PHONE, 44)], ids=["desktop-24", "phone-44"])
def test_targets_are_at_least_24_px_and_44_on_a_phone(portal: PortalServer, anon_page: Page, viewport: dict,
                                                      minimum: int) -> None:
    page = anon_page
    page.set_viewport_size(viewport)
    findings = {}
    for path in (routes.SIGN_IN, routes.ACCESSIBILITY):
        page.goto(portal.url + path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        findings[path] = too_small(page, minimum)
    portal.sign_in(page)
    manage = f"{routes.MANAGE_LICENSE}?id={buy(portal, 'Targets team', 2)}"
    for path in (routes.LICENSES, routes.ADD_LICENSE, manage, routes.EMPLOYEES, routes.BILLING, routes.MEMBERS,
                 routes.ACCOUNT_SETTINGS, routes.SENT_EMAILS, routes.CONTACT):
        page.goto(portal.url + path)
        wait_until_connected(page)
        page.wait_for_load_state("networkidle")
        findings[path] = too_small(page, minimum)
    if viewport is PHONE:  # the menu's items, open
        page.get_by_role("button", name="Open menu").click()
        expect(page.get_by_role("menu")).to_be_visible()
        wait_for_animations(page)  # it zooms in
        findings["the phone menu"] = too_small(page, minimum)  # the page behind it is aria-hidden
        page.keyboard.press("Escape")
    findings = {path: small for path, small in findings.items() if small}
    assert findings == {}, f"targets smaller than {minimum} × {minimum} px: {findings}"


# --- focus never hidden -----------------------------------------------------------------------------------------

def test_focus_is_never_under_the_sticky_header(portal: PortalServer, app_page: Page) -> None:
    """On the phone layout the header sticks to the top: Tab down a long page (Employees, a card per person) and
    Shift+Tab back up, and at every stop the focused control is in view and not covered by the header (html's
    scroll-padding-top is the header's height)."""
    page = app_page
    page.set_viewport_size(PHONE)
    page.goto(portal.url + routes.EMPLOYEES)
    wait_until_connected(page)
    expect(page.get_by_role("button", name=re.compile("^Details of ")).first).to_be_visible()
    header = page.locator(".app-header")
    assert header.evaluate("el => getComputedStyle(el).position") == "sticky"
    padding = page.evaluate("parseFloat(getComputedStyle(document.documentElement).scrollPaddingTop)")
    assert padding == header.bounding_box()["height"], "scroll-padding-top is not the header's height"
    # Hidden means covered: what the page shows at the control's centre and just inside its top edge is not the
    # control (the header, or anything else, is drawn over it), or it is out of the window.
    where = """(header) => {
      const el = document.activeElement, box = el.getBoundingClientRect(), x = box.left + box.width / 2;
      const shown = (y) => y >= 0 && y < window.innerHeight && el.contains(document.elementFromPoint(x, y));
      return {tag: el.tagName, name: (el.getAttribute('aria-label') || el.textContent).trim().slice(0, 40),
              inHeader: header.contains(el), visible: shown(box.top + box.height / 2) && shown(box.top + 2),
              top: box.top, headerBottom: header.getBoundingClientRect().bottom, scrolled: window.scrollY};
    }"""
    stops = []
    for key in ["Tab"] * 45 + ["Shift+Tab"] * 45:
        page.keyboard.press(key)
        stop = header.evaluate(where)
        stops.append(stop)
        assert stop["tag"] == "BODY" or stop["visible"], f"after {key} the focused control is hidden: {stop}"
    assert any(not stop["inHeader"] and stop["top"] < 2 * stop["headerBottom"] for stop in stops[45:]), \
        "Shift+Tab never brought a control in at the top, where the header could cover it"
    assert max(stop["scrolled"] for stop in stops) > 1000, "the page was not long enough to scroll under the header"

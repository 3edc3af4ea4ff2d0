"""The app with the Stripe provider, in Chromium, without the network: the Stripe API is localstripe (started
by the test) and Stripe.js is a local test double the test serves in place of https://js.stripe.com.

- The Payment Element mounts in the Add payment method dialog with the client secret of a SetupIntent that
  the server created at "Stripe"; saving confirms that SetupIntent in the browser, and only the payment
  method's id comes back to the server: no card number ever travels over the app's websocket.
- localstripe's signed webhooks reach the app's real webhook route, which cancels the license.
- A coupon is confirmed with "Stripe" (promotion code, invoice preview) before Create, and a first payment the
  bank wants confirmed (3-D Secure) is completed through Stripe.js, then the license is added. localstripe runs
  with the launcher's `newer_api` answers (Prices, promotion codes, previews; tests/support/localstripe_server.py).
"""

from __future__ import annotations

import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe
from playwright.sync_api import Page, Route, expect
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Account, License, PaymentMethod, Plan, ProviderEvent, User
from cf_portal.services.seed import DEMO_OWNER_EMAIL
from tests.e2e.conftest import PortalServer, wait_until_connected
from tests.factories import make_license
from tests.support.app import running_app
from tests.support.localstripe_server import running_localstripe

pytestmark = pytest.mark.e2e

SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET = "sk_test_e2e", "pk_test_e2e", "whsec_e2e_secret"
DOUBLE = (Path(__file__).parent / "assets" / "stripe_double.js").read_text()


class StripePortal(PortalServer):
    localstripe: str

    def admin(self) -> stripe.StripeClient:
        """A plain client on the fake Stripe server, to prepare it and to look at it."""
        return stripe.StripeClient(SECRET_KEY, base_addresses={"api": self.localstripe}, max_network_retries=0)


@pytest.fixture(scope="module")
def stripe_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StripePortal]:
    with running_localstripe(newer_api=True) as localstripe:
        env = {"CF_PAYMENT_PROVIDER": "stripe", "STRIPE_SECRET_KEY": SECRET_KEY,
               "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY, "CF_STRIPE_API_BASE": localstripe,
               "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
        with running_app(tmp_path_factory.mktemp("stripe-portal"), extra_env=env) as (url, app_dir, log_path, full):
            portal = StripePortal(url, app_dir, log_path, full)
            portal.localstripe = localstripe
            admin, engine = portal.admin(), portal.engine()
            with session_scope(engine, write=False) as session:  # what `sync-catalog` would have made
                for plan in session.exec(select(Plan)):
                    admin.v1.plans.create(params={"id": plan.code, "amount": plan.unit_amount, "interval": "month",
                                                  "currency": plan.currency, "product": {"name": plan.name}})
            engine.dispose()
            admin.v1.coupons.create(params={"id": "SPRING15", "percent_off": 15, "duration": "repeating",
                                            "duration_in_months": 3})
            portal.new_server_errors()
            yield portal


@pytest.fixture
def stripe_page(stripe_portal: StripePortal, page: Page) -> Iterator[Page]:
    """A signed-in tab where https://js.stripe.com is the local double; fails on console or server errors and
    on any request that would leave this machine."""
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def serve_double(route: Route) -> None:
        route.fulfill(status=200, content_type="application/javascript", body=DOUBLE)

    page.route("https://js.stripe.com/**", serve_double)
    page.on("request", lambda req: outside.append(req.url) if urllib.parse.urlsplit(req.url).hostname not in (
        "127.0.0.1", "js.stripe.com") else None)
    stripe_portal.sign_in(page)
    yield page
    assert errors == [], f"browser console errors: {errors}"
    assert outside == [], f"requests left the machine: {outside}"
    assert stripe_portal.new_server_errors() == [], "the app logged errors"


def test_the_payment_element_saves_a_card_that_never_passes_through_the_app(stripe_portal: StripePortal,
                                                                             stripe_page: Page) -> None:
    page, admin = stripe_page, stripe_portal.admin()
    # What Stripe would create from the card typed into its iframe; the double hands its id back.
    pm = admin.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}).id
    page.add_init_script(f"window.__stripeDoublePm = {pm!r};")
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(str(payload))))

    page.goto(stripe_portal.url + "/licenses/new")
    wait_until_connected(page)
    page.get_by_role("button", name="Add payment method").click()
    card = page.get_by_label("Card number (test double)")
    expect(card).to_be_visible(timeout=15_000)
    card.fill("4242 4242 4242 4242")
    confirm_setup_at_stripe(stripe_portal, page, pm)
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_text("Visa ending in 4242 added.")).to_be_visible(timeout=15_000)
    expect(page.get_by_role("radio", name="Visa ending in 4242, expires 12/34")).to_be_checked()

    double = page.evaluate("window.__stripeDouble")
    assert double["keys"] == [PUBLISHABLE_KEY] and double["mounted"] >= 1
    client_secret = double["clientSecrets"][-1]
    assert client_secret.startswith("seti_") and "_secret_" in client_secret
    assert double["confirmed"] == [{"clientSecret": client_secret, "withElements": True}]
    assert not any("4242424242424242" in frame or "4242 4242 4242 4242" in frame for frame in sent)

    engine = stripe_portal.engine()
    with session_scope(engine, write=False) as session:
        owner = session.exec(select(User).where(User.email == DEMO_OWNER_EMAIL)).one()
        customer = session.get(Account, owner.account_id).provider_customer_id
        saved = session.exec(select(PaymentMethod).where(PaymentMethod.account_id == owner.account_id)).all()
    engine.dispose()
    assert [(row.provider_id, row.last4, row.is_default) for row in saved] == [(pm, "4242", True)]
    intent = admin.v1.setup_intents.retrieve(client_secret.split("_secret_")[0])
    assert intent.customer == customer  # the server made it for this account's customer
    assert admin.v1.payment_methods.retrieve(pm).customer == customer


def test_signed_webhooks_reach_the_webhook_route_and_cancel_the_license(stripe_portal: StripePortal) -> None:
    admin, engine = stripe_portal.admin(), stripe_portal.engine()
    customer = admin.v1.customers.create(params={"name": "Webhook Co"}).id
    pm = admin.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}).id
    admin.v1.payment_methods.attach(pm, params={"customer": customer})
    admin.v1.customers.update(customer, params={"invoice_settings": {"default_payment_method": pm}})
    admin.v1.plans.create(params={"id": "webhook-plan", "amount": 1900, "currency": "usd", "interval": "month",
                                  "product": {"name": "Webhook plan"}})
    sub = admin.v1.subscriptions.create(params={"customer": customer, "items": [{"plan": "webhook-plan",
                                                                                  "quantity": 3}]}).id
    with session_scope(engine) as session:
        owner = session.exec(select(User).where(User.email == DEMO_OWNER_EMAIL)).one()
        account = session.get(Account, owner.account_id)
        plan = session.exec(select(Plan).where(Plan.code == "awareness-business")).one()
        lic = make_license(session, account, plan, quantity=3, reference_name="Webhook team",
                           provider_subscription_id=sub, status="active")
        license_id = lic.id
    register = urllib.request.Request(
        f"{stripe_portal.localstripe}/_config/webhooks/portal", method="POST",
        data=urllib.parse.urlencode({"url": f"{stripe_portal.url}/api/webhooks/stripe",
                                     "secret": WEBHOOK_SECRET}).encode())
    with urllib.request.urlopen(register, timeout=5) as response:
        assert response.status == 200

    admin.v1.subscriptions.cancel(sub)

    deadline, status = time.monotonic() + 20, "active"
    while time.monotonic() < deadline and status != "canceled":
        time.sleep(0.5)
        with session_scope(engine, write=False) as session:
            status = session.get(License, license_id).status
    with session_scope(engine, write=False) as session:
        kinds = [e.type for e in session.exec(select(ProviderEvent).where(ProviderEvent.provider == "stripe"))]
    engine.dispose()
    assert status == "canceled"
    assert "customer.subscription.deleted" in kinds


def confirm_setup_at_stripe(stripe_portal: StripePortal, page: Page, pm: str) -> None:
    """What Stripe does when the Payment Element confirms: the SetupIntent the page mounted (the account's own)
    succeeds with the card, after the bank's step if the card asks for one (a second confirm, for localstripe).
    The double does not tell localstripe itself; the server saves only the card of that succeeded SetupIntent."""
    intent = page.evaluate("window.__stripeDouble")["clientSecrets"][-1].split("_secret_")[0]
    admin = stripe_portal.admin()
    if admin.v1.setup_intents.confirm(intent, params={"payment_method": pm}).status == "requires_action":
        admin.v1.setup_intents.confirm(intent)


def save_card_through_the_double(stripe_portal: StripePortal, page: Page, number: str, exp_year: int = 2034) -> str:
    """Add a card with the Payment Element double; the card Stripe would have made from `number` comes back.
    (The same number and expiry are saved once per account: give each test's card an expiry of its own.)"""
    pm = stripe_portal.admin().v1.payment_methods.create(params={"type": "card", "card": {
        "number": number, "exp_month": 12, "exp_year": exp_year, "cvc": "123"}}).id
    page.evaluate(f"window.__stripeDoublePm = {pm!r}")
    page.get_by_role("button", name="Add payment method").click()
    card = page.get_by_label("Card number (test double)")
    expect(card).to_be_visible(timeout=15_000)
    card.fill("4242 4242 4242 4242")
    confirm_setup_at_stripe(stripe_portal, page, pm)
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_text(f"ending in {number[-4:]} added.")).to_be_visible(timeout=15_000)
    return pm


def test_a_coupon_is_confirmed_with_stripe_before_it_counts(stripe_portal: StripePortal, stripe_page: Page) -> None:
    page = stripe_page
    page.goto(stripe_portal.url + "/licenses/new")
    wait_until_connected(page)
    page.get_by_label("Number of licenses").fill("10")
    total = page.get_by_role("region", name="Price").locator("#total-due")
    expect(total).to_have_text("$90.00")
    page.get_by_label("Coupon code").fill("spring15")  # in the portal's catalog and in Stripe
    expect(page.get_by_text("Coupon applied: 15% off for 3 months")).to_be_visible(timeout=15_000)
    expect(total).to_have_text("$76.50")
    expect(page.get_by_role("button", name="Create")).to_be_enabled()

    page.get_by_label("Coupon code").fill("WELCOME20")  # the portal knows it; Stripe has no such promotion code
    expect(page.get_by_text("This coupon code can't be used right now.")).to_be_visible(timeout=15_000)
    expect(total).to_have_text("$90.00")
    expect(page.get_by_label("Coupon code")).to_have_value("WELCOME20")  # kept as typed


@pytest.mark.parametrize("bank_says", ["yes", "no"])
def test_3d_secure_at_create_is_completed_in_the_browser(stripe_portal: StripePortal, stripe_page: Page,
                                                         bank_says: str) -> None:
    page, admin = stripe_page, stripe_portal.admin()
    page.add_init_script(f"window.__stripeDoubleApi = {stripe_portal.localstripe!r}; "
                         f"window.__stripeDoubleBankSays = {bank_says!r};")
    page.goto(stripe_portal.url + "/licenses/new")
    wait_until_connected(page)
    # The bank asks for every payment with this card.
    save_card_through_the_double(stripe_portal, page, "4000002500003155", exp_year=2034 if bank_says == "yes" else 2035)
    name = f"Bank step {bank_says}"
    page.get_by_label("License name").fill(name)
    page.get_by_label("Number of licenses").fill("2")
    page.get_by_role("button", name="Create").click()

    if bank_says == "yes":
        expect(page.get_by_text(f"License “{name}” created with 2 licenses.")).to_be_visible(timeout=20_000)
        expect(page).to_have_url(re.compile(r"/licenses$"))
    else:
        message = page.get_by_role("alert").filter(has_text="it was not confirmed. Try again, or use another card.")
        expect(message.first).to_be_visible(timeout=20_000)
        expect(page.get_by_label("License name")).to_have_value(name)  # the form keeps what was typed
    double = page.evaluate("window.__stripeDouble")
    assert len(double["actions"]) == 1 and double["actions"][0].startswith("pi_")

    engine = stripe_portal.engine()
    with session_scope(engine, write=False) as session:
        owner = session.exec(select(User).where(User.email == DEMO_OWNER_EMAIL)).one()
        customer = session.get(Account, owner.account_id).provider_customer_id
        licenses = session.exec(select(License).where(License.reference_name == name)).all()
    engine.dispose()
    made = [(sub["status"], sub["metadata"].get("license_id")) for sub in (
        s.to_dict() for s in admin.v1.subscriptions.list(params={"customer": customer, "status": "all"}))
        if sub["metadata"].get("reference_name") == name]
    if bank_says == "yes":
        assert [(lic.status, lic.quantity) for lic in licenses] == [("active", 2)]
        assert made == [("active", str(licenses[0].id))]  # one subscription: Create again made none
    else:
        assert licenses == []  # nothing half-made
        assert [status for status, _ in made] == ["canceled"]  # the unconfirmed payment's subscription

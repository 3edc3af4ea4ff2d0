"""One contract for both payment providers: the sandbox (on the test database) and Stripe (against
localstripe). Where the two legitimately differ, the test says so where it happens.

At the end, tests of the Stripe provider alone that need a Stripe server (localstripe): the declines and the
3-D Secure card the sandbox does not simulate, and the Payment Element's SetupIntent flow.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
import uuid

import pytest
import stripe
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Account, Invoice, InvoiceLine, License
from cf_portal.payments.provider import ActionRequired, CardDeclined, CardDetails, PaymentError, PaymentProvider
from cf_portal.services.errors import DomainError
from cf_portal.services.payment_methods import CardRefused
from cf_portal.services.purchase import PaymentActionRequired, PurchaseRequest, create_license
from tests.contract.conftest import LOCALSTRIPE_KEY, LocalstripeProvider, subscribe
from tests.unit.conftest import NOW, Seeded


def card(number: str = "4242424242424242") -> CardDetails:
    return CardDetails(number=number, exp_month=12, exp_year=2034, cvc="123")


def new_customer(provider: PaymentProvider, account_id: int = 1) -> str:
    return provider.ensure_customer(account_id=account_id, account_name="Acme", customer_id=None)


def add(provider: PaymentProvider, customer: str, number: str = "4242424242424242", *, default: bool = True) -> str:
    return provider.add_card(customer_id=customer, card=card(number), make_default=default,
                             idempotency_key=f"card-{uuid.uuid4()}").provider_id


# --- customers -----------------------------------------------------------------------------------------------

def test_a_customer_is_created_on_first_need_and_kept(provider: PaymentProvider) -> None:
    first = new_customer(provider, account_id=7)
    assert first.startswith("cus_")
    assert provider.ensure_customer(account_id=7, account_name="Acme", customer_id=first) == first
    assert new_customer(provider, account_id=8) != first
    # An id the provider does not know (another provider's, a deleted one) gets a new customer.
    replacement = provider.ensure_customer(account_id=9, account_name="Acme", customer_id="cus_unknown0000")
    assert replacement.startswith("cus_") and replacement != "cus_unknown0000"
    if provider.name == "sandbox":
        # The sandbox finds the account's customer by account id. Stripe relies on the idempotency key of the
        # create (one per account), which localstripe ignores: test_stripe_requests.py checks that key.
        assert new_customer(provider, account_id=7) == first


# --- payment methods ------------------------------------------------------------------------------------------

def test_cards_are_added_listed_defaulted_and_removed(provider: PaymentProvider, provider_store) -> None:  # noqa: ANN001
    customer = new_customer(provider)
    visa = provider.add_card(customer_id=customer, card=card(), make_default=True, idempotency_key="card-visa-1")
    assert (visa.brand, visa.last4, visa.exp_month, visa.exp_year) == ("visa", "4242", 12, 2034)
    master = provider.add_card(customer_id=customer, card=card("5555555555554444"), make_default=False,
                               idempotency_key="card-master-1")
    # localstripe calls every card a Visa; the sandbox (and Stripe) see a Mastercard.
    assert master.brand == ("mastercard" if provider.name == "sandbox" else "visa")
    assert master.last4 == "4444"
    assert sorted(c.last4 for c in provider.list_payment_methods(customer_id=customer)) == ["4242", "4444"]
    assert provider_store.default_card(customer) == visa.provider_id

    other = new_customer(provider, account_id=2)
    with pytest.raises(PaymentError) as info:
        provider.remove_payment_method(customer_id=other, payment_method_id=master.provider_id)
    assert info.value.code == "resource_missing"
    assert provider.list_payment_methods(customer_id=other) == []

    provider.remove_payment_method(customer_id=customer, payment_method_id=master.provider_id)
    assert [c.provider_id for c in provider.list_payment_methods(customer_id=customer)] == [visa.provider_id]
    with pytest.raises(PaymentError):
        provider.remove_payment_method(customer_id=customer, payment_method_id=master.provider_id)


def test_the_default_card_is_one_of_the_customers_own(provider: PaymentProvider, provider_store) -> None:  # noqa: ANN001
    customer = new_customer(provider)
    visa = add(provider, customer)
    master = add(provider, customer, "5555555555554444", default=False)
    assert provider_store.default_card(customer) == visa
    provider.set_default_payment_method(customer_id=customer, payment_method_id=master)
    assert provider_store.default_card(customer) == master
    provider.set_default_payment_method(customer_id=customer, payment_method_id=master)  # again: no harm
    assert provider_store.default_card(customer) == master

    other = new_customer(provider, account_id=2)
    for customer_id, card in ((other, visa), (customer, "pm_missing0000")):
        with pytest.raises(PaymentError) as info:
            provider.set_default_payment_method(customer_id=customer_id, payment_method_id=card)
        assert info.value.code == "resource_missing"
    assert provider_store.default_card(other) is None
    provider.remove_payment_method(customer_id=customer, payment_method_id=visa)
    with pytest.raises(PaymentError) as info:  # a detached card is no longer the customer's
        provider.set_default_payment_method(customer_id=customer, payment_method_id=visa)
    assert info.value.code == "resource_missing"
    assert provider_store.default_card(customer) == master


def test_a_declined_card_never_gives_an_active_subscription(provider: PaymentProvider, provider_store,  # noqa: ANN001
                                                            seeded: Seeded) -> None:
    customer = new_customer(provider)
    if provider.name == "stripe":
        # Stripe (and localstripe) check the card when it is attached: the decline comes at once.
        with pytest.raises(CardDeclined) as info:
            add(provider, customer, "4000000000000002")
        assert provider.list_payment_methods(customer_id=customer) == []
    else:
        # The sandbox takes the card and declines it when charged, so a demo can show a decline at Create.
        pm = add(provider, customer, "4000000000000002")
        with pytest.raises(CardDeclined) as info:
            subscribe(provider, seeded, customer, pm, "sub-declined")
    assert (info.value.code, info.value.decline_code, info.value.message) == (
        "card_declined", "generic_decline", "Your card was declined.")
    assert "active" not in provider_store.subscription_statuses(customer)
    assert provider.list_invoices(customer_id=customer) == []


# --- subscriptions ---------------------------------------------------------------------------------------------

def test_a_subscription_charges_its_first_month(provider: PaymentProvider, seeded: Seeded) -> None:
    customer = new_customer(provider)
    pm = add(provider, customer)
    sub = subscribe(provider, seeded, customer, pm, "sub-quantity", quantity=3)
    assert sub.provider_id.startswith("sub_") and sub.status == "active"
    invoice = sub.latest_invoice
    assert (invoice.status, invoice.currency, invoice.subtotal, invoice.discount, invoice.total) == (
        "paid", "usd", 5700, 0, 5700)
    [line] = invoice.lines
    assert (line.quantity, line.unit_amount, line.amount) == (3, 1900, 5700)
    assert line.description.startswith("Sales team · ")
    assert "Business" in line.description


def test_subscriptions_are_cancelled_once_and_for_all(provider: PaymentProvider, provider_store,  # noqa: ANN001
                                                      seeded: Seeded) -> None:
    customer = new_customer(provider)
    pm = add(provider, customer)
    kept = subscribe(provider, seeded, customer, pm, "sub-kept", description="Kept")
    cancelled = subscribe(provider, seeded, customer, pm, "sub-cancelled", description="Cancelled")
    provider.cancel_subscription(subscription_id=cancelled.provider_id)
    provider.cancel_subscription(subscription_id=cancelled.provider_id)  # cancelling twice is harmless
    assert sorted(provider_store.subscription_statuses(customer)) == ["active", "canceled"]
    with pytest.raises(PaymentError) as info:
        provider.cancel_subscription(subscription_id="sub_missing0000")
    assert info.value.code == "resource_missing"
    assert kept.status == "active"


def test_invoices_are_listed_per_customer_oldest_first(provider: PaymentProvider, seeded: Seeded) -> None:
    customer = new_customer(provider)
    pm = add(provider, customer)
    first = subscribe(provider, seeded, customer, pm, "sub-first", quantity=2)
    second = subscribe(provider, seeded, customer, pm, "sub-second", plan="phishing-standard", quantity=4)
    invoices = provider.list_invoices(customer_id=customer)
    assert [(i.provider_id, i.status, i.subtotal, i.total) for i in invoices] == [
        (first.latest_invoice.provider_id, "paid", 3800, 3800),
        (second.latest_invoice.provider_id, "paid", 4800, 4800),
    ]
    assert [(line.quantity, line.unit_amount, line.amount) for i in invoices for line in i.lines] == [
        (2, 1900, 3800), (4, 1200, 4800)]
    assert provider.list_invoices(customer_id=new_customer(provider, account_id=2)) == []


def test_a_subscription_switches_to_another_card_of_its_customer(provider: PaymentProvider, provider_store,  # noqa: ANN001
                                                                seeded: Seeded) -> None:
    customer = new_customer(provider)
    visa = add(provider, customer)
    master = add(provider, customer, "5555555555554444", default=False)
    sub = subscribe(provider, seeded, customer, visa, "sub-switch").provider_id
    assert provider_store.subscription_card(sub) == visa
    provider.set_subscription_payment_method(subscription_id=sub, payment_method_id=master)
    assert provider_store.subscription_card(sub) == master
    provider.set_subscription_payment_method(subscription_id=sub, payment_method_id=master)  # again: no harm
    # The card it no longer uses can go; the subscription keeps the one it was switched to.
    provider.remove_payment_method(customer_id=customer, payment_method_id=visa)
    assert provider_store.subscription_card(sub) == master

    other = new_customer(provider, account_id=2)
    theirs = add(provider, other)
    for subscription_id, card in ((sub, theirs), (sub, visa), (sub, "pm_missing0000"), ("sub_missing0000", master)):
        with pytest.raises(PaymentError) as info:
            provider.set_subscription_payment_method(subscription_id=subscription_id, payment_method_id=card)
        assert info.value.code == "resource_missing", (subscription_id, card)
    assert provider_store.subscription_card(sub) == master


def test_a_removed_card_cannot_be_charged(provider: PaymentProvider, seeded: Seeded) -> None:
    customer = new_customer(provider)
    pm = add(provider, customer)
    provider.remove_payment_method(customer_id=customer, payment_method_id=pm)
    with pytest.raises(PaymentError) as info:
        subscribe(provider, seeded, customer, pm, "sub-removed")
    assert info.value.code == "resource_missing"
    assert provider.list_invoices(customer_id=customer) == []


def test_create_license_through_the_purchase_service(provider: PaymentProvider, seeded: Seeded) -> None:
    """The app's own flow on each provider: save a card, then Create charges once and adds the license."""
    pm = seeded.add_card(provider)
    request = PurchaseRequest(reference_name="Sales team", plan_id=seeded.plans["awareness-business"].id, quantity=5,
                              payment_method_id=pm.id, expected_total=9500, idempotency_key=uuid.uuid4().hex)
    result = create_license(seeded.engine, provider, actor=seeded.actor, request=request, now=NOW)
    assert (result.quantity, result.total_charged, result.replayed) == (5, 9500, False)
    with session_scope(seeded.engine, write=False) as session:
        lic = session.get(License, result.license_id)
        assert lic.status == "active" and lic.provider_subscription_id.startswith("sub_")
        invoice = session.exec(select(Invoice).where(Invoice.license_id == lic.id)).one()
        line = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).one()
    assert (invoice.total, line.quantity, line.amount) == (9500, 5, 9500)
    assert line.description.startswith("Sales team · ")
    assert create_license(seeded.engine, provider, actor=seeded.actor, request=request, now=NOW).replayed


def test_a_declined_card_at_create_adds_no_license(provider: PaymentProvider, seeded: Seeded) -> None:
    if provider.name == "stripe":
        # With Stripe the declining test card is refused when saved, before any Create.
        with pytest.raises(CardRefused) as refused:  # the service's answer to the provider's CardDeclined
            seeded.add_card(provider, number="4000000000000002")
        assert isinstance(refused.value.__cause__, CardDeclined) and refused.value.field == "card"
        return
    pm = seeded.add_card(provider, number="4000000000000002")
    request = PurchaseRequest(reference_name="Sales team", plan_id=seeded.plans["awareness-business"].id, quantity=5,
                              payment_method_id=pm.id, expected_total=9500, idempotency_key=uuid.uuid4().hex)
    with pytest.raises(DomainError) as info:
        create_license(seeded.engine, provider, actor=seeded.actor, request=request, now=NOW)
    assert "declined" in info.value.message
    with session_scope(seeded.engine, write=False) as session:
        assert session.exec(select(License)).all() == []


# --- the Stripe provider alone, on localstripe ---------------------------------------------------------------

def test_stripe_a_charge_declined_after_the_card_was_saved_leaves_no_subscription(
        localstripe_provider: LocalstripeProvider, stripe_admin: stripe.StripeClient, seeded: Seeded) -> None:
    customer = new_customer(localstripe_provider)
    pm = add(localstripe_provider, customer, "4000000000000341")  # attaches, then every charge is declined
    with pytest.raises(CardDeclined) as info:
        subscribe(localstripe_provider, seeded, customer, pm, "sub-0341")
    assert (info.value.code, info.value.message) == ("card_declined", "Your card was declined.")
    statuses = [s.status for s in stripe_admin.v1.subscriptions.list(params={"customer": customer, "status": "all"})]
    assert statuses == ["canceled"]


def authenticate(localstripe: str, client_secret: str, *, success: bool) -> None:
    """What Stripe.js's handleNextAction leads to when the customer passes (or fails) the bank's step:
    localstripe's hook for it."""
    intent = client_secret.split("_secret_")[0]
    form = urllib.parse.urlencode({"client_secret": client_secret, "success": str(success).lower()}).encode()
    request = urllib.request.Request(f"{localstripe}/v1/payment_intents/{intent}/_authenticate", data=form,
                                     headers={"Authorization": f"Bearer {LOCALSTRIPE_KEY}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def statuses(stripe_admin: stripe.StripeClient, customer: str) -> list[str]:
    return [s.status for s in stripe_admin.v1.subscriptions.list(params={"customer": customer, "status": "all"})]


def test_stripe_3d_secure_waits_for_the_customer_then_the_subscription_is_found_paid(
        localstripe_provider: LocalstripeProvider, localstripe: str, stripe_admin: stripe.StripeClient,
        seeded: Seeded) -> None:
    customer = new_customer(localstripe_provider)
    pm = add(localstripe_provider, customer, "4000002500003155")  # needs 3-D Secure for every payment
    with pytest.raises(ActionRequired) as info:
        subscribe(localstripe_provider, seeded, customer, pm, "sub-3ds")
    secret = info.value.client_secret
    assert secret.startswith("pi_") and "_secret_" in secret and secret not in str(info.value)
    assert statuses(stripe_admin, customer) == ["incomplete"]  # waiting: nothing charged yet
    with pytest.raises(ActionRequired):  # asked again before the customer acted: still waiting
        localstripe_provider.find_subscription(customer_id=customer, license_id="1", purchase_key="sub-3ds")

    authenticate(localstripe, secret, success=True)
    found = localstripe_provider.find_subscription(customer_id=customer, license_id="1", purchase_key="sub-3ds")
    assert found is not None and found.provider_id == info.value.subscription_id
    assert (found.status, found.latest_invoice.status, found.latest_invoice.total) == ("active", "paid", 3 * 1900)
    assert localstripe_provider.find_subscription(customer_id=customer, license_id="2", purchase_key="sub-3ds") is None
    # Another purchase that got the same license id (SQLite reuses the id of a deleted row) is another attempt.
    assert localstripe_provider.find_subscription(customer_id=customer, license_id="1", purchase_key="other") is None


def test_stripe_3d_secure_not_confirmed_cancels_the_subscription(
        localstripe_provider: LocalstripeProvider, localstripe: str, stripe_admin: stripe.StripeClient,
        seeded: Seeded) -> None:
    customer = new_customer(localstripe_provider)
    pm = add(localstripe_provider, customer, "4000002500003155")
    with pytest.raises(ActionRequired) as info:
        subscribe(localstripe_provider, seeded, customer, pm, "sub-3ds-failed")
    authenticate(localstripe, info.value.client_secret, success=False)
    with pytest.raises(PaymentError) as failed:
        localstripe_provider.find_subscription(customer_id=customer, license_id="1", purchase_key="sub-3ds-failed")
    assert not isinstance(failed.value, (CardDeclined, ActionRequired))
    assert (failed.value.code, "3-D Secure" in failed.value.message) == ("requires_action", True)
    assert statuses(stripe_admin, customer) == ["canceled"]
    with pytest.raises(PaymentError):  # asked again: still the failed attempt, never "no attempt was made"
        localstripe_provider.find_subscription(customer_id=customer, license_id="1", purchase_key="sub-3ds-failed")


def test_stripe_create_with_3d_secure_adds_the_license_once_the_bank_confirmed(
        localstripe_provider: LocalstripeProvider, localstripe: str, stripe_admin: stripe.StripeClient,
        seeded: Seeded) -> None:
    """The purchase service's side of the browser's 3-D Secure step: Create, the bank's step, Create again."""
    pm = seeded.add_card(localstripe_provider, number="4000002500003155")
    request = PurchaseRequest(reference_name="Sales team", plan_id=seeded.plans["awareness-business"].id, quantity=5,
                              payment_method_id=pm.id, expected_total=9500, idempotency_key=uuid.uuid4().hex)
    with pytest.raises(PaymentActionRequired) as info:
        create_license(seeded.engine, localstripe_provider, actor=seeded.actor, request=request, now=NOW)
    with session_scope(seeded.engine, write=False) as session:
        [pending] = session.exec(select(License)).all()
        assert pending.status == "pending"
    authenticate(localstripe, info.value.client_secret, success=True)
    result = create_license(seeded.engine, localstripe_provider, actor=seeded.actor, request=request, now=NOW)
    assert (result.license_id, result.total_charged) == (pending.id, 9500)
    with session_scope(seeded.engine, write=False) as session:
        lic = session.get(License, pending.id)
        assert lic.status == "active"
        assert session.exec(select(Invoice).where(Invoice.license_id == lic.id)).one().total == 9500
        customer = session.get(Account, seeded.actor.account_id).provider_customer_id
    assert statuses(stripe_admin, customer) == ["active"]  # one subscription: the second Create made none


def test_stripe_a_card_saved_through_a_setup_intent_is_kept(localstripe_provider: LocalstripeProvider,
                                                            stripe_admin: stripe.StripeClient) -> None:
    customer = new_customer(localstripe_provider)
    intent = localstripe_provider.create_setup_intent(customer_id=customer, idempotency_key="seti-1")
    assert intent.provider_id.startswith("seti_") and intent.client_secret.startswith(f"{intent.provider_id}_secret_")
    assert (intent.customer_id, intent.status) == (customer, "requires_payment_method")
    # What Stripe.js does in the browser with the Payment Element: confirm with the typed card.
    confirmed = stripe_admin.v1.setup_intents.confirm(intent.provider_id, params={"payment_method_data": {
        "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}})
    assert confirmed.status == "succeeded"
    assert localstripe_provider.get_setup_intent(setup_intent_id=intent.provider_id).payment_method_id == \
        confirmed.payment_method
    saved = localstripe_provider.attach_confirmed_payment_method(
        customer_id=customer, setup_intent_id=intent.provider_id, payment_method_id=confirmed.payment_method,
        make_default=True)
    assert (saved.provider_id, saved.last4) == (confirmed.payment_method, "4242")
    assert saved.fingerprint and saved.fingerprint == stripe_admin.v1.payment_methods.retrieve(
        saved.provider_id).card.fingerprint
    assert [c.provider_id for c in localstripe_provider.list_payment_methods(customer_id=customer)] == [
        saved.provider_id]
    assert stripe_admin.v1.customers.retrieve(customer).invoice_settings.default_payment_method == saved.provider_id
    # Another account cannot take it over, even naming the SetupIntent.
    with pytest.raises(PaymentError) as info:
        localstripe_provider.attach_confirmed_payment_method(
            customer_id=new_customer(localstripe_provider, account_id=2), setup_intent_id=intent.provider_id,
            payment_method_id=saved.provider_id, make_default=False)
    assert info.value.code == "setup_unconfirmed"
    assert localstripe_provider.get_setup_intent(setup_intent_id="seti_unknown") is None

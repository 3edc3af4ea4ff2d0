"""What localstripe cannot check (Prices by lookup key, `description` and `discounts` on subscriptions,
idempotency keys, the newer invoice shapes, outages): the exact requests stripe-python sends for the Stripe
provider, recorded by a stand-in HTTP client that answers with JSON shaped as in Stripe's API reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe

from cf_portal.payments.provider import (
    DECLINES,
    ActionRequired,
    CardDeclined,
    CardDetails,
    ChargeFigures,
    InvoiceLineData,
    NotSupported,
    PaymentError,
    ProviderUnavailable,
    SubscriptionData,
    SubscriptionDiscount,
)
from cf_portal.payments.stripe_provider import StripeProvider

CUSTOMER, PM, PRICE, SUB, INVOICE = "cus_NffrFeUfNV2Hib", "pm_1Q0PsIJvEtkwdCNY", "price_1MoBy5LkdIwHu7ix", \
    "sub_1MowQVLkdIwHu7ix", "in_1MtHbELkdIwHu7ix"
PROMO = "promo_1MiM6KLkdIwHu7ixrIaX4wgn"


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    params: dict[str, str]  # form fields (POST) or query (GET, DELETE), flattened as sent: "items[0][price]"
    idempotency_key: str | None


class FakeStripe(stripe.HTTPClient):
    """stripe-python's HTTP client replaced: records each request, answers from a script per route."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Sent] = []
        self._script: dict[tuple[str, str], list[Any]] = {}

    def on(self, method: str, path: str, *answers: tuple[int, dict[str, Any]] | Exception) -> None:
        """Answer `method path` with these in turn (the last one again after that)."""
        self._script[(method, path)] = list(answers)

    def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> tuple[str, int, dict[str, str]]:
        parts = urlsplit(url)
        form = post_data.decode() if isinstance(post_data, bytes) else post_data
        self.sent.append(Sent(method.upper(), parts.path, dict(parse_qsl(form or parts.query, keep_blank_values=True)),
                              headers.get("Idempotency-Key")))
        answers = self._script.get((method.upper(), parts.path))
        if not answers:
            raise AssertionError(f"unexpected request: {method.upper()} {parts.path}")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return json.dumps(body), status, {"request-id": "req_fake"}

    def close(self) -> None:
        pass

    def posts(self, path: str) -> list[Sent]:
        return [s for s in self.sent if s.method == "POST" and s.path == path]


# --- Stripe-shaped answers (API reference, current API version) ------------------------------------------------

def customer_json(**overrides: Any) -> dict[str, Any]:
    return {"id": CUSTOMER, "object": "customer", "address": None, "balance": 0, "created": 1680893993,
            "currency": None, "default_source": None, "delinquent": False, "description": None, "email": None,
            "invoice_prefix": "0759376C", "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                                                               "footer": None, "rendering_options": None},
            "livemode": False, "metadata": {"account_id": "7"}, "name": "Acme", "next_invoice_sequence": 1,
            "phone": None, "preferred_locales": [], "shipping": None, "tax_exempt": "none", "test_clock": None,
            **overrides}


def payment_method_json(customer: str | None = CUSTOMER, **overrides: Any) -> dict[str, Any]:
    return {"id": PM, "object": "payment_method", "allow_redisplay": "unspecified",
            "billing_details": {"address": None, "email": None, "name": None, "phone": None},
            "card": {"brand": "visa", "checks": {"address_line1_check": None, "address_postal_code_check": None,
                                                 "cvc_check": "pass"},
                     "country": "US", "display_brand": "visa", "exp_month": 12, "exp_year": 2034,
                     "fingerprint": "Xt5EWLLDS7FJjR1c", "funding": "credit", "generated_from": None, "last4": "4242",
                     "networks": {"available": ["visa"], "preferred": None},
                     "three_d_secure_usage": {"supported": True}, "wallet": None},
            "created": 1726673582, "customer": customer, "livemode": False, "metadata": {}, "type": "card",
            **overrides}


def price_list_json(*, unit_amount: int = 1900, interval: str = "month", empty: bool = False) -> dict[str, Any]:
    price = {"id": PRICE, "object": "price", "active": True, "billing_scheme": "per_unit", "created": 1679431181,
             "currency": "usd", "custom_unit_amount": None, "livemode": False, "lookup_key": "awareness-business",
             "metadata": {}, "nickname": None, "product": "prod_NZKdYqrwEYx6iK",
             "recurring": {"interval": interval, "interval_count": 1, "meter": None, "trial_period_days": None,
                           "usage_type": "licensed"},
             "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None, "type": "recurring",
             "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount)}
    return {"object": "list", "url": "/v1/prices", "has_more": False, "data": [] if empty else [price]}


def invoice_json(*, status: str = "paid", quantity: int = 5, discount: int = 1900, number: str | None = "0759376C-0001",
                 created: int = 1680893993, invoice_id: str = INVOICE, **overrides: Any) -> dict[str, Any]:
    subtotal = 1900 * quantity
    discounts = [{"amount": discount, "discount": "di_1MtHbELkdIwHu7ixk5p0Tg3k"}] if discount else []
    return {
        "id": invoice_id, "object": "invoice", "account_country": "US", "account_name": "ChatFortress",
        "amount_due": subtotal - discount, "amount_paid": subtotal - discount if status == "paid" else 0,
        "amount_remaining": 0 if status == "paid" else subtotal - discount, "attempt_count": 1, "attempted": True,
        "billing_reason": "subscription_create", "collection_method": "charge_automatically", "created": created,
        "currency": "usd", "customer": CUSTOMER, "default_payment_method": None, "description": None,
        "discounts": [d["discount"] for d in discounts], "hosted_invoice_url": None, "livemode": False,
        "lines": {"object": "list", "url": f"/v1/invoices/{invoice_id}/lines", "has_more": False, "data": [{
            "id": "il_1MtHbELkdIwHu7ixOJbRpUgZ", "object": "line_item", "amount": subtotal, "currency": "usd",
            "description": f"{quantity} × Security Awareness Training Business (at $19.00 / month)",
            "discount_amounts": discounts, "discountable": True, "discounts": [], "invoice": invoice_id,
            "livemode": False, "metadata": {"license_id": "7"},
            "parent": {"type": "subscription_item_details", "subscription_item_details": {
                "invoice_item": None, "proration": False, "proration_details": {"credited_items": None},
                "subscription": SUB, "subscription_item": "si_NcLYdDxLHxlFo7"}},
            "period": {"end": 1683485993, "start": 1680893993},
            "pricing": {"price_details": {"price": PRICE, "product": "prod_NZKdYqrwEYx6iK"}, "type": "price_details",
                        "unit_amount_decimal": "1900"},
            "quantity": quantity, "taxes": []}]},
        "metadata": {}, "number": number,
        "parent": {"type": "subscription_details", "quote_details": None, "subscription_details": {
            "metadata": {"account_id": "3", "license_id": "7", "reference_name": "Sales team"}, "subscription": SUB}},
        "period_end": 1680893993, "period_start": 1680893993, "status": status,
        "status_transitions": {"finalized_at": created, "marked_uncollectible_at": None,
                               "paid_at": created if status == "paid" else None, "voided_at": None},
        "subtotal": subtotal, "subtotal_excluding_tax": subtotal, "total": subtotal - discount,
        "total_discount_amounts": discounts, "total_excluding_tax": subtotal - discount, "total_taxes": [],
        **overrides,
    }


def subscription_json(*, status: str = "active", invoice: dict[str, Any] | None = None,
                      **overrides: Any) -> dict[str, Any]:
    return {
        "id": SUB, "object": "subscription", "application": None, "billing_cycle_anchor": 1680893993,
        "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None, "collection_method": "charge_automatically",
        "created": 1680893993, "currency": "usd", "customer": CUSTOMER, "default_payment_method": PM,
        "description": "Sales team", "discounts": ["di_1MtHbELkdIwHu7ixk5p0Tg3k"], "ended_at": None,
        "items": {"object": "list", "url": f"/v1/subscription_items?subscription={SUB}", "has_more": False, "data": [{
            "id": "si_NcLYdDxLHxlFo7", "object": "subscription_item", "created": 1680893993,
            "current_period_end": 1683485993, "current_period_start": 1680893993, "discounts": [],
            "metadata": {}, "price": price_list_json()["data"][0], "quantity": 5, "subscription": SUB,
            "tax_rates": []}]},
        "latest_invoice": invoice if invoice is not None else invoice_json(),
        "livemode": False, "metadata": {"account_id": "3", "license_id": "7", "reference_name": "Sales team"},
        "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                             "save_default_payment_method": "off"},
        "start_date": 1680893993, "status": status, "test_clock": None,
        **overrides,
    }


def payment_intent_json(status: str, last_payment_error: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "object": "payment_intent", "amount": 7600, "amount_received": 0,
            "capture_method": "automatic_async", "client_secret": "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8",
            "confirmation_method": "automatic", "created": 1680800504, "currency": "usd", "customer": CUSTOMER,
            "last_payment_error": last_payment_error, "livemode": False, "metadata": {},
            "next_action": {"type": "use_stripe_sdk", "use_stripe_sdk": {}} if status == "requires_action" else None,
            "payment_method": PM, "payment_method_types": ["card"], "status": status}


def invoice_payments_json(intent: dict[str, Any]) -> dict[str, Any]:
    return {"object": "list", "url": "/v1/invoice_payments", "has_more": False, "data": [{
        "id": "inpay_1M3USa2eZvKYlo2CBjuwbq0N", "object": "invoice_payment", "amount_paid": None,
        "amount_requested": 7600, "created": 1391288554, "currency": "usd", "invoice": INVOICE, "is_default": True,
        "livemode": False, "payment": {"type": "payment_intent", "payment_intent": intent}, "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None}}]}


def promotion_code_list_json(code: str = "WELCOME20", *, empty: bool = False) -> dict[str, Any]:
    promo = {"id": PROMO, "object": "promotion_code", "active": True, "code": code, "created": 1678040164,
             "customer": None, "expires_at": None, "livemode": False, "max_redemptions": None, "metadata": {},
             "promotion": {"type": "coupon", "coupon": code},
             "restrictions": {"first_time_transaction": False, "minimum_amount": None,
                              "minimum_amount_currency": None},
             "times_redeemed": 0}
    return {"object": "list", "url": "/v1/promotion_codes", "has_more": False, "data": [] if empty else [promo]}


def error_json(error_type: str, message: str, **fields: Any) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message,
                      "request_log_url": "https://dashboard.stripe.com/test/logs/req_fake", **fields}}


def card_error(code: str, message: str, decline_code: str | None = None) -> tuple[int, dict[str, Any]]:
    fields = {"code": code, "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"}
    if decline_code:
        fields["decline_code"] = decline_code
    return 402, error_json("card_error", message, **fields)


# --- fixtures -----------------------------------------------------------------------------------------------

@pytest.fixture
def fake() -> FakeStripe:
    """A Stripe that knows the customer, its card and the plan's Price, and creates the subscription."""
    fake = FakeStripe()
    fake.on("GET", f"/v1/payment_methods/{PM}", (200, payment_method_json()))
    fake.on("GET", "/v1/prices", (200, price_list_json()))
    fake.on("GET", "/v1/promotion_codes", (200, promotion_code_list_json()))
    fake.on("POST", "/v1/subscriptions", (200, subscription_json()))
    fake.on("DELETE", f"/v1/subscriptions/{SUB}", (200, subscription_json(status="canceled")))
    return fake


@pytest.fixture
def provider(fake: FakeStripe) -> StripeProvider:
    return StripeProvider("sk_test_fake", http_client=fake, max_network_retries=0)


def subscribe(provider: StripeProvider, key: str = "license-7-5e0c1a2b3c4d5e6f",
              discount: SubscriptionDiscount | None = None) -> SubscriptionData:
    return provider.create_subscription(
        customer_id=CUSTOMER, payment_method_id=PM, product_name="Security Awareness Training Business",
        plan_code="awareness-business", unit_amount=1900, currency="usd", quantity=5, discount=discount,
        description="Sales team", metadata={"account_id": "3", "license_id": "7"}, idempotency_key=key)


WELCOME20 = SubscriptionDiscount(percent_off=20, amount_off=None, months=None, coupon_code="WELCOME20")


# --- subscriptions ------------------------------------------------------------------------------------------

def test_the_subscription_request_names_price_quantity_license_coupon_and_key(fake: FakeStripe,
                                                                            provider: StripeProvider) -> None:
    sub = subscribe(provider, discount=WELCOME20)

    [lookup] = [s for s in fake.sent if s.path == "/v1/prices"]
    assert (lookup.method, lookup.params["lookup_keys[0]"], lookup.params["active"]) == (
        "GET", "awareness-business", "true")
    # The coupon goes on as its active promotion code, so that Stripe applies the code's limits too.
    [promo] = [s for s in fake.sent if s.path == "/v1/promotion_codes"]
    assert (promo.method, promo.params) == ("GET", {"code": "WELCOME20", "active": "true", "limit": "1"})
    [create] = fake.posts("/v1/subscriptions")
    assert create.params == {
        "customer": CUSTOMER,
        "items[0][price]": PRICE,
        "items[0][quantity]": "5",
        "default_payment_method": PM,
        "description": "Sales team",
        "metadata[account_id]": "3",
        "metadata[license_id]": "7",
        "metadata[reference_name]": "Sales team",
        "discounts[0][promotion_code]": PROMO,
        "payment_behavior": "allow_incomplete",
        "expand[0]": "latest_invoice",
    }
    assert create.idempotency_key == "license-7-5e0c1a2b3c4d5e6f:subscription"

    # The answer, in the interface's terms: the discount from total_discount_amounts, the unit price from
    # the line's pricing, the license's reference name on the line.
    assert (sub.provider_id, sub.status) == (SUB, "active")
    invoice = sub.latest_invoice
    assert (invoice.provider_id, invoice.number, invoice.status) == (INVOICE, "0759376C-0001", "paid")
    assert (invoice.subtotal, invoice.discount, invoice.total) == (9500, 1900, 7600)
    [line] = invoice.lines
    assert (line.quantity, line.unit_amount, line.amount) == (5, 1900, 9500)
    assert line.description == "Sales team · 5 × Security Awareness Training Business (at $19.00 / month)"


def test_without_a_coupon_no_discount_is_sent(fake: FakeStripe, provider: StripeProvider) -> None:
    fake.on("POST", "/v1/subscriptions", (200, subscription_json(invoice=invoice_json(discount=0))))
    assert subscribe(provider).latest_invoice.discount == 0
    [create] = fake.posts("/v1/subscriptions")
    assert not any(name.startswith("discounts") for name in create.params)


def test_a_coupon_without_an_active_promotion_code_in_stripe_charges_nothing(fake: FakeStripe,
                                                                            provider: StripeProvider) -> None:
    fake.on("GET", "/v1/promotion_codes", (200, promotion_code_list_json(empty=True)))
    with pytest.raises(PaymentError) as info:
        subscribe(provider, discount=WELCOME20)
    assert (info.value.code, info.value.field) == ("coupon_unavailable", "coupon_code")
    assert "can't be used right now" in info.value.message
    assert fake.posts("/v1/subscriptions") == []


def test_a_retry_with_the_same_key_sends_the_same_key(fake: FakeStripe, provider: StripeProvider) -> None:
    fake.on("POST", "/v1/subscriptions", (503, error_json("api_error", "An unknown error occurred")),
            (200, subscription_json()))
    with pytest.raises(ProviderUnavailable):
        subscribe(provider, key="license-7-same")
    assert subscribe(provider, key="license-7-same").provider_id == SUB
    subscribe(provider, key="license-8-other")
    keys = [s.idempotency_key for s in fake.posts("/v1/subscriptions")]
    assert keys == ["license-7-same:subscription", "license-7-same:subscription", "license-8-other:subscription"]


def test_stripe_pythons_own_network_retry_repeats_the_key(fake: FakeStripe) -> None:
    fake.on("POST", "/v1/subscriptions", stripe.APIConnectionError("connection reset", should_retry=True),
            (200, subscription_json()))
    provider = StripeProvider("sk_test_fake", http_client=fake, max_network_retries=1)
    assert subscribe(provider, key="license-7-net").status == "active"
    assert [s.idempotency_key for s in fake.posts("/v1/subscriptions")] == ["license-7-net:subscription"] * 2


@pytest.mark.parametrize("answer", [
    (429, error_json("invalid_request_error", "Too many requests hit the API too quickly.", code="rate_limit")),
    stripe.APIConnectionError("Read timed out. (read timeout=20)", should_retry=True),
    (500, error_json("api_error", "An unknown error occurred")),
    (409, error_json("idempotency_error", "There is currently another in-progress request using this Stripe "
                     "Idempotency Key.", code="idempotency_key_in_use")),
], ids=["429", "connection", "500", "409-key-in-use"])
def test_outages_are_provider_unavailable(fake: FakeStripe, provider: StripeProvider, answer: Any) -> None:
    fake.on("POST", "/v1/subscriptions", answer)
    with pytest.raises(ProviderUnavailable) as info:
        subscribe(provider)
    assert info.value.code == "provider_unavailable"
    assert "try again" in info.value.message


@pytest.mark.parametrize(("answer", "code", "decline_code", "message"), [
    (card_error("card_declined", "Your card was declined.", "generic_decline"),
     "card_declined", "generic_decline", "Your card was declined."),
    (card_error("card_declined", "Your card was declined.", "do_not_honor"),
     "card_declined", "do_not_honor", "Your card was declined."),
    (card_error("card_declined", "Your card has insufficient funds.", "insufficient_funds"),
     "card_declined", "insufficient_funds", "Your card has insufficient funds."),
    (card_error("expired_card", "Your card has expired.", "expired_card"),
     "expired_card", "expired_card", "Your card has expired."),
], ids=["generic", "do-not-honor", "insufficient-funds", "expired"])
def test_a_402_decline_is_card_declined_with_the_sandboxs_message(
        fake: FakeStripe, provider: StripeProvider, answer: Any, code: str, decline_code: str, message: str) -> None:
    fake.on("POST", "/v1/subscriptions", answer)
    with pytest.raises(CardDeclined) as info:
        subscribe(provider)
    assert (info.value.code, info.value.decline_code, info.value.message) == (code, decline_code, message)
    assert not any(s.method == "DELETE" for s in fake.sent)  # Stripe kept no subscription: nothing to cancel


def test_a_processing_error_and_3d_secure_are_payment_errors_not_declines(fake: FakeStripe,
                                                                        provider: StripeProvider) -> None:
    fake.on("POST", "/v1/subscriptions", card_error("processing_error", "An error occurred while processing your card."))
    with pytest.raises(PaymentError) as info:
        subscribe(provider)
    assert not isinstance(info.value, CardDeclined)
    assert (info.value.code, info.value.message) == (
        "processing_error", "An error occurred while processing your card. Try again in a little bit.")

    # An older integration's answer (error_if_incomplete) would be the same kind of error, not a decline.
    fake.on("POST", "/v1/subscriptions", card_error(
        "subscription_payment_intent_requires_action", "Payment for this subscription requires additional user "
        "action before it can be completed successfully."))
    with pytest.raises(PaymentError) as info:
        subscribe(provider)
    assert not isinstance(info.value, (CardDeclined, ActionRequired))
    assert info.value.code == "requires_action" and "3-D Secure" in info.value.message


def incomplete(fake: FakeStripe, intent: dict[str, Any], *, now: dict[str, Any] | None = None) -> None:
    """Stripe answers the create with an incomplete subscription whose first payment is `intent`; asked again,
    the subscription is `now` (by default still incomplete)."""
    waiting = subscription_json(status="incomplete", invoice=invoice_json(status="open", number=None))
    fake.on("POST", "/v1/subscriptions", (200, waiting))
    fake.on("GET", f"/v1/subscriptions/{SUB}", (200, now or waiting))
    fake.on("GET", "/v1/invoice_payments", (200, invoice_payments_json(intent)))


def test_a_first_payment_waiting_for_3d_secure_is_left_for_the_browser(fake: FakeStripe,
                                                                      provider: StripeProvider) -> None:
    incomplete(fake, payment_intent_json("requires_action"))
    with pytest.raises(ActionRequired) as info:
        subscribe(provider)
    assert (info.value.subscription_id, info.value.client_secret) == (
        SUB, "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8")
    # The subscription is looked at as it is now (a replayed key answers with the first response)...
    [fresh] = [s for s in fake.sent if s.path == f"/v1/subscriptions/{SUB}"]
    assert (fresh.method, fresh.params) == ("GET", {"expand[0]": "latest_invoice"})
    [payments] = [s for s in fake.sent if s.path == "/v1/invoice_payments"]
    assert (payments.params["invoice"], payments.params["expand[0]"]) == (INVOICE, "data.payment.payment_intent")
    # ... and kept, waiting for the customer: nothing cancelled.
    assert all(s.method != "DELETE" for s in fake.sent)


def test_a_replayed_incomplete_answer_of_a_subscription_paid_since_gives_the_paid_subscription(
        fake: FakeStripe, provider: StripeProvider) -> None:
    incomplete(fake, payment_intent_json("succeeded"), now=subscription_json())
    sub = subscribe(provider)
    assert (sub.provider_id, sub.status, sub.latest_invoice.status) == (SUB, "active", "paid")
    assert all(s.method != "DELETE" for s in fake.sent)


def test_an_incomplete_first_invoice_declined_is_cancelled_as_a_decline(fake: FakeStripe,
                                                                       provider: StripeProvider) -> None:
    incomplete(fake, payment_intent_json("requires_payment_method", {
        "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds."}))
    with pytest.raises(CardDeclined) as info:
        subscribe(provider)
    assert info.value.message == "Your card has insufficient funds."
    assert [(s.method, s.path) for s in fake.sent][-1] == ("DELETE", f"/v1/subscriptions/{SUB}")


def test_a_failed_3d_secure_step_is_cancelled_with_its_own_message(fake: FakeStripe,
                                                                   provider: StripeProvider) -> None:
    incomplete(fake, payment_intent_json("requires_payment_method", {
        "type": "card_error", "code": "payment_intent_authentication_failure",
        "message": "We are unable to authenticate your payment method."}))
    with pytest.raises(PaymentError) as info:
        subscribe(provider)
    assert not isinstance(info.value, (CardDeclined, ActionRequired))
    assert info.value.code == "requires_action" and "was not confirmed" in info.value.message
    assert ("DELETE", f"/v1/subscriptions/{SUB}") in [(s.method, s.path) for s in fake.sent]


def test_an_incomplete_subscription_whose_cancel_fails_is_unavailable_not_undone(fake: FakeStripe,
                                                                               provider: StripeProvider) -> None:
    """The purchase keeps a license pending on ProviderUnavailable; its retry finds the same incomplete
    subscription (find_subscription) and cancels it then."""
    incomplete(fake, payment_intent_json("requires_payment_method", {"type": "card_error", "code": "card_declined"}))
    fake.on("DELETE", f"/v1/subscriptions/{SUB}", stripe.APIConnectionError("connection refused"))
    with pytest.raises(ProviderUnavailable):
        subscribe(provider)


def test_the_subscription_of_an_earlier_attempt_is_found_by_its_license(fake: FakeStripe,
                                                                        provider: StripeProvider) -> None:
    other = {**subscription_json(), "id": "sub_other", "metadata": {"license_id": "8", "purchase_key": "k8"}}
    reused = {**subscription_json(), "id": "sub_reused", "metadata": {"license_id": "7", "purchase_key": "old"}}
    mine = {**subscription_json(), "metadata": {"license_id": "7", "purchase_key": "k7"}}
    fake.on("GET", "/v1/subscriptions", (200, {"object": "list", "url": "/v1/subscriptions", "has_more": False,
                                               "data": [other, reused, mine]}))
    fake.on("GET", f"/v1/subscriptions/{SUB}", (200, subscription_json()))
    found = provider.find_subscription(customer_id=CUSTOMER, license_id="7", purchase_key="k7")
    assert found is not None and (found.provider_id, found.latest_invoice.total) == (SUB, 7600)
    [listed] = [s for s in fake.sent if s.path == "/v1/subscriptions"]
    assert (listed.method, listed.params) == ("GET", {"customer": CUSTOMER, "status": "all", "limit": "100"})
    assert provider.find_subscription(customer_id=CUSTOMER, license_id="9", purchase_key="k9") is None


def test_a_look_up_that_fails_is_never_taken_for_a_refused_payment(fake: FakeStripe,
                                                                   provider: StripeProvider) -> None:
    """A rotated key (401) while looking for an earlier attempt's subscription says nothing about its payment:
    the purchase must stay pending (ProviderUnavailable), not be undone."""
    fake.on("GET", "/v1/subscriptions", (401, error_json("invalid_request_error", "Invalid API Key provided")))
    with pytest.raises(ProviderUnavailable):
        provider.find_subscription(customer_id=CUSTOMER, license_id="7", purchase_key="k7")


@pytest.mark.parametrize("paying", ["succeeded", "processing"])
def test_a_payment_that_went_through_but_is_not_booked_yet_is_never_cancelled(
        fake: FakeStripe, provider: StripeProvider, paying: str) -> None:
    incomplete(fake, payment_intent_json(paying))
    with pytest.raises(ProviderUnavailable):
        subscribe(provider)
    assert all(s.method != "DELETE" for s in fake.sent)


def test_no_price_or_another_price_charges_nothing(fake: FakeStripe, provider: StripeProvider) -> None:
    for prices in (price_list_json(empty=True), price_list_json(unit_amount=2100), price_list_json(interval="year")):
        fake.on("GET", "/v1/prices", (200, prices))
        with pytest.raises(PaymentError) as info:
            subscribe(provider)
        assert info.value.code in {"price_missing", "price_mismatch"}
    assert fake.posts("/v1/subscriptions") == []


def test_a_card_of_another_customer_is_not_charged(fake: FakeStripe, provider: StripeProvider) -> None:
    fake.on("GET", f"/v1/payment_methods/{PM}", (200, payment_method_json(customer="cus_someoneelse")))
    with pytest.raises(PaymentError) as info:
        subscribe(provider)
    assert (info.value.code, info.value.message) == ("resource_missing", "This payment method is no longer available.")
    assert fake.posts("/v1/subscriptions") == []


def test_a_key_reused_with_other_details_is_refused(fake: FakeStripe, provider: StripeProvider) -> None:
    fake.on("POST", "/v1/subscriptions", (400, error_json(
        "idempotency_error", "Keys for idempotent requests can only be used with the same parameters they were "
        "first used with. Try using a key other than 'license-7-5e0c1a2b3c4d5e6f:subscription' if you meant to "
        "execute a different request.")))
    with pytest.raises(PaymentError) as info:
        subscribe(provider)
    assert (info.value.code, info.value.message) == (
        "idempotency_error", "This request was already sent with different details. Reload the page and try again.")


def test_cancelling_a_cancelled_subscription_is_harmless(fake: FakeStripe, provider: StripeProvider) -> None:
    fake.on("DELETE", f"/v1/subscriptions/{SUB}", (400, error_json(
        "invalid_request_error", "A canceled subscription can only update its cancellation_details and metadata.")))
    fake.on("GET", f"/v1/subscriptions/{SUB}", (200, subscription_json(status="canceled")))
    provider.cancel_subscription(subscription_id=SUB)
    fake.on("GET", f"/v1/subscriptions/{SUB}", (200, subscription_json(status="active")))
    with pytest.raises(PaymentError):
        provider.cancel_subscription(subscription_id=SUB)


# --- customers, cards, invoices -----------------------------------------------------------------------------

def test_the_customer_is_created_once_per_account(fake: FakeStripe, provider: StripeProvider) -> None:
    fake.on("POST", "/v1/customers", (200, customer_json()))
    fake.on("GET", "/v1/customers/cus_gone", (404, error_json(
        "invalid_request_error", "No such customer: 'cus_gone'", code="resource_missing", param="id")))
    fake.on("GET", f"/v1/customers/{CUSTOMER}", (200, customer_json()))

    assert provider.ensure_customer(account_id=7, account_name="Acme", customer_id=None) == CUSTOMER
    assert provider.ensure_customer(account_id=7, account_name="Acme", customer_id=None) == CUSTOMER
    assert provider.ensure_customer(account_id=7, account_name="Acme", customer_id=CUSTOMER) == CUSTOMER
    assert provider.ensure_customer(account_id=7, account_name="Acme", customer_id="cus_gone") == CUSTOMER

    creates = fake.posts("/v1/customers")
    assert [c.params for c in creates] == [{"name": "Acme", "metadata[account_id]": "7"}] * 3
    # The same key for the same situation (two first requests at once get one customer); a new one to
    # replace a customer Stripe no longer knows.
    assert [c.idempotency_key for c in creates] == ["customer-of-account-7-replacing-none"] * 2 + [
        "customer-of-account-7-replacing-cus_gone"]


def test_add_card_sends_its_keys_and_makes_the_default(fake: FakeStripe, provider: StripeProvider) -> None:
    fake.on("POST", "/v1/payment_methods", (200, payment_method_json(customer=None)))
    fake.on("POST", f"/v1/payment_methods/{PM}/attach", (200, payment_method_json()))
    fake.on("POST", f"/v1/customers/{CUSTOMER}", (200, customer_json(invoice_settings={
        "custom_fields": None, "default_payment_method": PM, "footer": None, "rendering_options": None})))
    saved = provider.add_card(customer_id=CUSTOMER, card=CardDetails("4242424242424242", 12, 2034, "123"),
                              make_default=True, idempotency_key="add-card-1")
    assert (saved.provider_id, saved.brand, saved.last4, saved.exp_month, saved.exp_year) == (
        PM, "visa", "4242", 12, 2034)
    [create] = fake.posts("/v1/payment_methods")
    assert (create.params["type"], create.params["card[number]"], create.idempotency_key) == (
        "card", "4242424242424242", "add-card-1:payment_method")
    [attach] = fake.posts(f"/v1/payment_methods/{PM}/attach")
    assert (attach.params, attach.idempotency_key) == ({"customer": CUSTOMER}, "add-card-1:attach")
    [default] = fake.posts(f"/v1/customers/{CUSTOMER}")
    assert default.params == {"invoice_settings[default_payment_method]": PM}


def test_card_numbers_never_go_through_the_server_with_a_live_key(fake: FakeStripe) -> None:
    live = StripeProvider("sk_live_fake", http_client=fake, max_network_retries=0)
    with pytest.raises(PaymentError) as info:
        live.add_card(customer_id=CUSTOMER, card=CardDetails("4242424242424242", 12, 2034, "123"), make_default=True,
                      idempotency_key="add-card-live")
    assert info.value.code == "card_entry_unsupported"
    assert fake.sent == []


SETUP_INTENT = "seti_1Mm8s8LkdIwHu7ix0OXBfTRG"


def setup_intent_json(status: str = "requires_payment_method", payment_method: str | None = None,
                      customer: str = CUSTOMER) -> dict[str, Any]:
    return {"id": SETUP_INTENT, "object": "setup_intent", "client_secret":
            f"{SETUP_INTENT}_secret_NXDICkPqPeiBTAFqWmkbff09lRmSVXe", "customer": customer,
            "payment_method": payment_method, "payment_method_types": ["card"], "status": status,
            "usage": "off_session"}


def test_the_payment_element_flow(fake: FakeStripe, provider: StripeProvider) -> None:
    fake.on("POST", "/v1/setup_intents", (200, setup_intent_json()))
    intent = provider.create_setup_intent(customer_id=CUSTOMER, idempotency_key="seti-key")
    assert intent.client_secret.startswith(f"{SETUP_INTENT}_secret_") and intent.provider_id == SETUP_INTENT
    [create] = fake.posts("/v1/setup_intents")
    assert create.params == {"customer": CUSTOMER, "usage": "off_session", "payment_method_types[0]": "card"}
    assert create.idempotency_key == "seti-key:setup_intent"
    # Stripe attached the card when the browser confirmed the SetupIntent: nothing to attach here.
    fake.on("GET", f"/v1/setup_intents/{SETUP_INTENT}", (200, setup_intent_json("succeeded", PM)))
    saved = provider.attach_confirmed_payment_method(customer_id=CUSTOMER, setup_intent_id=SETUP_INTENT,
                                                     payment_method_id=PM, make_default=False)
    assert (saved.last4, saved.fingerprint) == ("4242", "Xt5EWLLDS7FJjR1c")
    assert [s for s in fake.sent if s.method == "POST" and s.path != "/v1/setup_intents"] == []


@pytest.mark.parametrize("intent", [
    setup_intent_json(),  # never confirmed
    setup_intent_json("succeeded", "pm_another"),  # confirmed with another card
    setup_intent_json("succeeded", PM, customer="cus_someone_else"),  # another customer's
])
def test_only_the_card_of_the_customers_own_succeeded_setup_intent_is_kept(fake: FakeStripe, provider: StripeProvider,
                                                                           intent: dict[str, Any]) -> None:
    fake.on("GET", f"/v1/setup_intents/{SETUP_INTENT}", (200, intent))
    with pytest.raises(PaymentError) as info:
        provider.attach_confirmed_payment_method(customer_id=CUSTOMER, setup_intent_id=SETUP_INTENT,
                                                 payment_method_id=PM, make_default=True)
    assert info.value.code == "setup_unconfirmed"
    assert [s.path for s in fake.sent] == [f"/v1/setup_intents/{SETUP_INTENT}"]  # nothing attached or changed


def test_invoices_map_from_stripes_shapes(fake: FakeStripe, provider: StripeProvider) -> None:
    fake.on("GET", "/v1/invoices", (200, {"object": "list", "url": "/v1/invoices", "has_more": False, "data": [
        invoice_json(invoice_id="in_newer", created=1680900000, quantity=2, discount=0, number="0759376C-0002"),
        invoice_json(invoice_id="in_draft", created=1680990000, status="draft", number=None),
        invoice_json(invoice_id="in_older", created=1680893993),
    ]}))
    invoices = provider.list_invoices(customer_id=CUSTOMER)
    [listing] = fake.sent
    assert (listing.method, listing.params["customer"]) == ("GET", CUSTOMER)
    assert [(i.provider_id, i.number, i.subtotal, i.discount, i.total) for i in invoices] == [
        ("in_older", "0759376C-0001", 9500, 1900, 7600), ("in_newer", "0759376C-0002", 3800, 0, 3800)]
    assert invoices[1].lines[0].description == (
        "Sales team · 2 × Security Awareness Training Business (at $19.00 / month)")


def test_stripes_own_pdf_of_an_invoice_is_asked_for_by_its_id(fake: FakeStripe, provider: StripeProvider) -> None:
    pdf = f"https://pay.stripe.com/invoice/acct_1M2JTkLkdIwHu7ix/test_YWNjdF8x/{INVOICE}/pdf?s=ap"
    fake.on("GET", f"/v1/invoices/{INVOICE}", (200, invoice_json(invoice_pdf=pdf)))
    fake.on("GET", "/v1/invoices/in_draft", (200, invoice_json(invoice_id="in_draft", status="draft", number=None,
                                                               invoice_pdf=None)))
    fake.on("GET", "/v1/invoices/in_gone", (404, error_json("invalid_request_error", "No such invoice: 'in_gone'",
                                                            code="resource_missing", param="id")))
    assert provider.hosts_invoice_documents
    assert provider.invoice_document_url(invoice_id=INVOICE) == pdf
    assert provider.invoice_document_url(invoice_id="in_draft") is None
    assert provider.invoice_document_url(invoice_id="in_gone") is None
    assert [(s.method, s.path) for s in fake.sent] == [("GET", f"/v1/invoices/{i}") for i in (INVOICE, "in_draft",
                                                                                               "in_gone")]


# --- the default card, a subscription's card, removing a card ------------------------------------------------

def test_set_default_checks_the_card_is_the_customers_then_updates_the_customer(fake: FakeStripe,
                                                                                provider: StripeProvider) -> None:
    fake.on("POST", f"/v1/customers/{CUSTOMER}", (200, customer_json(invoice_settings={
        "custom_fields": None, "default_payment_method": PM, "footer": None, "rendering_options": None})))
    provider.set_default_payment_method(customer_id=CUSTOMER, payment_method_id=PM)
    assert [(s.method, s.path, s.params) for s in fake.sent] == [
        ("GET", f"/v1/payment_methods/{PM}", {}),
        ("POST", f"/v1/customers/{CUSTOMER}", {"invoice_settings[default_payment_method]": PM}),
    ]


def test_switching_a_subscriptions_card_is_one_update(fake: FakeStripe, provider: StripeProvider) -> None:
    fake.on("POST", f"/v1/subscriptions/{SUB}", (200, subscription_json()))
    provider.set_subscription_payment_method(subscription_id=SUB, payment_method_id=PM)
    [update] = fake.sent
    assert (update.method, update.path, update.params) == (
        "POST", f"/v1/subscriptions/{SUB}", {"default_payment_method": PM})


@pytest.mark.parametrize("answer", [
    # A card that is not attached to the subscription's customer (another customer's, or detached).
    (400, error_json("invalid_request_error", f"The customer does not have a payment method with the ID {PM}. The "
                     "payment method must be attached to the customer.", param="default_payment_method")),
    (400, error_json("invalid_request_error", f"No such PaymentMethod: '{PM}'", code="resource_missing",
                     param="default_payment_method")),
    (404, error_json("invalid_request_error", f"No such subscription: '{SUB}'", code="resource_missing", param="id")),
], ids=["card-not-the-customers", "no-such-card", "no-such-subscription"])
def test_a_subscription_or_card_stripe_does_not_have_is_resource_missing(fake: FakeStripe, provider: StripeProvider,
                                                                        answer: Any) -> None:
    fake.on("POST", f"/v1/subscriptions/{SUB}", answer)
    with pytest.raises(PaymentError) as info:
        provider.set_subscription_payment_method(subscription_id=SUB, payment_method_id=PM)
    assert (type(info.value), info.value.code) == (PaymentError, "resource_missing")


def test_switching_a_subscriptions_card_during_an_outage_is_provider_unavailable(fake: FakeStripe,
                                                                                provider: StripeProvider) -> None:
    fake.on("POST", f"/v1/subscriptions/{SUB}", (503, error_json("api_error", "An unknown error occurred")))
    with pytest.raises(ProviderUnavailable):
        provider.set_subscription_payment_method(subscription_id=SUB, payment_method_id=PM)


def test_removing_a_card_checks_it_is_the_customers_then_detaches_it(fake: FakeStripe,
                                                                    provider: StripeProvider) -> None:
    fake.on("POST", f"/v1/payment_methods/{PM}/detach", (200, payment_method_json(customer=None)))
    provider.remove_payment_method(customer_id=CUSTOMER, payment_method_id=PM)
    assert [(s.method, s.path, s.params) for s in fake.sent] == [
        ("GET", f"/v1/payment_methods/{PM}", {}),
        ("POST", f"/v1/payment_methods/{PM}/detach", {}),
    ]


@pytest.mark.parametrize("change", ["set_default_payment_method", "remove_payment_method"])
def test_a_card_of_another_customer_is_neither_made_the_default_nor_detached(fake: FakeStripe,
                                                                            provider: StripeProvider,
                                                                            change: str) -> None:
    fake.on("GET", f"/v1/payment_methods/{PM}", (200, payment_method_json(customer="cus_someoneelse")))
    with pytest.raises(PaymentError) as info:
        getattr(provider, change)(customer_id=CUSTOMER, payment_method_id=PM)
    assert info.value.code == "resource_missing"
    assert [(s.method, s.path) for s in fake.sent] == [("GET", f"/v1/payment_methods/{PM}")]


# --- renewals and changes -----------------------------------------------------------------------------------

ITEM = "si_NcLYdDxLHxlFo7"
PRORATION_DATE = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MORE_SEATS = ChargeFigures(currency="usd", subtotal=2533, discount=0, lines=(
    InvoiceLineData(description="Sales team · 2 more seats", quantity=2, unit_amount=1267, amount=2533),))


def change_invoice(*, status: str = "paid") -> dict[str, Any]:
    """The invoice of a change charged at once: the unused time of 5 seats credited, the rest of the period for
    7 charged."""
    invoice = invoice_json(status=status, quantity=7, discount=0, billing_reason="subscription_update",
                           number="0759376C-0002" if status == "paid" else None, invoice_id="in_change")
    credit = {**invoice["lines"]["data"][0], "id": "il_credit", "amount": -6333, "quantity": 5,
              "description": "Unused time on 5 × Security Awareness Training Business"}
    charged = {**invoice["lines"]["data"][0], "id": "il_charged", "amount": 8866, "quantity": 7,
               "description": "Remaining time on 7 × Security Awareness Training Business"}
    amount_due = 2533 if status != "void" else 0
    return {**invoice, "lines": {**invoice["lines"], "data": [credit, charged]}, "subtotal": 2533, "total": 2533,
            "amount_due": amount_due, "amount_paid": 2533 if status == "paid" else 0,
            "amount_remaining": 0 if status == "paid" else amount_due}


def change_seats(provider: StripeProvider, *, charge: ChargeFigures | None = MORE_SEATS,
                 when: datetime = PRORATION_DATE, key: str = "change-7-abc"):  # noqa: ANN201
    return provider.change_subscription(subscription_id=SUB, plan_code="awareness-business", unit_amount=1900,
                                        currency="usd", quantity=7, proration_date=when, charge=charge,
                                        idempotency_key=key)


@pytest.fixture
def changing(fake: FakeStripe) -> FakeStripe:
    """A Stripe that knows the subscription (one item of 5 seats) and applies a change once its invoice is paid."""
    fake.on("GET", f"/v1/subscriptions/{SUB}", (200, subscription_json()))
    fake.on("POST", f"/v1/subscriptions/{SUB}", (200, subscription_json(invoice=change_invoice())))
    return fake


def test_stripe_renews_by_itself_so_the_portal_never_charges_a_renewal(fake: FakeStripe,
                                                                      provider: StripeProvider) -> None:
    assert provider.renews_by_itself
    with pytest.raises(NotSupported):
        provider.charge_renewal(subscription_id=SUB, period_index=1, charge=MORE_SEATS, idempotency_key="renew-1")
    assert fake.sent == []


def test_a_change_charged_now_updates_the_one_item_prorated_as_of_the_portals_time(changing: FakeStripe,
                                                                                   provider: StripeProvider) -> None:
    invoice = change_seats(provider)

    assert [(s.method, s.path) for s in changing.sent] == [
        ("GET", f"/v1/subscriptions/{SUB}"), ("GET", "/v1/prices"), ("POST", f"/v1/subscriptions/{SUB}")]
    [lookup] = [s for s in changing.sent if s.path == "/v1/prices"]
    assert lookup.params["lookup_keys[0]"] == "awareness-business"
    [update] = changing.posts(f"/v1/subscriptions/{SUB}")
    assert update.params == {
        "items[0][id]": ITEM,  # the item replaced, not a second one added
        "items[0][price]": PRICE,
        "items[0][quantity]": "7",
        "proration_behavior": "always_invoice",
        "proration_date": str(int(PRORATION_DATE.timestamp())),
        "payment_behavior": "pending_if_incomplete",
        "expand[0]": "latest_invoice",
    }
    assert update.idempotency_key == "change-7-abc:change"
    assert invoice is not None
    assert (invoice.provider_id, invoice.status, invoice.total) == ("in_change", "paid", MORE_SEATS.total)
    assert [(line.quantity, line.amount) for line in invoice.lines] == [(5, -6333), (7, 8866)]
    assert invoice.lines[1].description.startswith("Sales team · Remaining time")


def test_a_change_with_nothing_due_returns_no_invoice(changing: FakeStripe, provider: StripeProvider) -> None:
    # No proration, so no new invoice: the subscription's latest is still its first.
    changing.on("POST", f"/v1/subscriptions/{SUB}", (200, subscription_json()))
    assert change_seats(provider, charge=None) is None
    assert change_seats(provider, charge=ChargeFigures(currency="usd", subtotal=0, discount=0, lines=())) is None


def unpaid_change(fake: FakeStripe, intent: dict[str, Any]) -> None:
    """Stripe answers the change with a pending update: the change's invoice open, its payment `intent`."""
    pending = {"billing_cycle_anchor": None, "expires_at": 1764500400, "subscription_items": [
        {"id": ITEM, "price": price_list_json()["data"][0], "quantity": 7}], "trial_end": None,
        "trial_from_plan": None}
    fake.on("POST", f"/v1/subscriptions/{SUB}", (200, subscription_json(invoice=change_invoice(status="open"),
                                                                        pending_update=pending)))
    fake.on("GET", "/v1/invoice_payments", (200, invoice_payments_json(intent)))
    fake.on("POST", "/v1/invoices/in_change/void", (200, change_invoice(status="void")))


@pytest.mark.parametrize(("decline", "behaviour"), [
    ({"code": "card_declined", "decline_code": "generic_decline"}, "card_declined"),
    ({"code": "card_declined", "decline_code": "insufficient_funds"}, "insufficient_funds"),
    ({"code": "expired_card"}, "expired_card"),
], ids=["generic", "insufficient-funds", "expired"])
def test_a_declined_change_is_discarded_and_raises_the_sandboxs_decline(
        changing: FakeStripe, provider: StripeProvider, decline: dict[str, str], behaviour: str) -> None:
    unpaid_change(changing, payment_intent_json("requires_payment_method", {"type": "card_error", **decline}))
    with pytest.raises(CardDeclined) as info:
        change_seats(provider)
    assert (info.value.code, info.value.decline_code, info.value.message) == DECLINES[behaviour]
    # The pending update is discarded by voiding its invoice; the subscription itself was never changed.
    [void] = changing.posts("/v1/invoices/in_change/void")
    assert (void.params, void.idempotency_key) == ({}, "change-7-abc:void")
    assert len(changing.posts(f"/v1/subscriptions/{SUB}")) == 1


def test_a_change_the_bank_wants_confirmed_is_discarded_too(changing: FakeStripe, provider: StripeProvider) -> None:
    unpaid_change(changing, payment_intent_json("requires_action"))
    with pytest.raises(PaymentError) as info:
        change_seats(provider)
    assert not isinstance(info.value, (CardDeclined, ActionRequired))
    assert info.value.code == "requires_action"
    assert len(changing.posts("/v1/invoices/in_change/void")) == 1


def test_a_pending_change_that_cannot_be_discarded_now_is_unavailable(changing: FakeStripe,
                                                                      provider: StripeProvider) -> None:
    """Its retry with the same key gets Stripe's first answer again, and voids then."""
    unpaid_change(changing, payment_intent_json("requires_payment_method", {"type": "card_error",
                                                                           "code": "card_declined"}))
    changing.on("POST", "/v1/invoices/in_change/void", (503, error_json("api_error", "An unknown error occurred")))
    with pytest.raises(ProviderUnavailable):
        change_seats(provider)


def test_a_change_stripe_refuses_outright_is_a_decline_with_nothing_to_discard(changing: FakeStripe,
                                                                              provider: StripeProvider) -> None:
    changing.on("POST", f"/v1/subscriptions/{SUB}",
                card_error("card_declined", "Your card has insufficient funds.", "insufficient_funds"))
    with pytest.raises(CardDeclined) as info:
        change_seats(provider)
    assert info.value.message == DECLINES["insufficient_funds"][2]
    assert [s.path for s in changing.sent if "/void" in s.path] == []


def test_a_change_is_refused_before_anything_is_sent_for_a_time_without_a_zone(fake: FakeStripe,
                                                                               provider: StripeProvider) -> None:
    with pytest.raises(ValueError, match="timezone"):
        change_seats(provider, when=datetime(2026, 11, 29, 12, 0))  # noqa: DTZ001 (the point of the test)
    assert fake.posts(f"/v1/subscriptions/{SUB}") == []


def test_the_preview_of_a_change_asks_stripe_for_the_same_invoice(changing: FakeStripe,
                                                                  provider: StripeProvider) -> None:
    changing.on("POST", "/v1/invoices/create_preview", (200, {**change_invoice(status="draft"), "id": None}))
    assert provider.preview_change(subscription_id=SUB, plan_code="awareness-business", unit_amount=1900,
                                   currency="usd", quantity=7, proration_date=PRORATION_DATE) == 2533
    [preview] = changing.posts("/v1/invoices/create_preview")
    assert preview.params == {
        "subscription": SUB,
        "subscription_details[items][0][id]": ITEM,
        "subscription_details[items][0][price]": PRICE,
        "subscription_details[items][0][quantity]": "7",
        "subscription_details[proration_date]": str(int(PRORATION_DATE.timestamp())),
        "subscription_details[proration_behavior]": "always_invoice",
    }
    assert changing.posts(f"/v1/subscriptions/{SUB}") == []  # nothing changed


def test_a_change_for_the_next_renewal_prorates_nothing(changing: FakeStripe, provider: StripeProvider) -> None:
    changing.on("POST", f"/v1/subscriptions/{SUB}", (200, subscription_json()))
    provider.schedule_change(subscription_id=SUB, plan_code="awareness-business", unit_amount=1900, currency="usd",
                             quantity=3)
    [update] = changing.posts(f"/v1/subscriptions/{SUB}")
    assert update.params == {"items[0][id]": ITEM, "items[0][price]": PRICE, "items[0][quantity]": "3",
                             "proration_behavior": "none"}


def test_cancel_at_period_end_and_resume_are_one_update_each(fake: FakeStripe, provider: StripeProvider) -> None:
    fake.on("POST", f"/v1/subscriptions/{SUB}", (200, subscription_json()))
    provider.set_cancel_at_period_end(subscription_id=SUB, cancel=True)
    provider.set_cancel_at_period_end(subscription_id=SUB, cancel=False)
    assert [(s.method, s.path, s.params) for s in fake.sent] == [
        ("POST", f"/v1/subscriptions/{SUB}", {"cancel_at_period_end": "true"}),
        ("POST", f"/v1/subscriptions/{SUB}", {"cancel_at_period_end": "false"})]


@pytest.mark.parametrize("change", ["change_subscription", "preview_change", "schedule_change"])
def test_changes_of_a_subscription_stripe_does_not_have_or_of_another_price_send_nothing(
        fake: FakeStripe, provider: StripeProvider, change: str) -> None:
    arguments = {"subscription_id": SUB, "plan_code": "awareness-business", "unit_amount": 1900, "currency": "usd",
                 "quantity": 7}
    if change != "schedule_change":
        arguments["proration_date"] = PRORATION_DATE
    if change == "change_subscription":
        arguments |= {"charge": MORE_SEATS, "idempotency_key": "change-x"}
    fake.on("GET", f"/v1/subscriptions/{SUB}", (404, error_json(
        "invalid_request_error", f"No such subscription: '{SUB}'", code="resource_missing", param="id")))
    with pytest.raises(PaymentError) as info:
        getattr(provider, change)(**arguments)
    assert info.value.code == "resource_missing"

    fake.on("GET", f"/v1/subscriptions/{SUB}", (200, subscription_json()))
    fake.on("GET", "/v1/prices", (200, price_list_json(unit_amount=2100)))
    with pytest.raises(PaymentError) as info:
        getattr(provider, change)(**arguments)
    assert info.value.code == "price_mismatch"
    assert [s for s in fake.sent if s.method == "POST"] == []


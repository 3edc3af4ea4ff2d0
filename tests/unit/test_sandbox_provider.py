"""The sandbox provider behaves like Stripe in test mode."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cf_portal.db import all_metadata
from cf_portal.payments.cards import parse_card
from cf_portal.payments.provider import CardDeclined, CardDetails, PaymentError
from cf_portal.payments.sandbox import SandboxProvider
from tests.unit.conftest import TODAY


def card(number: str = "4242424242424242", month: int = 12, year: int = 2034) -> CardDetails:
    return CardDetails(number=number, exp_month=month, exp_year=year, cvc="123")


def subscribe(provider: SandboxProvider, customer: str, pm: str, key: str, **overrides):  # noqa: ANN003, ANN201
    params = dict(customer_id=customer, payment_method_id=pm, product_name="Phishing Simulator Standard",
                  plan_code="phishing-standard", unit_amount=1200, currency="usd", quantity=3, discount=None,
                  description="Sales team", metadata={"license_id": "1"}, idempotency_key=key)
    params.update(overrides)
    return provider.create_subscription(**params)


@pytest.mark.parametrize(("number", "expiry", "cvc", "field"), [
    ("4242 4242 4242 4241", "12/34", "123", "card_number"),  # fails the Luhn check
    ("4242", "12/34", "123", "card_number"),
    ("", "12/34", "123", "card_number"),
    ("4242 4242 4242 4242", "10/26", "123", "expiry"),  # in the past on 2026-11-29
    ("4242 4242 4242 4242", "13/30", "123", "expiry"),
    ("4242 4242 4242 4242", "soon", "123", "expiry"),
    ("4242 4242 4242 4242", "12/34", "12", "cvc"),
    ("3782 822463 10005", "12/34", "123", "cvc"),  # American Express wants 4 digits
])
def test_card_entry_is_refused_with_the_field_named(number: str, expiry: str, cvc: str, field: str) -> None:
    with pytest.raises(PaymentError) as info:
        parse_card(number, expiry, cvc, today=TODAY)
    assert info.value.field == field


def test_card_entry_accepts_spaces_and_both_year_forms() -> None:
    assert parse_card("4242 4242 4242 4242", "11 / 26", "123", today=TODAY).exp_year == 2026
    assert parse_card("4242-4242-4242-4242", "1/2031", "123", today=TODAY).exp_month == 1


def test_only_brand_last4_and_expiry_are_stored(engine: sa.Engine, provider: SandboxProvider) -> None:
    customer = provider.ensure_customer(account_id=1, account_name="Acme", customer_id=None)
    saved = provider.add_card(customer_id=customer, card=card("5555555555554444"), make_default=True,
                              idempotency_key="k-card-1")
    assert (saved.brand, saved.last4, saved.exp_month, saved.exp_year) == ("mastercard", "4444", 12, 2034)
    with engine.connect() as conn:
        for table in all_metadata().sorted_tables:
            for row in conn.execute(table.select()):
                assert "5555555555554444" not in repr(tuple(row)), f"card number stored in {table.name}"
    assert "5555555555554444" not in repr(card("5555555555554444"))


def test_customer_is_created_once_per_account(provider: SandboxProvider) -> None:
    first = provider.ensure_customer(account_id=7, account_name="Acme", customer_id=None)
    assert provider.ensure_customer(account_id=7, account_name="Acme", customer_id=None) == first
    assert provider.ensure_customer(account_id=7, account_name="Acme", customer_id=first) == first


def test_subscription_charges_and_records_an_invoice_with_the_description(provider: SandboxProvider) -> None:
    customer = provider.ensure_customer(account_id=1, account_name="Acme", customer_id=None)
    pm = provider.add_card(customer_id=customer, card=card(), make_default=True, idempotency_key="k1")
    sub = subscribe(provider, customer, pm.provider_id, "k-sub-1")
    assert sub.status == "active"
    assert (sub.latest_invoice.subtotal, sub.latest_invoice.total) == (3600, 3600)
    assert "Sales team" in sub.latest_invoice.lines[0].description
    assert [inv.provider_id for inv in provider.list_invoices(customer_id=customer)] == [sub.latest_invoice.provider_id]


@pytest.mark.parametrize(("number", "code", "decline_code"), [
    ("4000000000000002", "card_declined", "generic_decline"),
    ("4000000000009995", "card_declined", "insufficient_funds"),
    ("4000000000000069", "expired_card", None),
])
def test_declining_test_cards_are_refused_when_charged(provider: SandboxProvider, number: str, code: str,
                                                       decline_code: str | None) -> None:
    customer = provider.ensure_customer(account_id=1, account_name="Acme", customer_id=None)
    pm = provider.add_card(customer_id=customer, card=card(number), make_default=True, idempotency_key="k1")
    with pytest.raises(CardDeclined) as info:
        subscribe(provider, customer, pm.provider_id, "k-sub")
    assert (info.value.code, info.value.decline_code) == (code, decline_code)
    assert provider.list_invoices(customer_id=customer) == []


def test_same_idempotency_key_gives_the_same_result(engine: sa.Engine, provider: SandboxProvider) -> None:
    customer = provider.ensure_customer(account_id=1, account_name="Acme", customer_id=None)
    pm = provider.add_card(customer_id=customer, card=card(), make_default=True, idempotency_key="k1")
    first = subscribe(provider, customer, pm.provider_id, "k-same")
    again = subscribe(provider, customer, pm.provider_id, "k-same")
    assert again == first
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sandbox_subscription")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM sandbox_invoice")).scalar_one() == 1
    with pytest.raises(PaymentError) as info:
        subscribe(provider, customer, pm.provider_id, "k-same", quantity=4)
    assert info.value.code == "idempotency_error"


def test_a_decline_is_replayed_for_its_key(provider: SandboxProvider) -> None:
    customer = provider.ensure_customer(account_id=1, account_name="Acme", customer_id=None)
    pm = provider.add_card(customer_id=customer, card=card("4000000000000002"), make_default=True,
                           idempotency_key="k1")
    for _ in range(2):
        with pytest.raises(CardDeclined):
            subscribe(provider, customer, pm.provider_id, "k-declined")


def test_discounts_and_cancel(provider: SandboxProvider) -> None:
    from cf_portal.payments.provider import SubscriptionDiscount

    customer = provider.ensure_customer(account_id=1, account_name="Acme", customer_id=None)
    pm = provider.add_card(customer_id=customer, card=card(), make_default=True, idempotency_key="k1")
    sub = subscribe(provider, customer, pm.provider_id, "k-d",
                    discount=SubscriptionDiscount(percent_off=None, amount_off=5000, months=1, coupon_code="BIG"))
    assert (sub.latest_invoice.discount, sub.latest_invoice.total) == (3600, 0)  # never below zero
    provider.cancel_subscription(subscription_id=sub.provider_id)
    provider.cancel_subscription(subscription_id=sub.provider_id)  # cancelling twice is harmless
    with pytest.raises(PaymentError):
        provider.cancel_subscription(subscription_id="sub_missing")


def test_removed_cards_cannot_be_charged(provider: SandboxProvider) -> None:
    customer = provider.ensure_customer(account_id=1, account_name="Acme", customer_id=None)
    pm = provider.add_card(customer_id=customer, card=card(), make_default=True, idempotency_key="k1")
    assert [c.last4 for c in provider.list_payment_methods(customer_id=customer)] == ["4242"]
    provider.remove_payment_method(customer_id=customer, payment_method_id=pm.provider_id)
    assert provider.list_payment_methods(customer_id=customer) == []
    with pytest.raises(PaymentError):
        subscribe(provider, customer, pm.provider_id, "k-removed")


def test_every_provider_has_every_step_the_interface_declares() -> None:
    from cf_portal.payments.provider import PaymentProvider
    from cf_portal.payments.stripe_provider import StripeProvider

    declared = {name for name in vars(PaymentProvider) if not name.startswith("_")} | {"name"}
    declared |= set(PaymentProvider.__annotations__)
    for implementation in (SandboxProvider, StripeProvider):
        assert declared <= set(dir(implementation)), declared - set(dir(implementation))


def test_the_sandbox_answers_not_supported_for_the_optional_steps_it_has_not() -> None:
    from cf_portal.payments.provider import NotSupported

    provider = SandboxProvider(sa.create_engine("sqlite://"))
    assert not provider.collects_cards_in_browser and not provider.previews_invoices
    steps = [
        lambda: provider.create_setup_intent(customer_id="cus_1", idempotency_key="k"),
        lambda: provider.get_setup_intent(setup_intent_id="seti_1"),
        lambda: provider.attach_confirmed_payment_method(customer_id="cus_1", setup_intent_id="seti_1",
                                                         payment_method_id="pm_1", make_default=False),
        lambda: provider.preview_first_invoice(customer_id="cus_1", plan_code="p", unit_amount=1, currency="usd",
                                               quantity=1, coupon_code=None),
    ]
    for step in steps:
        with pytest.raises(NotSupported) as info:
            step()
        assert info.value.code == "not_supported" and "sandbox" in info.value.message


@pytest.mark.parametrize(("unit_amount", "quantity", "percent_off", "amount_off", "expected"), [
    (1200, 3, None, None, (3600, 0, 3600)),
    (10, 1, 25, None, (10, 3, 7)),  # 2.5 cents off: a whole 3 cents, as Stripe rounds
    (30, 1, 15, None, (30, 5, 25)),  # 4.5 cents off -> 5
    (10, 1, 5, None, (10, 1, 9)),  # half a cent off -> 1
    (1900, 5, 20, None, (9500, 1900, 7600)),
    (1200, 3, 100, None, (3600, 3600, 0)),
    (1200, 3, None, 1000, (3600, 1000, 2600)),
    (1200, 3, None, 5000, (3600, 3600, 0)),  # an amount off never takes the invoice below zero
])
def test_the_invoice_is_worked_out_as_stripe_describes_it(unit_amount: int, quantity: int, percent_off: int | None,
                                                          amount_off: int | None, expected: tuple[int, int, int],
                                                          provider: SandboxProvider) -> None:
    from cf_portal.payments.provider import SubscriptionDiscount

    discount = (SubscriptionDiscount(percent_off=percent_off, amount_off=amount_off, months=None, coupon_code="C")
                if percent_off or amount_off else None)
    customer = provider.ensure_customer(account_id=1, account_name="Acme", customer_id=None)
    pm = provider.add_card(customer_id=customer, card=card(), make_default=True, idempotency_key="k1")
    invoice = subscribe(provider, customer, pm.provider_id, "k-inv", unit_amount=unit_amount, quantity=quantity,
                        discount=discount).latest_invoice
    assert (invoice.subtotal, invoice.discount, invoice.total) == expected

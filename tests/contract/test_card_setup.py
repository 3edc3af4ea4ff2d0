"""Saving a card through Stripe's Payment Element, on localstripe: only the card of the account's own
SetupIntent, confirmed, is kept; the open SetupIntent is reused; the same card is not saved twice."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import PaymentMethod
from cf_portal.payments.provider import PaymentError
from cf_portal.services import throttle
from cf_portal.services.errors import DomainError
from cf_portal.services.payment_methods import ProviderBusy, save_confirmed_card, start_card_setup
from tests.contract.conftest import LocalstripeProvider
from tests.unit.conftest import TODAY, Seeded

VISA = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


def card_data(**overrides: Any) -> dict[str, Any]:
    return {"type": "card", "card": {**VISA, **overrides}}


def start(seeded: Seeded, provider: LocalstripeProvider) -> str:
    """The dialog opens: the SetupIntent's id (from its client secret, as Stripe.js has it)."""
    return start_card_setup(seeded.engine, provider, actor=seeded.actor).split("_secret_")[0]


def confirm_in_browser(admin: stripe.StripeClient, intent_id: str, **card: Any) -> str:
    """What Stripe.js does with the Payment Element: confirm the SetupIntent with the typed card."""
    confirmed = admin.v1.setup_intents.confirm(intent_id, params={"payment_method_data": card_data(**card)})
    assert confirmed.status == "succeeded"
    return confirmed.payment_method


def save(seeded: Seeded, provider: LocalstripeProvider, pm: str):  # noqa: ANN201
    return save_confirmed_card(seeded.engine, provider, actor=seeded.actor, provider_payment_method_id=pm,
                               today=TODAY)


def saved_rows(seeded: Seeded) -> list[str]:
    with session_scope(seeded.engine, write=False) as session:
        return list(session.exec(select(PaymentMethod.provider_id).where(
            PaymentMethod.account_id == seeded.actor.account_id)))


def test_a_payment_method_that_did_not_come_from_the_accounts_setup_intent_is_refused(
        seeded: Seeded, localstripe_provider: LocalstripeProvider, stripe_admin: stripe.StripeClient) -> None:
    start(seeded, localstripe_provider)  # the dialog is open, but this card never went through it
    stray = stripe_admin.v1.payment_methods.create(params=card_data()).id
    with pytest.raises((PaymentError, DomainError)):
        save(seeded, localstripe_provider, stray)
    assert saved_rows(seeded) == []
    assert stripe_admin.v1.payment_methods.retrieve(stray).customer is None  # not attached to the customer


def test_the_card_of_the_confirmed_setup_intent_is_saved_and_the_same_card_only_once(
        seeded: Seeded, localstripe_provider: LocalstripeProvider, stripe_admin: stripe.StripeClient) -> None:
    first = confirm_in_browser(stripe_admin, start(seeded, localstripe_provider))
    assert save(seeded, localstripe_provider, first).label == "Visa ending in 4242, expires 12/34"
    second = confirm_in_browser(stripe_admin, start(seeded, localstripe_provider))  # the same card again
    with pytest.raises(DomainError) as info:
        save(seeded, localstripe_provider, second)
    assert info.value.message == "Visa ending in 4242, expires 12/34, is already saved."
    assert saved_rows(seeded) == [first]
    # The copy is not left attached at Stripe either, where it could be charged.
    assert [c.provider_id for c in localstripe_provider.list_payment_methods(
        customer_id=stripe_admin.v1.payment_methods.retrieve(first).customer)] == [first]
    # The same number with another expiry (a reissued card) is another card.
    third = confirm_in_browser(stripe_admin, start(seeded, localstripe_provider), exp_year=2035)
    assert save(seeded, localstripe_provider, third).expiry == "12/35"


def test_the_open_setup_intent_is_reused_until_it_is_confirmed(
        seeded: Seeded, localstripe_provider: LocalstripeProvider, stripe_admin: stripe.StripeClient) -> None:
    opened = start(seeded, localstripe_provider)
    assert start(seeded, localstripe_provider) == opened  # the dialog opened again, or in another tab
    save(seeded, localstripe_provider, confirm_in_browser(stripe_admin, opened))
    assert start(seeded, localstripe_provider) != opened  # used: the next card gets a new one


def test_the_card_form_spends_the_accounts_budget_of_provider_look_ups(
        seeded: Seeded, localstripe_provider: LocalstripeProvider) -> None:
    for _ in range(throttle.PROVIDER_LOOKUPS.calls):
        start(seeded, localstripe_provider)
    with pytest.raises(ProviderBusy) as info:
        start(seeded, localstripe_provider)
    assert info.value.message.startswith("Your account has asked the payment provider too often")

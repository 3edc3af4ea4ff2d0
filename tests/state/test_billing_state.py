"""The Billing page's state: the Remove confirmation, a change of cards under way, what the page shows after."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import reflex as rx
from sqlmodel import select

from cf_portal import db
from cf_portal.models import Plan
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services.actors import actor_for_user
from cf_portal.services.payment_methods import PaymentMethodView, add_payment_method
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.state.add_license import AddLicenseCardsState, AddLicenseState
from cf_portal.state.billing import BillingCardsState, BillingState, default_card_outcome, remove_card_outcome
from tests.state.conftest import demo_owner_id, substate
from tests.support.events import run_now


def furnish() -> tuple[PaymentMethodView, PaymentMethodView]:
    """The demo account with a default Visa and a Mastercard that the license "Sales team" is billed to."""
    provider, now = SandboxProvider(), datetime.now(UTC)
    with db.session_scope(write=False) as session:
        actor = actor_for_user(session, demo_owner_id())
        plan = session.exec(select(Plan).where(Plan.code == "awareness-starter")).one()
    visa = add_payment_method(None, provider, actor=actor, number="4242424242424242", expiry="12/34", cvc="123",
                              today=now.date())
    master = add_payment_method(None, provider, actor=actor, number="5555555555554444", expiry="11/33", cvc="123",
                                today=now.date())
    create_license(None, provider, actor=actor, now=now, request=PurchaseRequest(
        reference_name="Sales team", plan_id=plan.id, quantity=2, payment_method_id=master.id,
        expected_total=2 * plan.unit_amount, idempotency_key=uuid.uuid4().hex))
    return visa, master


def shown(event: rx.event.EventSpec) -> str:
    return str(event.args[0][1])


def test_the_confirmation_names_the_card_and_what_happens_to_its_licenses(root_state: rx.State) -> None:
    visa, master = furnish()
    state = substate(root_state, BillingState)
    state.load()
    assert state.ask_remove(master.id) is None
    assert state.remove_open is True
    assert (state.removal.name, state.removal.refusal) == ("Mastercard ending in 4444", "")
    assert state.removal.consequence == ("The license billed to it (“Sales team”) will be billed to Visa ending in "
                                         "4242, your default card, from the next invoice.")

    # Removing it: the dialog closes, the list no longer has it, the toast says where the license went.
    actor = state._begin_card_change(master.id)
    assert state.changing and state.changing_card_id == master.id
    assert state._begin_card_change(master.id) is None  # a second click while the first is under way
    state.set_remove_open(False)
    assert state.remove_open is True  # the dialog stays until the provider has answered
    done = state._finish_card_change(remove_card_outcome(actor, master.id))
    assert "Mastercard ending in 4444 removed. 1 license is now billed to Visa ending in 4242." in shown(done)
    assert (state.changing, state.changing_card_id, state.remove_open) == (False, 0, False)
    assert [card.last4 for card in state.cards] == ["4242"]


def test_a_card_that_cannot_go_yet_says_why_before_anything_is_tried(root_state: rx.State) -> None:
    visa, master = furnish()
    state = substate(root_state, BillingState)
    state.load()
    # The Mastercard becomes the default; the license billed to it keeps it.
    actor = state._begin_card_change(master.id)
    assert "Mastercard ending in 4444 is now your default card." in shown(
        state._finish_card_change(default_card_outcome(actor, master.id)))
    assert [(card.last4, card.is_default) for card in state.cards] == [("4444", True), ("4242", False)]

    state.ask_remove(master.id)
    assert state.remove_open is True
    assert (state.removal.consequence, state.removal.refusal) == (
        "", "Mastercard ending in 4444 is your default card and 1 license is billed to it. Make another card the "
            "default first.")
    state.set_remove_open(False)
    assert state.remove_open is False
    # A crafted Remove all the same is refused with the same words, and nothing is removed.
    actor = state._begin_card_change(master.id)
    refused = state._finish_card_change(remove_card_outcome(actor, master.id))
    assert "is your default card and 1 license is billed to it." in shown(refused)
    assert [card.last4 for card in state.cards] == ["4444", "4242"]


def test_the_spend_chart_has_twelve_months_with_this_months_payment_last(root_state: rx.State) -> None:
    furnish()  # "Sales team": 2 × Awareness Starter, paid today
    with db.session_scope(write=False) as session:
        unit = session.exec(select(Plan.unit_amount).where(Plan.code == "awareness-starter")).one()
    state = substate(root_state, BillingState)
    state.load()
    months = state.spend.months
    assert len(months) == 12 and months[-1].month == f"{datetime.now(UTC):%Y-%m}"
    assert sum(m.cents for m in months) == months[-1].cents == 2 * unit and state.spend.has_spend
    assert state.provider_pdfs is False  # the sandbox keeps no PDF of its own
    root_state.get_delta()
    root_state._clean()
    state.load()
    sent = [name.removesuffix("_rx_state_") for name in root_state.get_delta()[state.get_full_name()]]
    assert "invoices" in sent and "spend" not in sent  # the same series is not sent again


def test_the_browser_gets_the_cards_safe_details_only(root_state: rx.State) -> None:
    furnish()
    state = substate(root_state, BillingState)
    state.load()
    state.ask_remove(state.cards[1].id)
    delta = str(root_state.get_delta())
    assert "5555555555554444" not in delta and "pm_" not in delta  # no card number, no provider id


def test_billing_adds_a_card_with_the_add_license_dialog(root_state: rx.State) -> None:
    """The one add-card dialog (state/cards.py) saves the card on Billing too, and tells the page, which lists it;
    a refused card stays in the dialog with its message and tells the page nothing."""
    state = substate(root_state, BillingState)
    state.load()
    cards = substate(root_state, BillingCardsState)
    cards.set_card_dialog_open(True)
    refused = run_now(cards, "save_card", {"card_number": "4242 4242 4242 4241", "expiry": "12 / 34", "cvc": "123"})
    assert refused == [] and "not valid" in cards.card_number_error and cards.card_dialog_open
    told, confirmed = run_now(cards, "save_card", {"card_number": "4242 4242 4242 4242", "expiry": "12 / 34",
                                                   "cvc": "123"})
    assert told is BillingState.load
    assert "Visa ending in 4242 added." in shown(confirmed) and not cards.card_dialog_open
    state.load()  # the event the dialog sent
    assert [card.label for card in state.cards] == ["Visa ending in 4242, expires 12/34"]


def test_add_license_chooses_the_card_its_dialog_saved(root_state: rx.State) -> None:
    form = substate(root_state, AddLicenseState)
    form.load()
    cards = substate(root_state, AddLicenseCardsState)
    told, _ = run_now(cards, "save_card", {"card_number": "5555 5555 5555 4444", "expiry": "11 / 33", "cvc": "123"})
    assert told.handler.fn.__qualname__ == AddLicenseState.card_added.fn.__qualname__
    card_id = told.args[0][1]._var_value
    form.card_added(card_id)  # the event the dialog sent
    assert form.payment_method_id == str(card_id) and form.payment_methods[0].brand == "Mastercard"

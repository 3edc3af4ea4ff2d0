"""The Add License form's handlers, without a browser."""

from __future__ import annotations

import json

import reflex as rx
from sqlmodel import select

from cf_portal import db
from cf_portal.models import License
from cf_portal.services import throttle
from cf_portal.state import add_license, calls
from cf_portal.state.add_license import AddLicenseCardsState, AddLicenseState, submit_purchase
from cf_portal.state.cards import save_card_outcome
from tests.state.conftest import substate

CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12 / 34", "cvc": "123"}


def loaded(root: rx.State) -> AddLicenseState:
    state = substate(root, AddLicenseState)
    state.load()
    return state


def card_dialog(state: AddLicenseState) -> AddLicenseCardsState:
    root = state
    while root.parent_state is not None:
        root = root.parent_state
    return substate(root, AddLicenseCardsState)


def add_card(state: AddLicenseState, form: dict[str, str]) -> str:
    """The add-card dialog saves the card, then tells the form, as its event does (`card_added`)."""
    cards = card_dialog(state)
    saved = save_card_outcome(cards._begin_save_card(), form)
    message = cards._finish_save_card(saved)
    if saved.result is not None:
        state.card_added(saved.result.id)
    return message


def test_load_preselects_a_plan_and_prices_one_license(root_state: rx.State) -> None:
    state = loaded(root_state)
    assert [p.name for p in state.products] == ["Security Awareness Training", "Phishing Simulator",
                                               "Dark Web Monitoring"]
    assert [p.name for p in state.plans] == ["Starter", "Business", "Enterprise"]
    assert state.panel.total_display == "$9.00"
    assert state.has_payment_method is False
    assert state.payment_method_id == ""


def test_product_and_plan_filter_and_reprice(root_state: rx.State) -> None:
    state = loaded(root_state)
    phishing = next(p for p in state.products if p.name == "Phishing Simulator")
    state.set_product(str(phishing.id))
    assert [p.name for p in state.plans] == ["Standard", "Advanced"]
    assert state.panel.unit_price == "$12.00"
    state.set_plan(str(state.plans[1].id))
    state.set_quantity("10")
    assert (state.panel.subtotal, state.panel.total_display) == ("$240.00", "$240.00")


def test_bad_quantity_keeps_the_text_and_the_last_price(root_state: rx.State) -> None:
    state = loaded(root_state)
    state.set_quantity("3")
    state.set_quantity("three")
    assert state.quantity == "three"
    assert "whole number" in state.quantity_error
    assert state.panel.total_display == "$27.00"
    state.set_quantity("4")
    assert state.quantity_error == "" and state.panel.total_display == "$36.00"


def test_coupon_is_checked_as_typed_and_rechecked_on_changes(root_state: rx.State) -> None:
    state = loaded(root_state)
    state.set_quantity("10")
    state.set_coupon_code("team10")
    assert (state.panel.coupon_status, state.panel.coupon_message) == ("valid", "10% off, forever")
    assert state.panel.total_display == "$81.00"
    state.set_quantity("9")
    assert state.panel.coupon_status == "invalid"
    assert state.panel.coupon_message == "This coupon needs at least 10 licenses."
    assert state.panel.total_display == "$81.00"  # 9 x $9, no discount
    state.set_coupon_code("SPRING15")
    assert state.panel.after_discount == "Then $81.00 / month after the discount ends"
    state.set_coupon_code("")
    assert (state.panel.coupon_status, state.panel.discount) == ("none", "")


def test_create_without_a_payment_method_asks_for_one(root_state: rx.State) -> None:
    state = loaded(root_state)
    state.set_reference_name("Sales")
    assert state._begin_create() is None
    assert state.payment_error == "Add a payment method to create licenses."
    assert state.creating is False


def test_card_details_never_reach_a_state_var(root_state: rx.State) -> None:
    state = loaded(root_state)
    root_state.get_delta()
    assert add_card(state, {**CARD, "card_number": "4242 4242 4242 4241"}) == ""
    assert "not valid" in card_dialog(state).card_number_error
    message = add_card(state, CARD)
    assert message == "Visa ending in 4242 added."
    assert state.payment_methods[0].label == "Visa ending in 4242, expires 12/34"
    assert state.payment_method_id == str(state.payment_methods[0].id)
    everything = json.dumps(root_state.dict(), default=str) + json.dumps(root_state.get_delta(), default=str)
    assert "4242424242424242" not in everything.replace(" ", "")
    assert "4242424242424241" not in everything.replace(" ", "")


def test_create_buys_once_then_clears_the_form(root_state: rx.State) -> None:
    state = loaded(root_state)
    add_card(state, CARD)
    state.set_reference_name("Support desk")
    state.set_quantity("2")
    begun = state._begin_create()
    assert begun is not None and state.creating is True
    assert state._begin_create() is None  # a second click while the first is under way
    created = state._finish_create(submit_purchase(*begun))
    assert created is not None and created.quantity == 2
    assert (state.creating, state.reference_name, state.quantity) == (False, "", "1")
    with db.session_scope(write=False) as session:
        assert session.exec(select(License.reference_name)).all() == ["Support desk"]
    # The same submission replayed (a retry after a lost answer) buys nothing more.
    assert submit_purchase(*begun).result.replayed is True


def test_declined_card_keeps_everything_typed_and_starts_a_new_submission(root_state: rx.State) -> None:
    state = loaded(root_state)
    add_card(state, {**CARD, "card_number": "4000 0000 0000 0002"})
    state.set_reference_name("Declined")
    state.set_coupon_code("WELCOME20")
    begun = state._begin_create()
    key = state._idempotency_key
    assert state._finish_create(submit_purchase(*begun)) is None
    assert state.payment_error.startswith("Your card was declined.")
    assert (state.reference_name, state.coupon_code, state.creating) == ("Declined", "WELCOME20", False)
    assert state._idempotency_key != key
    with db.session_scope(write=False) as session:
        assert session.exec(select(License)).all() == []


def test_a_reload_during_create_keeps_the_submission_key(root_state: rx.State) -> None:
    state = loaded(root_state)
    add_card(state, CARD)
    state.set_reference_name("Reloaded")
    begun = state._begin_create()
    key = state._idempotency_key
    state.load()  # the page reloads while the charge is under way: same browser tab, same state
    assert state._idempotency_key == key and state.creating is True
    first = submit_purchase(*begun)
    assert state._begin_create() is None  # still busy: Create is not sent again
    state._finish_create(first)
    assert submit_purchase(*begun).result.license_id == first.result.license_id
    with db.session_scope(write=False) as session:
        assert len(session.exec(select(License)).all()) == 1


def test_a_create_left_busy_by_a_restart_can_be_pressed_again(root_state: rx.State) -> None:
    state = loaded(root_state)
    add_card(state, CARD)
    state.set_reference_name("After restart")
    begun = state._begin_create()
    key = state._idempotency_key
    state.load()
    assert state.creating is True  # a Create under way is left alone
    state._creating_since -= 3600  # ... but one whose worker vanished an hour ago is not
    state.load()
    assert state.creating is False and state._idempotency_key == key
    again = state._begin_create()
    assert again[1].idempotency_key == begun[1].idempotency_key


def test_crafted_values_get_messages_not_crashes(root_state: rx.State) -> None:
    state = loaded(root_state)
    add_card(state, CARD)
    state.set_reference_name("Crafted")
    state.set_quantity("²")  # a digit to str.isdigit, not to int()
    assert "whole number" in state.quantity_error
    state.set_quantity("2")
    state.set_plan("not-a-plan")
    assert state.plan_error == "Choose a plan."
    state.set_payment_method("1 OR 1=1")
    assert state._begin_create() is None and state.creating is False
    assert state.plan_error and state.payment_error


def test_after_an_unconfirmed_charge_a_changed_form_keeps_its_key(root_state: rx.State, monkeypatch) -> None:  # noqa: ANN001
    from cf_portal.payments.sandbox import SandboxProvider
    from tests.unit.test_purchase import FlakyProvider

    state = loaded(root_state)
    add_card(state, CARD)
    state.set_reference_name("Flaky")
    monkeypatch.setattr(calls, "get_provider", lambda: FlakyProvider(SandboxProvider(), failures=10))
    key = state._idempotency_key
    state._finish_create(submit_purchase(*state._begin_create()))
    assert "Press Create again" in state.payment_error and state._idempotency_key == key
    state.set_quantity("3")  # the buyer changes the form ...
    state._finish_create(submit_purchase(*state._begin_create()))
    assert "still being confirmed" in state.payment_error and state._idempotency_key == key
    monkeypatch.setattr(calls, "get_provider", lambda: SandboxProvider())
    state.set_quantity("1")  # ... and puts it back: the first purchase is finished, charged once
    created = state._finish_create(submit_purchase(*state._begin_create()))
    assert created is not None and created.quantity == 1
    with db.session_scope(write=False) as session:
        assert len(session.exec(select(License)).all()) == 1


def test_with_stripe_an_accepted_coupon_waits_for_stripes_own_price(root_state: rx.State, monkeypatch) -> None:  # noqa: ANN001
    from tests.unit.test_checkout import PricingProvider

    state = loaded(root_state)
    state.uses_stripe = True
    assert state.set_coupon_code("NOSUCHCODE") is None  # the portal refuses it: Stripe is not asked
    assert state.price_checking is False and state.panel.coupon_status == "invalid"

    discounted = state.set_coupon_code("SPRING15")
    assert discounted is AddLicenseState.confirm_price and state.price_checking is True
    assert state._begin_create() is None and "being confirmed" in state.form_error and state.creating is False

    # Stripe's preview differs (its catalog is out of step): the price without the coupon, and why.
    monkeypatch.setattr(calls, "get_provider",
                        lambda: PricingProvider(db.get_engine(), total=state.panel.total + 1))
    with db.session_scope(write=False) as session:
        actor = state._actor(session)
    panel = add_license.provider_price_outcome(actor, plan_id=int(state.plan_id), quantity=1, coupon_code="SPRING15")
    assert panel is not None and panel.coupon_status == "invalid" and "could not be confirmed" in panel.coupon_message
    assert panel.total_display == "$9.00"

    # Stripe agrees: nothing to change.
    agreeing = state.panel.total
    monkeypatch.setattr(calls, "get_provider", lambda: PricingProvider(db.get_engine(), total=agreeing))
    assert add_license.provider_price_outcome(actor, plan_id=int(state.plan_id), quantity=1,
                                              coupon_code="SPRING15") is None

    state.uses_stripe = False  # the sandbox prices as the portal does: nothing to wait for
    assert state.set_quantity("2") is None and state.price_checking is False


def test_a_payment_the_bank_wants_confirmed_waits_for_stripe_js_then_creates_again(root_state: rx.State,
                                                                                   monkeypatch) -> None:  # noqa: ANN001
    from cf_portal.payments.sandbox import SandboxProvider
    from tests.unit.test_purchase import BankStep

    state = loaded(root_state)
    add_card(state, CARD)
    state.set_reference_name("Bank step")
    monkeypatch.setattr(calls, "get_provider", lambda: BankStep(SandboxProvider(), 0))
    key = state._idempotency_key
    assert state._finish_create(submit_purchase(*state._begin_create())) is None
    assert state.payment_action_secret == "pi_123_secret_456"  # for Stripe.js, which shows the bank's step
    assert (state.form_error, state.payment_error, state.creating, state._idempotency_key) == ("", "", False, key)
    assert state._begin_create() is None  # Create waits for the bank's step
    assert state.payment_action_done("") is AddLicenseState.create
    assert state.payment_action_secret == "" and state.payment_action_done("") is None  # once per step

    # The Create that follows only finishes this purchase; if the bank still waits (Stripe.js could not show its
    # step, say), the step is not reopened by itself (no loop): the buyer is told, and Create opens it again.
    actor, request = state._begin_create()
    assert request.continue_only is True and request.idempotency_key == key
    assert state._finish_create(submit_purchase(actor, request)) is None
    assert state.payment_action_secret == "" and "did not finish" in state.payment_error
    actor, request = state._begin_create()
    assert request.continue_only is False and request.idempotency_key == key
    state._finish_create(submit_purchase(actor, request))
    assert state.payment_action_secret == "pi_123_secret_456"


def test_the_banks_message_from_the_browser_is_logged_escaped(root_state: rx.State, caplog) -> None:  # noqa: ANN001
    """`payment_action_done` takes its text from the browser (anyone can send any): it must not forge log lines."""
    import logging

    caplog.set_level(logging.INFO)
    state = loaded(root_state)
    state.payment_action_secret = "pi_123_secret_456"
    state.payment_action_done("Declined\n2026-12-04 INFO payment confirmed for account 1 \u202e")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "\n2026-12-04" not in logged and "\u202e" not in logged, logged
    assert "Declined\\n2026-12-04" in logged


def test_codes_typed_while_the_quantity_is_empty_count_when_the_quantity_looks_them_up(root_state: rx.State) -> None:
    """The review's probe: clear the number, type a code, type the number again. Every lookup counts, so the
    guesses run into the wait instead of all being answered."""
    state = loaded(root_state)
    answered = 0
    for guess in range(40):
        state.set_quantity("")
        state.set_coupon_code(f"NOSUCH{guess}")
        state.set_quantity("3")
        if state.panel.coupon_message.startswith("Too many coupon codes"):
            break
        assert state.panel.coupon_message == "This coupon code doesn't exist. Check the spelling."
        answered += 1
    assert answered == throttle.COUPON_ACCOUNT.free
    # Plan and product changes look the code up too: still refused, without an answer about the code.
    state.set_plan(state.plan_id)
    assert state.panel.coupon_message.startswith("Too many coupon codes")


def test_one_price_check_with_the_provider_runs_per_tab(root_state: rx.State) -> None:
    """confirm_price events sent at once (a crafted client, or fast typing) do not each ask Stripe: the first
    claims the tab's check; the others end at once, and the running one checks the newest form before it ends."""
    state = loaded(root_state)
    state.uses_stripe = True
    assert state.set_coupon_code("SPRING15") is AddLicenseState.confirm_price
    assert state._claim_price_check() is True
    assert [state._claim_price_check() for _ in range(10)] == [False] * 10
    ticket = state._price_ticket
    state.set_quantity("2")  # the form changed while the provider was asked: its answer is for the old form
    assert state._finish_price_check(ticket, None) is False and state.price_checking is True
    assert state._finish_price_check(state._price_ticket, None) is True and state.price_checking is False
    state._release_price_check()
    assert state._claim_price_check() is True
    # A claim left behind by a worker that stopped (a restart) does not hold the tab's checks forever.
    state._price_check_since -= add_license.PRICE_CHECK_STUCK_AFTER_S + 1
    assert state._claim_price_check() is True

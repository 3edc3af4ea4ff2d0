"""The add-card dialog ("Add payment method"), shared by Add License and Billing.

`CardsState` is a Reflex state mixin: each page that offers the dialog has a state of its own made from it
(`AddLicenseCardsState(CardsState, PortalState)`, `BillingCardsState(...)`), which says which event of its page
hears of a saved card (`_card_added`); both pages render components/cards.py:card_dialog with theirs. The card fields arrive once (the sandbox's form) or never (Stripe's Payment
Element sends only the saved card's id) and go to the provider; no state var ever holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx

from cf_portal.clock import today
from cf_portal.services import payment_methods
from cf_portal.services.actors import Actor
from cf_portal.services.payment_methods import PaymentMethodView
from cf_portal.services.roles import Permission
from cf_portal.settings import get_settings
from cf_portal.state.calls import Outcome, outcome, provider, run
from cf_portal.state.portal import PortalState

# A card the provider saved (its `result`), or the refusal to show next to its field (its `error`).
CardOutcome = Outcome[PaymentMethodView]
CARD_FAILED = "Something went wrong while saving the card. Nothing was charged; try again."
CARD_FIELD_ERRORS = {"card_number": "card_number_error", "expiry": "card_expiry_error", "cvc": "card_cvc_error"}


def _card_outcome(work) -> CardOutcome:  # noqa: ANN001
    return outcome(work, failed=CARD_FAILED, log_as="adding a payment method failed")


def save_card_outcome(actor: Actor, form_data: dict[str, str]) -> CardOutcome:
    """The sandbox's card form. Runs in a worker thread. The card fields are passed on and dropped; they are
    never logged."""
    return _card_outcome(lambda: payment_methods.add_payment_method(
        None, provider(), actor=actor, number=form_data.get("card_number", ""),
        expiry=form_data.get("expiry", ""), cvc=form_data.get("cvc", ""), today=today()))


def start_setup_outcome(actor: Actor) -> Outcome[str]:
    """Stripe: the SetupIntent's client secret, or why the card form cannot open. Runs in a worker thread."""
    return outcome(lambda: payment_methods.start_card_setup(None, provider(), actor=actor),
                   failed="The card form could not be opened. Try again in a moment.",
                   log_as="starting a card setup failed")


def confirmed_card_outcome(actor: Actor, payment_method_id: str) -> CardOutcome:
    """Stripe: keep the card the browser confirmed (only its id came from the browser)."""
    return _card_outcome(lambda: payment_methods.save_confirmed_card(
        None, provider(), actor=actor, provider_payment_method_id=payment_method_id, today=today()))


class CardsState(PortalState, mixin=True):
    """The dialog's vars and events, a mixin: each page's subclass is a state of its own (Reflex copies a mixin's
    handlers onto it, so its events reach it), and names the event told of a saved card."""

    is_sandbox: bool = True
    # With Stripe, the dialog holds Stripe's Payment Element: it needs the publishable key and the client
    # secret of a SetupIntent (both meant for the browser). No card field ever reaches this state.
    uses_stripe: bool = False
    stripe_publishable_key: str = ""
    setup_client_secret: str = ""

    card_dialog_open: bool = False
    card_number_error: str = ""
    card_expiry_error: str = ""
    card_cvc_error: str = ""
    card_form_error: str = ""
    saving_card: bool = False

    def _card_added(self, card: PaymentMethodView) -> rx.event.EventSpec | None:
        """The event that tells the page of a saved card (a subclass's)."""
        return None

    def _configure(self) -> None:
        settings, card_provider = get_settings(), provider()
        self.is_sandbox = card_provider.name == "sandbox"
        self.uses_stripe = card_provider.collects_cards_in_browser  # Stripe's card form
        self.stripe_publishable_key = (settings.stripe_publishable_key or "") if self.uses_stripe else ""

    def _clear_errors(self) -> None:
        self.card_number_error = self.card_expiry_error = self.card_cvc_error = self.card_form_error = ""

    @rx.event
    def forget_dialog(self):
        """The page was opened again: an earlier visit's dialog and its messages go, unless a card is being
        saved."""
        if not self.saving_card:
            self.card_dialog_open = False
            self._clear_errors()

    @rx.event
    def set_card_dialog_open(self, is_open: bool):
        if is_open:
            self._configure()  # which provider's form the dialog shows
        self.card_dialog_open = is_open
        self._clear_errors()
        self.setup_client_secret = ""
        if is_open and self.uses_stripe:
            return type(self).prepare_card_setup

    @rx.event(background=True)
    async def prepare_card_setup(self):
        """Stripe: a SetupIntent for the Payment Element in the open dialog."""
        async with self:
            actor = self._require(Permission.MANAGE_PAYMENT_METHODS)
        setup = await run(start_setup_outcome, actor)
        async with self:
            if self.card_dialog_open:
                self.setup_client_secret, self.card_form_error = setup.result or "", setup.message

    @rx.event(background=True)
    async def stripe_card_saved(self, payment_method_id: str):
        """Stripe: the Payment Element confirmed the SetupIntent; keep the card (brand, last 4, expiry)."""
        for event in await self._save_card_with(confirmed_card_outcome, str(payment_method_id)[:100]):
            yield event

    @rx.event(background=True)
    async def save_card(self, form_data: dict[str, str]):
        """The card fields arrive here once and go to the provider; no state var ever holds them."""
        for event in await self._save_card_with(save_card_outcome, form_data):
            yield event

    async def _save_card_with(self, worker: Callable[[Actor, Any], CardOutcome], card: object
                              ) -> list[rx.event.EventSpec]:
        """A background handler's save: begun and shown under the state's lock, the provider called without it.
        Returns the events that follow: the page told of the card, and the confirmation."""
        async with self:
            actor = self._begin_save_card()
        if actor is None:
            return []
        saved = await run(worker, actor, card)
        async with self:
            message = self._finish_save_card(saved)
            if saved.result is None:
                return []
            told = self._card_added(saved.result)
        return [*([told] if told is not None else []), rx.toast.success(message)]

    def _begin_save_card(self) -> Actor | None:
        if self.saving_card:
            return None  # already saving this card
        self._clear_errors()
        actor = self._require(Permission.MANAGE_PAYMENT_METHODS)
        self.saving_card = True  # last: nothing above may leave the form stuck busy
        return actor

    def _finish_save_card(self, saved: CardOutcome) -> str:
        """Show the outcome; returns the confirmation to toast ("" when the card was not saved)."""
        self.saving_card = False
        if saved.error is not None:
            setattr(self, CARD_FIELD_ERRORS.get(saved.error.field or "", "card_form_error"), saved.message)
            return ""
        self.card_dialog_open = False
        return f"{saved.result.brand} ending in {saved.result.last4} added."

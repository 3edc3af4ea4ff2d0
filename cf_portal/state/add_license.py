"""The Add License screen: form values, field messages and the price panel, via the checkout services."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import reflex as rx

from cf_portal import routes
from cf_portal.db import session_scope
from cf_portal.payments import get_provider
from cf_portal.payments.provider import PaymentError
from cf_portal.services import checkout, payment_methods
from cf_portal.services.actors import Actor
from cf_portal.services.checkout import PlanOption, PricePanel, ProductOption
from cf_portal.services.errors import DomainError
from cf_portal.services.ids import is_id
from cf_portal.services.payment_methods import PaymentMethodView
from cf_portal.services.purchase import (
    ChargeUnconfirmed,
    PaymentActionRequired,
    PurchaseRequest,
    PurchaseResult,
    create_license,
)
from cf_portal.services.roles import Permission
from cf_portal.services.validation import printable
from cf_portal.settings import get_settings
from cf_portal.state.licenses import LicensesState
from cf_portal.state.portal import PortalState

log = logging.getLogger(__name__)
# Longer than any Create takes (the provider calls are retried for a few seconds at most).
STUCK_AFTER_S = 120
# How long typing in the form is let settle before a coupon is confirmed with the provider (Stripe).
PRICE_CHECK_SETTLE_S = 0.25
# Longer than any check with the provider takes (its calls give up after about 20 seconds each).
PRICE_CHECK_STUCK_AFTER_S = 90

EMPTY_PANEL = PricePanel(unit_price="", quantity=0, subtotal="", discount="", total=0, total_display="",
                         coupon_status="none", coupon_message="", discount_note="", after_discount="",
                         monthly_note="")


def _now() -> datetime:
    return datetime.now(UTC)


def _is_id(text: str) -> bool:
    """Ids come back from the browser as text; anything but an id in range (`parse_id`) is not one."""
    return is_id(text)


@dataclass(frozen=True)
class PurchaseOutcome:
    result: PurchaseResult | None = None
    error: DomainError | None = None  # both None: an unexpected failure (logged)


@dataclass(frozen=True)
class CardOutcome:
    saved: PaymentMethodView | None = None
    error: PaymentError | None = None


def submit_purchase(actor: Actor, request: PurchaseRequest) -> PurchaseOutcome:
    """Runs in a worker thread: the provider call may take seconds."""
    try:
        return PurchaseOutcome(result=create_license(None, get_provider(), actor=actor, request=request, now=_now()))
    except DomainError as exc:
        return PurchaseOutcome(error=exc)
    except Exception:
        log.exception("creating a license failed")
        return PurchaseOutcome()


def provider_price_outcome(actor: Actor, *, plan_id: int, quantity: int, coupon_code: str,
                           client: str = "") -> PricePanel | None:
    """Runs in a worker thread: the provider's own preview of the price with this coupon (Stripe). None when it
    agrees, or when it cannot say (Create asks the provider again before it charges)."""
    try:
        return checkout.confirm_price_with_provider(None, get_provider(), actor=actor, plan_id=plan_id,
                                                    quantity=quantity, coupon_code=coupon_code, now=_now(),
                                                    client=client)
    except DomainError:
        return None
    except Exception:
        log.exception("confirming a coupon with the payment provider failed")
        return None


def save_card_outcome(actor: Actor, form_data: dict[str, str]) -> CardOutcome:
    """The sandbox's card form. Runs in a worker thread. The card fields are passed on and dropped; they are
    never logged."""
    return _card_outcome(lambda: payment_methods.add_payment_method(
        None, get_provider(), actor=actor, number=form_data.get("card_number", ""),
        expiry=form_data.get("expiry", ""), cvc=form_data.get("cvc", ""), today=_now().date()))


def _card_outcome(work) -> CardOutcome:  # noqa: ANN001
    try:
        return CardOutcome(saved=work())
    except PaymentError as exc:
        return CardOutcome(error=exc)
    except DomainError as exc:
        return CardOutcome(error=PaymentError("refused", exc.message))
    except Exception:
        log.exception("adding a payment method failed")
        return CardOutcome(error=PaymentError("unexpected", "Something went wrong while saving the card. "
                                                            "Nothing was charged; try again."))


def start_setup_outcome(actor: Actor) -> tuple[str, str]:
    """Stripe: (the SetupIntent's client secret, "") or ("", a message). Runs in a worker thread."""
    try:
        return payment_methods.start_card_setup(None, get_provider(), actor=actor), ""
    except (PaymentError, DomainError) as exc:
        return "", exc.message
    except Exception:
        log.exception("starting a card setup failed")
        return "", "The card form could not be opened. Try again in a moment."


def confirmed_card_outcome(actor: Actor, payment_method_id: str) -> CardOutcome:
    """Stripe: keep the card the browser confirmed (only its id came from the browser)."""
    return _card_outcome(lambda: payment_methods.save_confirmed_card(
        None, get_provider(), actor=actor, provider_payment_method_id=payment_method_id, today=_now().date()))


class AddLicenseState(PortalState):
    products: list[ProductOption] = []
    all_plans: list[PlanOption] = []
    payment_methods: list[PaymentMethodView] = []
    is_sandbox: bool = True
    # With Stripe, the card dialog holds Stripe's Payment Element: it needs the publishable key and the client
    # secret of a SetupIntent (both meant for the browser). No card field ever reaches this state.
    uses_stripe: bool = False
    stripe_publishable_key: str = ""
    setup_client_secret: str = ""
    # A first payment the bank wants confirmed (3-D Secure): the payment's client secret, for Stripe.js only.
    payment_action_secret: str = ""

    reference_name: str = ""
    product_id: str = ""
    plan_id: str = ""
    quantity: str = "1"
    coupon_code: str = ""
    payment_method_id: str = ""
    panel: PricePanel = EMPTY_PANEL
    # With Stripe, a coupon the portal accepts is confirmed with Stripe's own preview before Create.
    price_checking: bool = False

    name_error: str = ""
    plan_error: str = ""
    quantity_error: str = ""
    payment_error: str = ""
    form_error: str = ""
    creating: bool = False
    allowed: bool = True  # the member's role may buy

    card_dialog_open: bool = False
    card_number_error: str = ""
    card_expiry_error: str = ""
    card_cvc_error: str = ""
    card_form_error: str = ""
    saving_card: bool = False

    # Backend only: one key per form submission, so a double click or a retry buys once.
    _idempotency_key: str = ""
    _creating_since: float = 0.0
    _continuing: bool = False  # Create runs again after the bank's step: it may only finish that purchase
    _price_ticket: int = 0  # bumped by each reprice: a provider's answer about an older form is dropped
    _price_check_since: float = 0.0  # when this tab's one check with the provider began (0: none runs)

    @rx.var
    def plans(self) -> list[PlanOption]:
        return [plan for plan in self.all_plans if str(plan.product_id) == self.product_id]

    @rx.var
    def has_payment_method(self) -> bool:
        return len(self.payment_methods) > 0

    # --- loading and pricing --------------------------------------------------------------------

    @rx.event
    def load(self):
        """Open the form: catalog, saved cards, and a plan preselected (from ?plan=<plan id> if given)."""
        with session_scope(write=False) as session:
            actor = self._actor(session)
            # The route checks the role too: a member who cannot buy sees why, and nothing of the form.
            self.allowed = actor.can(Permission.BUY)
            if not self.allowed:
                return
            catalog = checkout.load_catalog(session)
            self.payment_methods = payment_methods.list_payment_methods(
                session, account_id=actor.account_id, today=_now().date())
        self.products, self.all_plans = catalog.products, catalog.plans
        settings = get_settings()
        self.is_sandbox = settings.payment_provider == "sandbox"
        self.uses_stripe = settings.payment_provider == "stripe"
        self.stripe_publishable_key = (settings.stripe_publishable_key or "") if self.uses_stripe else ""
        wanted = self.router.url.query_parameters.get("plan", "")
        chosen = next((p for p in catalog.plans if str(p.id) == wanted), None)
        if chosen is not None:
            self.product_id, self.plan_id = str(chosen.product_id), str(chosen.id)
        elif not any(str(p.id) == self.plan_id for p in catalog.plans):
            first = catalog.plans[0] if catalog.plans else None
            self.product_id = str(first.product_id) if first else ""
            self.plan_id = str(first.id) if first else ""
        self._choose_default_card()
        if not self.saving_card:  # the form is the page and stays; its card dialog does not, unless saving
            self.card_dialog_open = False
            self.card_number_error = self.card_expiry_error = self.card_cvc_error = self.card_form_error = ""
        if not self._idempotency_key:
            self._idempotency_key = uuid.uuid4().hex
        if self.creating and time.time() - self._creating_since > STUCK_AFTER_S:
            # The worker that ran Create is gone (a restart): let the person press Create again. The key is
            # kept, so that press finishes the same purchase and cannot charge twice.
            self.creating = False
        return self._reprice()

    def _buyer(self, actor: Actor) -> checkout.Buyer:
        return checkout.Buyer(actor.account_id, self.router.session.client_ip or "")

    def _choose_default_card(self) -> None:
        usable = [pm for pm in self.payment_methods if not pm.expired]
        if not any(str(pm.id) == self.payment_method_id for pm in usable):
            default = next((pm for pm in usable if pm.is_default), usable[0] if usable else None)
            self.payment_method_id = str(default.id) if default else ""

    def _reprice(self):  # noqa: ANN202
        """Recompute the price panel with the one pricing function (also used by Create). Coupon codes are
        looked up for buyers only, and every lookup is throttled and counted by the service, whichever change
        triggered it. Returns the event that confirms an accepted coupon with the provider's own preview
        (Stripe), if one is needed."""
        try:
            quantity = checkout.check_quantity(self.quantity)
        except DomainError:
            return None  # the field shows its message; the panel keeps the last valid price
        try:
            with session_scope(write=bool(self.coupon_code.strip())) as session:
                actor = self._actor(session, Permission.BUY)
                self.panel = checkout.throttled_price_panel(
                    session, buyer=self._buyer(actor), plan_id=int(self.plan_id) if _is_id(self.plan_id) else 0,
                    quantity=quantity, coupon_code=self.coupon_code, now=_now())
            self.plan_error = ""
        except DomainError as exc:
            self.panel = EMPTY_PANEL
            self.plan_error = exc.message
        self._price_ticket += 1
        self.price_checking = self.uses_stripe and self.panel.coupon_status == "valid"
        return AddLicenseState.confirm_price if self.price_checking else None

    @rx.event(background=True)
    async def confirm_price(self):
        """Stripe: look the accepted coupon up there and preview the first month. One check runs per tab at a
        time: a second event ends at once, and the running check, after letting typing settle, checks the
        newest form before it ends (an answer about a form that has changed since is dropped)."""
        async with self:
            if not self._claim_price_check():
                return
        try:
            while True:
                async with self:
                    ticket = self._price_ticket
                await asyncio.sleep(PRICE_CHECK_SETTLE_S)
                async with self:
                    if ticket != self._price_ticket:
                        continue  # still typing: let it settle again
                    form = self._price_check_form()
                if form is None:
                    return
                actor, fields = form
                panel = await asyncio.to_thread(provider_price_outcome, actor, **fields)
                async with self:
                    if self._finish_price_check(ticket, panel):
                        return
        finally:
            async with self:
                self._release_price_check()

    def _claim_price_check(self) -> bool:
        """Take the tab's one check with the provider; False while another runs (a claim older than any check
        takes was left by a worker that stopped, and is taken over)."""
        if self._price_check_since and time.time() - self._price_check_since < PRICE_CHECK_STUCK_AFTER_S:
            return False
        self._price_check_since = time.time()
        return True

    def _release_price_check(self) -> None:
        self._price_check_since = 0.0

    def _price_check_form(self) -> tuple[Actor, dict] | None:
        """Who asks and what, for the provider's check; None when there is nothing to check."""
        if not self.price_checking:
            return None
        try:
            quantity = checkout.check_quantity(self.quantity)
        except DomainError:
            return None
        with session_scope(write=False) as session:
            actor = self._actor(session, Permission.BUY)
        return actor, dict(plan_id=int(self.plan_id) if _is_id(self.plan_id) else 0, quantity=quantity,
                           coupon_code=self.coupon_code, client=self._buyer(actor).client)

    def _finish_price_check(self, ticket: int, panel: PricePanel | None) -> bool:
        """Show the provider's answer; False when the form changed meanwhile (the answer is dropped and the
        newest form is checked next)."""
        if ticket != self._price_ticket:
            return False
        self.price_checking = False
        if panel is not None:
            self.panel = panel
        return True

    # --- field events -----------------------------------------------------------------------------

    @rx.event
    def set_reference_name(self, value: str):
        self.reference_name = value
        if self.name_error:
            self.check_reference_name()

    @rx.event
    def check_reference_name(self):
        try:
            checkout.check_reference_name(self.reference_name)
            self.name_error = ""
        except DomainError as exc:
            self.name_error = exc.message

    @rx.event
    def set_product(self, value: str):
        self.product_id = value
        plans = self.plans
        self.plan_id = str(plans[0].id) if plans else ""
        return self._reprice()

    @rx.event
    def set_plan(self, value: str):
        self.plan_id = value
        return self._reprice()

    @rx.event
    def set_quantity(self, value: str):
        self.quantity = value
        self._check_quantity()
        return self._reprice()

    def _check_quantity(self) -> None:
        try:
            checkout.check_quantity(self.quantity)
            self.quantity_error = ""
        except DomainError as exc:
            self.quantity_error = exc.message

    @rx.event
    def set_coupon_code(self, value: str):
        self.coupon_code = value
        return self._reprice()

    @rx.event
    def set_payment_method(self, value: str):
        self.payment_method_id = value
        self.payment_error = ""

    # --- adding a card ------------------------------------------------------------------------------

    @rx.event
    def set_card_dialog_open(self, is_open: bool):
        self.card_dialog_open = is_open
        self.card_number_error = self.card_expiry_error = self.card_cvc_error = self.card_form_error = ""
        self.setup_client_secret = ""
        if is_open and self.uses_stripe:
            return AddLicenseState.prepare_card_setup

    @rx.event(background=True)
    async def prepare_card_setup(self):
        """Stripe: a SetupIntent for the Payment Element in the open dialog."""
        async with self:
            with session_scope(write=False) as session:
                actor = self._actor(session, Permission.MANAGE_PAYMENT_METHODS)
        secret, message = await asyncio.to_thread(start_setup_outcome, actor)
        async with self:
            if self.card_dialog_open:
                self.setup_client_secret, self.card_form_error = secret, message

    @rx.event(background=True)
    async def stripe_card_saved(self, payment_method_id: str):
        """Stripe: the Payment Element confirmed the SetupIntent; keep the card (brand, last 4, expiry)."""
        async with self:
            actor = self._begin_save_card()
        if actor is None:
            return
        outcome = await asyncio.to_thread(confirmed_card_outcome, actor, str(payment_method_id)[:100])
        async with self:
            message = self._finish_save_card(outcome)
        if message:
            yield rx.toast.success(message)

    @rx.event(background=True)
    async def save_card(self, form_data: dict[str, str]):
        """The card fields arrive here once and go to the provider; no state var ever holds them."""
        async with self:
            actor = self._begin_save_card()
        if actor is None:
            return
        outcome = await asyncio.to_thread(save_card_outcome, actor, form_data)
        async with self:
            message = self._finish_save_card(outcome)
        if message:
            yield rx.toast.success(message)

    def _begin_save_card(self) -> Actor | None:
        if self.saving_card:
            return None  # already saving this card
        self.card_number_error = self.card_expiry_error = self.card_cvc_error = self.card_form_error = ""
        with session_scope(write=False) as session:
            actor = self._actor(session, Permission.MANAGE_PAYMENT_METHODS)
        self.saving_card = True  # last: nothing above may leave the form stuck busy
        return actor

    def _finish_save_card(self, outcome: CardOutcome) -> str:
        """Show the outcome; returns the confirmation to toast ("" when the card was not saved)."""
        self.saving_card = False
        if outcome.error is not None:
            target = {"card_number": "card_number_error", "expiry": "card_expiry_error",
                      "cvc": "card_cvc_error"}.get(outcome.error.field or "", "card_form_error")
            setattr(self, target, outcome.error.message)
            return ""
        saved = outcome.saved
        with session_scope(write=False) as session:
            actor = self._actor(session)
            self.payment_methods = payment_methods.list_payment_methods(
                session, account_id=actor.account_id, today=_now().date())
        self.payment_method_id = str(saved.id)
        self.payment_error = ""
        self.card_dialog_open = False
        return f"{saved.brand} ending in {saved.last4} added."

    # --- Create ---------------------------------------------------------------------------------------

    def _check_form(self) -> bool:
        self.check_reference_name()
        self._check_quantity()
        if not _is_id(self.plan_id):
            self.plan_error = "Choose a plan."
        self.payment_error = "" if _is_id(self.payment_method_id) else (
            "Add a payment method to create licenses." if not self.payment_methods
            else "Choose a payment method.")
        return not (self.name_error or self.quantity_error or self.plan_error or self.payment_error
                    or self.panel.coupon_status == "invalid")

    @rx.event(background=True)
    async def create(self):
        async with self:
            begun = self._begin_create()
        if begun is None:
            return
        outcome = await asyncio.to_thread(submit_purchase, *begun)
        async with self:
            created = self._finish_create(outcome)
            recheck = self.price_checking
            if created is not None:
                licenses = await self.get_state(LicensesState)
                licenses.created_license_id = created.license_id
        if recheck:
            yield AddLicenseState.confirm_price
        if created is not None:
            yield rx.redirect(routes.LICENSES)
            yield rx.toast.success(f"License “{created.reference_name}” created with {created.quantity} licenses.")

    def _begin_create(self) -> tuple[Actor, PurchaseRequest] | None:
        """Check the form and mark it busy; None when there is nothing to submit."""
        if self.creating or self.payment_action_secret:
            return None  # a second click while the first is under way (or waits for the bank's step)
        self.form_error = ""
        if self.price_checking:
            self.form_error = "One moment: the coupon is being confirmed. Press Create again when the price shows."
            return None
        if not self._check_form():
            self.form_error = "Check the highlighted fields."
            return None
        with session_scope(write=False) as session:
            actor = self._actor(session, Permission.BUY)
        request = PurchaseRequest(
            reference_name=self.reference_name, plan_id=int(self.plan_id), quantity=self.quantity,
            coupon_code=self.coupon_code, payment_method_id=int(self.payment_method_id),
            expected_total=self.panel.total, idempotency_key=self._idempotency_key, continue_only=self._continuing,
            client=self._buyer(actor).client,
        )
        self.creating, self._creating_since = True, time.time()  # last: nothing above may leave it stuck
        return actor, request

    def _finish_create(self, outcome: PurchaseOutcome) -> PurchaseResult | None:
        self.creating = False
        after_bank_step, self._continuing = self._continuing, False
        if outcome.result is not None:
            self._reset_form()
            return outcome.result
        if outcome.error is None:
            # Unknown failure: the key is kept, so pressing Create again cannot buy twice.
            self.form_error = "Something went wrong on our side. Press Create again; you will not be charged twice."
            return None
        exc = outcome.error
        if isinstance(exc, PaymentActionRequired) and not after_bank_step:
            # Stripe.js shows the bank's step; then Create runs again with the same key (payment_action_done).
            self.payment_action_secret = exc.client_secret
            self.form_error = self.payment_error = ""
            return None
        if isinstance(exc, PaymentActionRequired):
            # The step ended without the bank confirming (Stripe.js could not run it, say): not shown again by
            # itself, so it can never loop. The key stays: Create opens it again.
            self.form_error = self.payment_error = ("Your bank's confirmation did not finish. Press Create to try "
                                                    "again, or use another payment method.")
            return None
        if not isinstance(exc, ChargeUnconfirmed):
            self._idempotency_key = uuid.uuid4().hex  # nothing was bought: the next Create is a new submission
        field_var = {"reference_name": "name_error", "quantity": "quantity_error", "plan": "plan_error",
                     "payment": "payment_error"}.get(exc.field or "")
        if field_var:
            setattr(self, field_var, exc.message)
        self.form_error = exc.message
        self._reprice()  # shows the current price if it changed
        return None

    @rx.event
    def payment_action_done(self, message: str):
        """The bank's step is over (confirmed or not: `message` is Stripe's, if any). Create runs again with the
        same key: it finds the subscription paid and adds the licenses, or cancels it and says why."""
        if not self.payment_action_secret:
            return None
        if message:
            log.info("the bank's confirmation step ended: %s", printable(message, limit=200))
        self.payment_action_secret = ""
        self._continuing = True
        return AddLicenseState.create

    def _reset_form(self) -> None:
        self.reference_name = ""
        self.quantity = "1"
        self.coupon_code = ""
        self.form_error = self.name_error = self.quantity_error = self.payment_error = ""
        self._idempotency_key = uuid.uuid4().hex
        self._reprice()

"""The Add License screen: form values, field messages and the price panel, via the checkout services."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid

import reflex as rx

from cf_portal import routes
from cf_portal.clock import now, today
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
from cf_portal.state.calls import Outcome, Unexpected, outcome, provider, run
from cf_portal.state.cards import CardsState
from cf_portal.state.licenses import LicensesState
from cf_portal.state.portal import PortalState
from cf_portal.state.work import STUCK_AFTER_S

log = logging.getLogger(__name__)
# How long typing in the form is let settle before a coupon is confirmed with the provider (Stripe).
PRICE_CHECK_SETTLE_S = 0.25
# Longer than any check with the provider takes (its calls give up after about 20 seconds each).
PRICE_CHECK_STUCK_AFTER_S = 90

EMPTY_PANEL = PricePanel(unit_price="", quantity=0, subtotal="", discount="", total=0, total_display="",
                         coupon_status="none", coupon_message="", discount_note="", after_discount="",
                         monthly_note="")


# The purchase (its `result`), or why not (its `error`; an `Unexpected` one keeps the key: Create can be pressed
# again without buying twice).
PurchaseOutcome = Outcome[PurchaseResult]
CREATE_FAILED = "Something went wrong on our side. Press Create again; you will not be charged twice."


def submit_purchase(actor: Actor, request: PurchaseRequest) -> PurchaseOutcome:
    """Runs in a worker thread: the provider call may take seconds."""
    return outcome(lambda: create_license(None, provider(), actor=actor, request=request, now=now()),
                   failed=CREATE_FAILED, log_as="creating a license failed")


def provider_price_outcome(actor: Actor, *, plan_id: int, quantity: int, coupon_code: str,
                           client: str = "") -> PricePanel | None:
    """Runs in a worker thread: the provider's own preview of the price with this coupon (Stripe). None when it
    agrees, or when it cannot say (Create asks the provider again before it charges)."""
    return outcome(lambda: checkout.confirm_price_with_provider(
        None, provider(), actor=actor, plan_id=plan_id, quantity=quantity, coupon_code=coupon_code, now=now(),
        client=client), failed="", log_as="confirming a coupon with the payment provider failed").result


class AddLicenseCardsState(CardsState, PortalState):
    """The add-card dialog of Add License: a saved card is chosen for the purchase."""

    def _card_added(self, card: PaymentMethodView) -> rx.event.EventSpec:
        return AddLicenseState.card_added(card.id)


class AddLicenseState(PortalState):
    products: list[ProductOption] = []
    all_plans: list[PlanOption] = []
    payment_methods: list[PaymentMethodView] = []
    # With Stripe, the bank's step of a first payment runs in Stripe.js: it needs the publishable key.
    uses_stripe: bool = False
    stripe_publishable_key: str = ""
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
        actor = self._require()
        # The route checks the role too: a member who cannot buy sees why, and nothing of the form.
        self.allowed = actor.can(Permission.BUY)
        if not self.allowed:
            return
        catalog, self.payment_methods = self._read(lambda session, actor: (
            checkout.load_catalog(session),
            payment_methods.list_payment_methods(session, account_id=actor.account_id, today=today())))
        self.products, self.all_plans = catalog.products, catalog.plans
        settings = get_settings()
        self.uses_stripe = provider().collects_cards_in_browser  # Stripe's card form and its price preview
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
        if not self._idempotency_key:
            self._idempotency_key = uuid.uuid4().hex
        if self.creating and time.time() - self._creating_since > STUCK_AFTER_S:
            # The worker that ran Create is gone (a restart): let the person press Create again. The key is
            # kept, so that press finishes the same purchase and cannot charge twice.
            self.creating = False
        # The form is the page and stays; its card dialog does not (unless a card is being saved).
        confirm = self._reprice()
        return [AddLicenseCardsState.forget_dialog, *([confirm] if confirm is not None else [])]

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
            price = self._write if self.coupon_code.strip() else self._read  # a code's lookup is counted
            self.panel = price(lambda session, actor: checkout.throttled_price_panel(
                session, buyer=self._buyer(actor), plan_id=int(self.plan_id) if is_id(self.plan_id) else 0,
                quantity=quantity, coupon_code=self.coupon_code, now=now()), Permission.BUY)
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
                panel = await run(functools.partial(provider_price_outcome, actor, **fields))
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
        actor = self._require(Permission.BUY)
        return actor, dict(plan_id=int(self.plan_id) if is_id(self.plan_id) else 0, quantity=quantity,
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

    @rx.event
    def card_added(self, payment_method_id: int):
        """The card dialog saved a card: offer it, chosen."""
        self.payment_methods = self._read(lambda session, actor: payment_methods.list_payment_methods(
            session, account_id=actor.account_id, today=today()))
        if any(pm.id == payment_method_id for pm in self.payment_methods):
            self.payment_method_id = str(payment_method_id)
            self.payment_error = ""

    # --- Create ---------------------------------------------------------------------------------------

    def _check_form(self) -> bool:
        self.check_reference_name()
        self._check_quantity()
        if not is_id(self.plan_id):
            self.plan_error = "Choose a plan."
        self.payment_error = "" if is_id(self.payment_method_id) else (
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
        bought = await run(submit_purchase, *begun)
        async with self:
            created = self._finish_create(bought)
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
        actor = self._require(Permission.BUY)
        request = PurchaseRequest(
            reference_name=self.reference_name, plan_id=int(self.plan_id), quantity=self.quantity,
            coupon_code=self.coupon_code, payment_method_id=int(self.payment_method_id),
            expected_total=self.panel.total, idempotency_key=self._idempotency_key, continue_only=self._continuing,
            client=self._buyer(actor).client,
        )
        self.creating, self._creating_since = True, time.time()  # last: nothing above may leave it stuck
        return actor, request

    def _finish_create(self, bought: PurchaseOutcome) -> PurchaseResult | None:
        self.creating = False
        after_bank_step, self._continuing = self._continuing, False
        if bought.result is not None:
            self._reset_form()
            return bought.result
        if isinstance(bought.error, Unexpected):
            # Unknown failure: the key is kept, so pressing Create again cannot buy twice.
            self.form_error = bought.message
            return None
        exc = bought.error
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

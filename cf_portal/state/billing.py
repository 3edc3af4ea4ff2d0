"""The Billing page: invoices and saved payment methods (make one the default, remove one)."""

from __future__ import annotations

import time
from collections.abc import Callable

import reflex as rx

from cf_portal.clock import today
from cf_portal.services import billing, payment_methods
from cf_portal.services.actors import Actor
from cf_portal.services.billing import InvoiceDetail, InvoiceView, MonthlySpend
from cf_portal.services.errors import DomainError
from cf_portal.services.ids import parse_id
from cf_portal.services.payment_methods import PaymentMethodView, RemovalPreview
from cf_portal.services.roles import Permission
from cf_portal.state.calls import Outcome, outcome, provider, run
from cf_portal.state.cards import CardsState
from cf_portal.state.portal import PortalState
from cf_portal.state.work import STUCK_AFTER_S


def _card_id(value: object) -> int:
    return parse_id(value, "That payment method")


# A change of cards comes to the confirmation to show (its `result`) or why nothing changed (its `error`).
CardChangeOutcome = Outcome[str]
CHANGE_FAILED = "Something went wrong on our side. Reload the page to see your cards, then try again."


def _change_outcome(work: Callable[[], str]) -> CardChangeOutcome:
    return outcome(work, failed=CHANGE_FAILED, log_as="changing a payment method failed")


def default_card_outcome(actor: Actor, payment_method_id: int) -> CardChangeOutcome:
    """Runs in a worker thread: the provider call may take seconds."""
    def work() -> str:
        card = payment_methods.make_default(None, provider(), actor=actor, payment_method_id=payment_method_id,
                                            today=today())
        return f"{card.brand} ending in {card.last4} is now your default card."
    return _change_outcome(work)


def remove_card_outcome(actor: Actor, payment_method_id: int) -> CardChangeOutcome:
    """Runs in a worker thread: the provider calls may take seconds."""
    return _change_outcome(lambda: payment_methods.remove_payment_method(
        None, provider(), actor=actor, payment_method_id=payment_method_id, today=today()).message)


class BillingState(PortalState):
    invoices: list[InvoiceView] = []
    cards: list[PaymentMethodView] = []
    loaded: bool = False
    invoice: InvoiceDetail | None = None
    invoice_open: bool = False
    # The last 12 months' paid invoices, by month (the chart).
    spend: MonthlySpend = MonthlySpend(currency="usd", months=[], total="", has_spend=False)
    provider_pdfs: bool = False  # the payment provider keeps a PDF of each invoice too (Stripe): link it

    # A change of cards under way (its buttons show it), and the Remove confirmation.
    changing: bool = False
    changing_card_id: int = 0
    removal: RemovalPreview | None = None
    remove_open: bool = False
    _changing_since: float = 0.0

    def _refresh(self) -> None:
        self.invoices, self.cards, spend = self._read(lambda session, actor: (
            billing.list_invoices(session, account_id=actor.account_id),
            payment_methods.list_payment_methods(session, account_id=actor.account_id, today=today()),
            billing.monthly_spend(session, account_id=actor.account_id, today=today())))
        if spend != self.spend:  # the same series again sends nothing to the browser
            self.spend = spend
        self.provider_pdfs = provider().hosts_invoice_documents
        self.loaded = True

    @rx.event
    def load(self):
        """The lists again; no dialog is kept from an earlier visit, but a removal under way keeps its own."""
        self._refresh()
        self.invoice, self.invoice_open = None, False
        if not self.changing:
            self.removal, self.remove_open = None, False
        return BillingCardsState.forget_dialog

    @rx.event
    def open_invoice(self, invoice_id: int):
        try:
            self.invoice = self._read(lambda session, actor: billing.invoice_detail(
                session, account_id=actor.account_id, invoice_id=parse_id(invoice_id, "That invoice")))
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.invoice_open = True

    @rx.event
    def set_invoice_open(self, is_open: bool):
        self._require()
        self.invoice_open = is_open and self.invoice is not None

    # --- the default card, removing a card -------------------------------------------------------------

    @rx.event(background=True)
    async def make_default(self, payment_method_id: int):
        if (shown := await self._change_card(default_card_outcome, payment_method_id)) is not None:
            yield shown

    @rx.event
    def ask_remove(self, payment_method_id: int):
        """Open the confirmation, which names the card and says what happens to the licenses billed to it."""
        try:
            self.removal = self._read(lambda session, actor: payment_methods.preview_removal(
                session, actor=actor, payment_method_id=_card_id(payment_method_id), today=today()),
                Permission.MANAGE_PAYMENT_METHODS)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.remove_open = True

    @rx.event
    def set_remove_open(self, is_open: bool):
        self._require()
        if not self.changing:  # the dialog stays while its removal is under way
            self.remove_open = is_open and self.removal is not None

    @rx.event(background=True)
    async def remove_card(self, payment_method_id: int):
        if (shown := await self._change_card(remove_card_outcome, payment_method_id)) is not None:
            yield shown

    async def _change_card(self, worker: Callable[[Actor, int], CardChangeOutcome],
                           payment_method_id: int) -> rx.event.EventSpec | None:
        """A background handler's change of cards: the role is checked and the button marked busy under the
        state's lock, the provider is called in a worker thread without it, the outcome is shown under it again."""
        async with self:
            actor = self._begin_card_change(payment_method_id)
        if actor is None:
            return None
        changed = await run(worker, actor, _card_id(payment_method_id))
        async with self:
            return self._finish_card_change(changed)

    def _begin_card_change(self, payment_method_id: int) -> Actor | None:
        """Check the member's role and mark the card busy; None while another change from this page is under way."""
        if self.changing and time.time() - self._changing_since < STUCK_AFTER_S:
            return None
        actor = self._require(Permission.MANAGE_PAYMENT_METHODS)
        card_id = _card_id(payment_method_id)
        # Last: nothing above may leave the buttons stuck busy.
        self.changing, self.changing_card_id, self._changing_since = True, card_id, time.time()
        return actor

    def _finish_card_change(self, changed: CardChangeOutcome) -> rx.event.EventSpec:
        self.changing, self.changing_card_id, self.remove_open = False, 0, False
        self._refresh()
        return rx.toast.error(changed.message) if changed.error else rx.toast.success(changed.result)


class BillingCardsState(CardsState, PortalState):
    """The add-card dialog of Billing: a saved card joins the list."""

    def _card_added(self, card: PaymentMethodView) -> rx.event.EventSpec:
        return BillingState.load

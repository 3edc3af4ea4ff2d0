"""The Billing page: invoices and saved payment methods."""

from __future__ import annotations

from datetime import UTC, datetime

import reflex as rx

from cf_portal.db import session_scope
from cf_portal.services import billing, payment_methods
from cf_portal.services.billing import InvoiceDetail, InvoiceView
from cf_portal.services.errors import DomainError
from cf_portal.services.payment_methods import PaymentMethodView
from cf_portal.services.roles import Permission
from cf_portal.state.portal import PortalState


class BillingState(PortalState):
    invoices: list[InvoiceView] = []
    cards: list[PaymentMethodView] = []
    loaded: bool = False
    invoice: InvoiceDetail | None = None
    invoice_open: bool = False

    def _refresh(self) -> None:
        with session_scope(write=False) as session:
            actor = self._actor(session)
            self.invoices = billing.list_invoices(session, account_id=actor.account_id)
            self.cards = payment_methods.list_payment_methods(session, account_id=actor.account_id,
                                                              today=datetime.now(UTC).date())
        self.loaded = True

    @rx.event
    def load(self):
        self._refresh()

    @rx.event
    def open_invoice(self, invoice_id: int):
        try:
            with session_scope(write=False) as session:
                actor = self._actor(session)
                self.invoice = billing.invoice_detail(session, account_id=actor.account_id, invoice_id=invoice_id)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.invoice_open = True

    @rx.event
    def set_invoice_open(self, is_open: bool):
        self.invoice_open = is_open and self.invoice is not None

    @rx.event
    def make_default(self, payment_method_id: int):
        try:
            with session_scope() as session:
                billing.set_default_payment_method(session, actor=self._actor(session, Permission.MANAGE_PAYMENT_METHODS),
                                                   payment_method_id=payment_method_id)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._refresh()
        return rx.toast.success("Default payment method changed.")

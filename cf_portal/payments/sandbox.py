"""The built-in sandbox payment provider: Stripe test-mode behaviour with no network.

Its state lives in the app's database (the `sandbox_*` tables), written in transactions of its own,
as a remote provider's would be: a rollback in the app does not undo a sandbox charge.

This store is the one part of `payments/` that uses `cf_portal.db`, on purpose: it is handed its engine
(`SandboxProvider(engine)`; None is the app's) and opens its transactions with `db.session_scope`, so that
they get the same care as the app's own (SQLite: WAL, foreign keys, writers taking the lock up front;
PostgreSQL: the same pool), and its tables (`sandbox_tables.py`) are migrated with the app's.

It has neither optional capability of `PaymentProvider`: its card form is the portal's own (`add_card`),
and it charges the portal's figures as given (no invoice preview).

Test cards, as Stripe documents them (any future expiry, any CVC):
  4242 4242 4242 4242  succeeds             4000 0000 0000 0002  declined (card_declined)
  4000 0000 0000 9995  insufficient funds   4000 0000 0000 0069  expired card
  4000 0000 0000 0119  processing error     5555 5555 5555 4444  Mastercard, succeeds
  4000 0000 0000 0341  saved, then every charge declined (a renewal that fails)
The declining cards are accepted when added and refused when charged, so a demo can show a decline
at Create, or (0341 made a license's card) a renewal that fails. A number that fails the Luhn check, or a past expiry, is refused when added.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from cf_portal import clock
from cf_portal.db import session_scope
from cf_portal.payments.cards import brand_of, is_expired, parse_card
from cf_portal.payments.provider import (
    DECLINES,
    PROCESSING_ERROR,
    CardDeclined,
    CardDetails,
    CardSetup,
    CatalogCoupon,
    CatalogPlan,
    ChargeFigures,
    InvoiceData,
    InvoiceLineData,
    NotSupported,
    PaymentError,
    SavedCard,
    SubscriptionData,
    SubscriptionDiscount,
    SubscriptionState,
)
from cf_portal.payments.sandbox_tables import (
    SandboxCustomer,
    SandboxIdempotencyKey,
    SandboxInvoice,
    SandboxPaymentMethod,
    SandboxSubscription,
)

# Numbers from Stripe's testing documentation and what a charge on them does.
TEST_CARD_BEHAVIOUR = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000119": "processing_error",
    "4000000000000341": "card_declined",
}

def invoice_amounts(*, unit_amount: int, quantity: int,
                    discount: SubscriptionDiscount | None) -> tuple[int, int, int]:
    """(subtotal, discount, total) of a first invoice, worked out the way Stripe describes an invoice, not with the
    portal's pricing function, so that "the charge equals the quote" compares two computations: the subtotal is the
    line's unit amount times its quantity; a percent-off coupon takes that percentage of the subtotal, rounded to the
    nearest cent with halves away from zero; an amount-off coupon is subtracted from the subtotal; the total never
    goes below zero."""
    subtotal = unit_amount * quantity
    off = 0
    if discount is not None and discount.percent_off:
        exact = Decimal(subtotal) * Decimal(discount.percent_off) / Decimal(100)
        off = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    elif discount is not None and discount.amount_off:
        off = discount.amount_off
    total = max(subtotal - off, 0)
    return subtotal, subtotal - total, total


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _saved(pm: SandboxPaymentMethod) -> SavedCard:
    # Only the last 4 of a number are kept here: with the brand, they stand for Stripe's card fingerprint.
    return SavedCard(pm.id, pm.brand, pm.last4, pm.exp_month, pm.exp_year, fingerprint=f"{pm.brand}-{pm.last4}")


def _request_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


class SandboxProvider:
    name = "sandbox"
    collects_cards_in_browser = False  # its card form is the portal's own (`add_card`)
    previews_invoices = False  # it charges the portal's figures as given
    renews_by_itself = False  # `bill-due` asks it to charge each period (`charge_renewal`)
    hosts_invoice_documents = False  # the portal's own PDF is the only one


    def __init__(self, engine: sa.Engine | None = None, *, today: Callable[[], date] | None = None) -> None:
        self._engine = engine
        self._today = today or clock.today

    # --- idempotency ------------------------------------------------------------------------

    def _idempotent(self, session: Session, key: str, operation: str, params: dict[str, Any],
                    run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Replay the stored result of `key`, or run the operation and store its result (errors too)."""
        request_hash = _request_hash(params)
        # Claim the key first: a concurrent request with the same key waits here for our commit.
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        # RETURNING tells whether the row went in (rowcount is not reliable for this on every driver).
        claimed = session.execute(
            insert(SandboxIdempotencyKey)
            .values(key=key, operation=operation, request_hash=request_hash, response_json="",
                    created_at=clock.now())
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(SandboxIdempotencyKey.key)
        ).first()
        if claimed is None:
            stored = session.get(SandboxIdempotencyKey, key)
            if stored.operation != operation or stored.request_hash != request_hash:
                raise PaymentError(
                    "idempotency_error",
                    "This request was already sent with different details. Reload the page and try again.",
                )
            return json.loads(stored.response_json)
        try:
            result = {"ok": run()}
        except PaymentError as exc:
            result = {"error": {"type": type(exc).__name__, "code": exc.code, "message": exc.message,
                                "decline_code": exc.decline_code, "field": exc.field}}
        session.execute(
            sa.update(SandboxIdempotencyKey).where(SandboxIdempotencyKey.key == key)
            .values(response_json=json.dumps(result))
        )
        return result

    @staticmethod
    def _unwrap(result: dict[str, Any]) -> dict[str, Any]:
        if "error" in result:
            err = result["error"]
            cls = CardDeclined if err["type"] == "CardDeclined" else PaymentError
            raise cls(err["code"], err["message"], decline_code=err["decline_code"], field=err["field"])
        return result["ok"]

    # --- customers and cards ----------------------------------------------------------------

    def ensure_customer(self, *, account_id: int, account_name: str, customer_id: str | None) -> str:
        """Two first requests of one account at once get one customer (its unique `account_id` decides), as
        Stripe's idempotency key per account gives them."""
        try:
            with session_scope(self._engine) as session:
                if customer_id and session.get(SandboxCustomer, customer_id) is not None:
                    return customer_id
                existing = session.exec(select(SandboxCustomer).where(SandboxCustomer.account_id == account_id)
                                        ).first()
                if existing is not None:
                    return existing.id
                customer = SandboxCustomer(id=_new_id("cus"), account_id=account_id, name=account_name)
                session.add(customer)
                return customer.id
        except sa.exc.IntegrityError:  # the other request's customer was committed first
            with session_scope(self._engine, write=False) as session:
                return session.exec(select(SandboxCustomer.id).where(SandboxCustomer.account_id == account_id)).one()

    def add_card(self, *, customer_id: str, card: CardDetails, make_default: bool,
                 idempotency_key: str) -> SavedCard:
        # Validate again: the sandbox, like Stripe, refuses what a form let through.
        checked = parse_card(card.number, f"{card.exp_month:02d}/{card.exp_year}", card.cvc, today=self._today())
        params = {"customer": customer_id, "last4": checked.number[-4:], "exp": [checked.exp_month, checked.exp_year],
                  "default": make_default}

        def run() -> dict[str, Any]:
            if session.get(SandboxCustomer, customer_id) is None:
                raise PaymentError("resource_missing", "No such customer.")
            if make_default:
                session.execute(sa.update(SandboxPaymentMethod)
                                .where(SandboxPaymentMethod.customer_id == customer_id)
                                .values(is_default=False))
            pm = SandboxPaymentMethod(
                id=_new_id("pm"), customer_id=customer_id, brand=brand_of(checked.number),
                last4=checked.number[-4:], exp_month=checked.exp_month, exp_year=checked.exp_year,
                behaviour=TEST_CARD_BEHAVIOUR.get(checked.number, "succeeds"), is_default=make_default,
            )
            session.add(pm)
            session.flush()
            return asdict(_saved(pm))

        with session_scope(self._engine) as session:
            result = self._idempotent(session, idempotency_key, "add_card", params, run)
        return SavedCard(**self._unwrap(result))

    def list_payment_methods(self, *, customer_id: str) -> list[SavedCard]:
        with session_scope(self._engine, write=False) as session:
            rows = session.exec(select(SandboxPaymentMethod)
                                .where(SandboxPaymentMethod.customer_id == customer_id)
                                .order_by(SandboxPaymentMethod.created_at)).all()
            return [_saved(r) for r in rows]

    def set_default_payment_method(self, *, customer_id: str, payment_method_id: str) -> None:
        with session_scope(self._engine) as session:
            pm = session.get(SandboxPaymentMethod, payment_method_id)
            if pm is None or pm.customer_id != customer_id:
                raise PaymentError("resource_missing", "No such payment method.")
            session.execute(sa.update(SandboxPaymentMethod)
                            .where(SandboxPaymentMethod.customer_id == customer_id,
                                   SandboxPaymentMethod.id != payment_method_id)
                            .values(is_default=False))
            pm.is_default = True

    def remove_payment_method(self, *, customer_id: str, payment_method_id: str) -> None:
        with session_scope(self._engine) as session:
            pm = session.get(SandboxPaymentMethod, payment_method_id)
            if pm is None or pm.customer_id != customer_id:
                raise PaymentError("resource_missing", "No such payment method.")
            pm.customer_id = None  # detached, as Stripe does
            pm.is_default = False

    # --- subscriptions ------------------------------------------------------------------------

    def create_subscription(self, *, customer_id: str, payment_method_id: str, product_name: str, plan_code: str,
                            unit_amount: int, currency: str, quantity: int,
                            discount: SubscriptionDiscount | None, description: str, metadata: dict[str, str],
                            idempotency_key: str) -> SubscriptionData:
        params = {"customer": customer_id, "pm": payment_method_id, "plan": plan_code, "unit_amount": unit_amount,
                  "currency": currency, "quantity": quantity, "discount": asdict(discount) if discount else None,
                  "description": description, "metadata": metadata}

        def run() -> dict[str, Any]:
            pm = session.get(SandboxPaymentMethod, payment_method_id)
            if pm is None or pm.customer_id != customer_id:
                raise PaymentError("resource_missing", "This payment method is no longer available.")
            subtotal, off, total = invoice_amounts(unit_amount=unit_amount, quantity=quantity, discount=discount)
            self._charge_card(pm, total)
            sub = SandboxSubscription(
                id=_new_id("sub"), customer_id=customer_id, payment_method_id=pm.id, description=description,
                plan_code=plan_code, unit_amount=unit_amount, currency=currency, quantity=quantity,
                coupon_code=discount.coupon_code if discount else None, status="active",
                metadata_json=json.dumps(metadata, sort_keys=True),
            )
            session.add(sub)
            session.flush()
            line = f"{description} · {product_name} × {quantity}"
            invoice = SandboxInvoice(
                id=_new_id("in"), number=f"SBX-{secrets.token_hex(5).upper()}", customer_id=customer_id, subscription_id=sub.id,
                status="paid", currency=currency, subtotal=subtotal, discount=off, total=total,
                line_description=line[:200],
            )
            session.add(invoice)
            session.flush()
            return {"id": sub.id, "status": sub.status, "invoice": self._invoice_dict(invoice, quantity, unit_amount)}

        with session_scope(self._engine) as session:
            result = self._idempotent(session, idempotency_key, "create_subscription", params, run)
        data = self._unwrap(result)
        return SubscriptionData(provider_id=data["id"], status=data["status"],
                                latest_invoice=self._invoice_from_dict(data["invoice"]))

    def _charge_card(self, pm: SandboxPaymentMethod | None, total: int) -> None:
        """Charge `total` to the card as its test number says: nothing happens, or CardDeclined / PaymentError."""
        if total <= 0:
            return
        if pm is None or pm.customer_id is None:
            raise PaymentError("resource_missing", "This payment method is no longer available.")
        behaviour = pm.behaviour
        if behaviour == "succeeds" and is_expired(pm.exp_month, pm.exp_year, today=self._today()):
            behaviour = "expired_card"
        if behaviour in DECLINES:
            code, decline_code, message = DECLINES[behaviour]
            raise CardDeclined(code, message, decline_code=decline_code)
        if behaviour == "processing_error":
            raise PaymentError("processing_error", PROCESSING_ERROR)

    def _charged_invoice(self, session: Session, sub: SandboxSubscription, charge: ChargeFigures) -> dict[str, Any]:
        """Charge the figures to the subscription's card and write the paid invoice (or raise, writing nothing)."""
        self._charge_card(session.get(SandboxPaymentMethod, sub.payment_method_id), charge.total)
        lines = [asdict(line) for line in charge.lines]
        invoice = SandboxInvoice(
            id=_new_id("in"), number=f"SBX-{secrets.token_hex(5).upper()}", customer_id=sub.customer_id,
            subscription_id=sub.id, status="paid", currency=charge.currency, subtotal=charge.subtotal,
            discount=charge.discount, total=charge.total,
            line_description=(charge.lines[0].description if charge.lines else sub.description)[:200],
            lines_json=json.dumps(lines),
        )
        session.add(invoice)
        session.flush()
        return self._invoice_dict(invoice, sub.quantity, sub.unit_amount)

    def _live_subscription(self, session: Session, subscription_id: str) -> SandboxSubscription:
        sub = session.get(SandboxSubscription, subscription_id)
        if sub is None or sub.status == "canceled":
            raise PaymentError("resource_missing", "No such subscription.")
        return sub

    def charge_renewal(self, *, subscription_id: str, period_index: int, charge: ChargeFigures,
                       idempotency_key: str) -> InvoiceData:
        params = {"subscription": subscription_id, "period": period_index, "charge": asdict(charge)}

        def run() -> dict[str, Any]:
            sub = self._live_subscription(session, subscription_id)
            try:
                invoice = self._charged_invoice(session, sub, charge)
            except PaymentError:
                sub.status = "past_due"  # as Stripe's subscription whose renewal is unpaid
                raise
            sub.status = "active"
            return invoice

        with session_scope(self._engine) as session:
            result = self._idempotent(session, idempotency_key, "charge_renewal", params, run)
        return self._invoice_from_dict(self._unwrap(result))

    def change_subscription(self, *, subscription_id: str, plan_code: str, unit_amount: int, currency: str,
                            quantity: int, proration_date: datetime, charge: ChargeFigures | None,
                            idempotency_key: str) -> InvoiceData | None:
        params = {"subscription": subscription_id, "plan": plan_code, "unit_amount": unit_amount,
                  "currency": currency, "quantity": quantity, "proration_date": proration_date.isoformat(),
                  "charge": asdict(charge) if charge else None}

        def run() -> dict[str, Any]:
            sub = self._live_subscription(session, subscription_id)
            # Paid or nothing (Stripe's payment_behavior=pending_if_incomplete): charge first, then change.
            invoice = self._charged_invoice(session, sub, charge) if charge is not None and charge.total > 0 else None
            sub.plan_code, sub.unit_amount, sub.quantity = plan_code, unit_amount, quantity
            return {"invoice": invoice}

        with session_scope(self._engine) as session:
            result = self._idempotent(session, idempotency_key, "change_subscription", params, run)
        invoice = self._unwrap(result)["invoice"]
        return None if invoice is None else self._invoice_from_dict(invoice)

    def preview_change(self, *, subscription_id: str, plan_code: str, unit_amount: int, currency: str,
                       quantity: int, proration_date: datetime) -> int:
        raise NotSupported(self.name, "invoice preview")

    def schedule_change(self, *, subscription_id: str, plan_code: str, unit_amount: int, currency: str,
                        quantity: int) -> None:
        # As Stripe with proration_behavior=none: the subscription says the new terms at once, charged from the
        # next period (which the portal's bill-due charges with its own figures).
        with session_scope(self._engine) as session:
            sub = self._live_subscription(session, subscription_id)
            sub.plan_code, sub.unit_amount, sub.quantity = plan_code, unit_amount, quantity

    def set_cancel_at_period_end(self, *, subscription_id: str, cancel: bool) -> None:
        with session_scope(self._engine) as session:
            sub = self._live_subscription(session, subscription_id)
            sub.cancel_at_period_end = cancel

    def set_subscription_payment_method(self, *, subscription_id: str, payment_method_id: str) -> None:
        with session_scope(self._engine) as session:
            sub = session.get(SandboxSubscription, subscription_id)
            if sub is None:
                raise PaymentError("resource_missing", "No such subscription.")
            pm = session.get(SandboxPaymentMethod, payment_method_id)
            if pm is None or pm.customer_id != sub.customer_id:
                raise PaymentError("resource_missing", "No such payment method.")
            sub.payment_method_id = pm.id

    def cancel_subscription(self, *, subscription_id: str) -> None:
        with session_scope(self._engine) as session:
            sub = session.get(SandboxSubscription, subscription_id)
            if sub is None:
                raise PaymentError("resource_missing", "No such subscription.")
            if sub.status != "canceled":
                sub.status = "canceled"
                sub.canceled_at = clock.now()

    def get_subscription(self, *, subscription_id: str) -> SubscriptionState | None:
        with session_scope(self._engine, write=False) as session:
            sub = session.get(SandboxSubscription, subscription_id)
            return None if sub is None else SubscriptionState(provider_id=sub.id, status=sub.status,
                                                              quantity=sub.quantity)

    def list_subscriptions(self, *, customer_id: str) -> list[SubscriptionState]:
        with session_scope(self._engine, write=False) as session:
            rows = session.exec(select(SandboxSubscription).where(SandboxSubscription.customer_id == customer_id)
                                .order_by(SandboxSubscription.created_at)).all()
            return [SubscriptionState(provider_id=r.id, status=r.status, quantity=r.quantity,
                                      license_id=json.loads(r.metadata_json).get("license_id")) for r in rows]

    def find_subscription(self, *, customer_id: str, license_id: str, purchase_key: str) -> SubscriptionData | None:
        """The sandbox charges at once or not at all: a subscription it made is active and paid."""
        with session_scope(self._engine, write=False) as session:
            rows = session.exec(select(SandboxSubscription).where(SandboxSubscription.customer_id == customer_id,
                                                                  SandboxSubscription.status != "canceled")
                                .order_by(SandboxSubscription.created_at)).all()
            wanted = {"license_id": license_id, "purchase_key": purchase_key}
            sub = next((r for r in rows if wanted.items() <= json.loads(r.metadata_json).items()), None)
            if sub is None:
                return None
            invoice = session.exec(select(SandboxInvoice).where(SandboxInvoice.subscription_id == sub.id)
                                   .order_by(SandboxInvoice.created_at)).first()
            return SubscriptionData(provider_id=sub.id, status=sub.status, latest_invoice=self._invoice_from_dict(
                self._invoice_dict(invoice, sub.quantity, sub.unit_amount)))

    def create_setup_intent(self, *, customer_id: str, idempotency_key: str) -> CardSetup:
        raise NotSupported(self.name, "card form of its own")

    def get_setup_intent(self, *, setup_intent_id: str) -> CardSetup | None:
        raise NotSupported(self.name, "card form of its own")

    def attach_confirmed_payment_method(self, *, customer_id: str, setup_intent_id: str, payment_method_id: str,
                                        make_default: bool) -> SavedCard:
        raise NotSupported(self.name, "card form of its own")

    def preview_first_invoice(self, *, customer_id: str, plan_code: str, unit_amount: int, currency: str,
                              quantity: int, coupon_code: str | None) -> int:
        raise NotSupported(self.name, "invoice preview")

    def sync_catalog(self, *, plans: list[CatalogPlan], coupons: list[CatalogCoupon]) -> list[str]:
        return ["The sandbox prices from the portal's own catalog: nothing to sync."]

    def invoice_document_url(self, *, invoice_id: str) -> str | None:
        raise NotSupported(self.name, "invoice PDF of its own")

    def list_invoices(self, *, customer_id: str) -> list[InvoiceData]:
        with session_scope(self._engine, write=False) as session:
            rows = session.exec(
                select(SandboxInvoice, SandboxSubscription)
                .join(SandboxSubscription, SandboxSubscription.id == SandboxInvoice.subscription_id)
                .where(SandboxInvoice.customer_id == customer_id)
                .order_by(SandboxInvoice.created_at)
            ).all()
            return [self._invoice_from_dict(self._invoice_dict(inv, sub.quantity, sub.unit_amount))
                    for inv, sub in rows]

    @staticmethod
    def _invoice_dict(inv: SandboxInvoice, quantity: int, unit_amount: int) -> dict[str, Any]:
        lines = json.loads(inv.lines_json) if inv.lines_json else [
            {"description": inv.line_description, "quantity": quantity, "unit_amount": unit_amount,
             "amount": inv.subtotal}]
        return {"id": inv.id, "number": inv.number, "status": inv.status, "currency": inv.currency,
                "subtotal": inv.subtotal, "discount": inv.discount, "total": inv.total, "lines": lines}

    @staticmethod
    def _invoice_from_dict(d: dict[str, Any]) -> InvoiceData:
        return InvoiceData(provider_id=d["id"], number=d["number"], status=d["status"], currency=d["currency"],
                           subtotal=d["subtotal"], discount=d["discount"], total=d["total"],
                           lines=tuple(InvoiceLineData(**line) for line in d["lines"]))

"""The Add License screen's rules: what can be bought, form checks, and the price panel.

The price panel and the charge both come from `cf_portal.services.pricing.quote`. A provider that prices
with its own catalog (Stripe) is asked for its total too (`check_provider_total`): the panel shows a coupon
only once the provider's preview agrees (`confirm_price_with_provider`), and Create charges only when it
still does, so the number shown is the portal's and the provider's alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal.db import session_scope
from cf_portal.models import Coupon, Plan, Product
from cf_portal.payments.provider import PaymentError, PaymentProvider, ProviderUnavailable
from cf_portal.services import throttle
from cf_portal.services.actors import Actor
from cf_portal.services.coupons import (
    CouponRejected,
    describe,
    discount_of,
    find_applicable_coupon,
    normalise_code,
)
from cf_portal.services.errors import DomainError
from cf_portal.services.payment_methods import ProviderBusy, provider_customer, spend_provider_lookup
from cf_portal.services.pricing import Quote, format_money, quote
from cf_portal.services.roles import Permission
from cf_portal.services.validation import check_name

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 80
MAX_QUANTITY = 1000


class ProductOption(BaseModel):
    id: int
    name: str
    description: str


class PlanOption(BaseModel):
    id: int
    product_id: int
    name: str
    unit_amount: int
    currency: str
    label: str  # "Business — $19.00 per license / month"


class Catalog(BaseModel):
    products: list[ProductOption]
    plans: list[PlanOption]


class PricePanel(BaseModel):
    """Everything the price panel shows; amounts already formatted for display."""

    unit_price: str
    quantity: int
    subtotal: str
    discount: str  # "" when there is none
    total: int  # minor units: what Create will charge
    total_display: str
    coupon_status: str  # "none" | "valid" | "invalid"
    coupon_message: str
    discount_note: str  # "for the first month", "for 3 months", "every month"
    after_discount: str  # "Then $95.00 / month" when the discount is temporary, else ""
    monthly_note: str  # "Billed monthly: $76.00 / month"


def load_catalog(session: Session) -> Catalog:
    """Products and the plans still on sale, in display order."""
    rows = session.exec(
        select(Plan, Product).join(Product, Product.id == Plan.product_id)
        .where(Plan.retired_at.is_(None))
        .order_by(Product.sort_order, Product.id, Plan.sort_order, Plan.id)
    ).all()
    products: dict[int, ProductOption] = {}
    plans = []
    for plan, product in rows:
        products.setdefault(product.id, ProductOption(id=product.id, name=product.name,
                                                      description=product.description))
        plans.append(PlanOption(
            id=plan.id, product_id=product.id, name=plan.name, unit_amount=plan.unit_amount,
            currency=plan.currency,
            label=f"{plan.name} — {format_money(plan.unit_amount, plan.currency)} per license / month",
        ))
    return Catalog(products=list(products.values()), plans=plans)


def check_reference_name(text: str) -> str:
    return check_name(text, field="reference_name", max_length=MAX_NAME_LENGTH, what="the license name",
                      blank="Enter a name for this license, for example a team or a person.")


def check_quantity(text: str | int) -> int:
    raw = str(text).strip().replace(",", "")
    if not (raw.isascii() and raw.isdigit()):  # "²" is a digit to str.isdigit, not to int()
        raise DomainError(f"Enter a whole number of licenses from 1 to {MAX_QUANTITY:,}.", field="quantity")
    quantity = int(raw)
    if not 1 <= quantity <= MAX_QUANTITY:
        raise DomainError(f"Enter a whole number of licenses from 1 to {MAX_QUANTITY:,}.", field="quantity")
    return quantity


def plan_on_sale(session: Session, plan_id: int | None) -> tuple[Plan, Product]:
    row = session.exec(
        select(Plan, Product).join(Product, Product.id == Plan.product_id).where(Plan.id == plan_id)
    ).first() if plan_id else None
    if row is None:
        raise DomainError("Choose a plan.", field="plan")
    plan, product = row
    if plan.retired_at is not None:
        raise DomainError("This plan is no longer sold. Choose another plan.", field="plan")
    return plan, product


def price(session: Session, *, plan: Plan, quantity: int, coupon_code: str, now: datetime,
          buyer: Buyer | None = None) -> tuple[Quote, Coupon | None, CouponRejected | None]:
    """The quote for a purchase, with the coupon if it applies (else why it does not). With a `buyer`, the code
    is looked up as `look_up_coupon` does: throttled and counted."""
    coupon, rejected = None, None
    if coupon_code.strip():
        try:
            if buyer is None:
                coupon = find_applicable_coupon(session, code=coupon_code, product_id=plan.product_id,
                                                quantity=quantity, currency=plan.currency, now=now)
            else:
                coupon = look_up_coupon(session, buyer=buyer, plan=plan, quantity=quantity, coupon_code=coupon_code,
                                        now=now)
        except CouponRejected as exc:
            rejected = exc
    result = quote(unit_amount=plan.unit_amount, quantity=quantity, currency=plan.currency,
                   discount=discount_of(coupon) if coupon else None)
    return result, coupon, rejected


@dataclass(frozen=True)
class Buyer:
    """Who looks a coupon code up: guessing is counted per account and per client (an IP address)."""

    account_id: int
    client: str = ""


class CouponLookupsWaiting(CouponRejected):
    def __init__(self, wait: throttle.Wait) -> None:
        super().__init__(f"Too many coupon codes that don't exist were tried. Try again in {wait.in_words()}.")


def coupon_throttle_checks(buyer: Buyer) -> list[tuple[str, throttle.Policy]]:
    checks = [(f"coupon-account:{buyer.account_id}", throttle.COUPON_ACCOUNT)]
    if buyer.client:
        checks.append((f"coupon-client:{buyer.client}", throttle.COUPON_CLIENT))
    return checks


def look_up_coupon(session: Session, *, buyer: Buyer, plan: Plan, quantity: int, coupon_code: str,
                   now: datetime) -> Coupon:
    """A buyer's lookup of a coupon code: every path that looks a code up for a buyer (the price panel on any
    change of the form, the provider's confirmation, Create) comes through here. Guessing is slowed down, then
    locked, per account and per client: a waiting buyer's code is not looked up at all (CouponLookupsWaiting),
    and every lookup of a code that does not exist counts, whatever triggered it. Needs a write session: the
    keys' rows stay locked until the count is written, so parallel guesses are judged one after another."""
    checks = coupon_throttle_checks(buyer)
    wait = throttle.locked_wait(session, checks, now=now)
    if wait:
        raise CouponLookupsWaiting(wait)
    try:
        return find_applicable_coupon(session, code=coupon_code, product_id=plan.product_id, quantity=quantity,
                                      currency=plan.currency, now=now)
    except CouponRejected as exc:
        if exc.unknown:
            for key, policy in checks:
                throttle.record_failure(session, key, policy, now=now)
        raise


def throttled_price_panel(session: Session, *, buyer: Buyer, plan_id: int, quantity: int, coupon_code: str,
                          now: datetime) -> PricePanel:
    """The price panel for a buyer: the code is looked up with `look_up_coupon` (throttled, counted)."""
    return _price_panel(session, plan_id=plan_id, quantity=quantity, coupon_code=coupon_code, now=now, buyer=buyer)


def price_panel(session: Session, *, plan_id: int, quantity: int, coupon_code: str, now: datetime) -> PricePanel:
    """The panel as the portal prices it, with no throttling: for codes that were looked up already, or none."""
    return _price_panel(session, plan_id=plan_id, quantity=quantity, coupon_code=coupon_code, now=now)


def _price_panel(session: Session, *, plan_id: int, quantity: int, coupon_code: str, now: datetime,
                 buyer: Buyer | None = None) -> PricePanel:
    plan, _ = plan_on_sale(session, plan_id)
    result, coupon, rejected = price(session, plan=plan, quantity=quantity, coupon_code=coupon_code, now=now,
                                     buyer=buyer)
    money = lambda amount: format_money(amount, result.currency)  # noqa: E731
    if result.discount_months is None:
        note = "every month"
    elif result.discount_months == 1:
        note = "on the first month"
    else:
        note = f"for {result.discount_months} months"
    return PricePanel(
        unit_price=money(result.unit_amount),
        quantity=result.quantity,
        subtotal=money(result.subtotal),
        discount=f"−{money(result.discount)}" if result.discount else "",
        total=result.total,
        total_display=money(result.total),
        coupon_status="valid" if coupon else ("invalid" if rejected else "none"),
        coupon_message=describe(coupon) if coupon else (rejected.message if rejected else ""),
        discount_note=note if result.discount else "",
        after_discount=(f"Then {money(result.monthly_after_discount)} / month after the discount ends"
                        if result.discount_is_temporary else ""),
        monthly_note=f"Billed monthly. Next month: {money(result.amount_for_month(1))}",
    )


PRICE_UNCONFIRMED = "This price could not be confirmed with our payment provider."
COUPON_UNCONFIRMED = ("This coupon could not be confirmed with our payment provider. Remove it to buy without a "
                      "discount, or contact support.")


def check_provider_total(provider: PaymentProvider, *, customer_id: str, plan_code: str, unit_amount: int,
                         currency: str, quantity: int, coupon_code: str | None, expected_total: int) -> None:
    """When the provider prices on its own (Stripe's invoice preview), make sure its first-month total is the
    portal's. Raises PaymentError ("price_mismatch", or the provider's own, e.g. "coupon_unavailable") when
    it is not: a catalog out of step, which `sync-catalog` and `reconcile` fix. Providers that charge the
    portal's figures as given (the sandbox) have nothing to check."""
    if not provider.previews_invoices:
        return
    theirs = provider.preview_first_invoice(customer_id=customer_id, plan_code=plan_code, unit_amount=unit_amount, currency=currency,
                     quantity=quantity, coupon_code=coupon_code or None)
    if theirs != expected_total:
        log.error("provider preview %s differs from the quote %s (plan %s, quantity %s, coupon %s)", theirs,
                  expected_total, plan_code, quantity, coupon_code or "-")
        raise PaymentError("price_mismatch", PRICE_UNCONFIRMED)


def confirm_price_with_provider(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, plan_id: int,
                                quantity: int, coupon_code: str, now: datetime, client: str = "") -> PricePanel | None:
    """The live check of a coupon with a provider that prices on its own (Stripe): its promotion code is looked
    up and the first month previewed there. None when the provider agrees with the portal's panel (or there is
    nothing to ask it: no coupon); otherwise the panel to show instead, priced without the coupon and saying why
    it cannot be used (the portal's own refusal, a wait for guessing codes, or the provider's).

    The code is looked up as the form's are (`look_up_coupon`: throttled and counted), and only codes the portal
    accepts reach the provider, within the account's budget of provider look-ups (`spend_provider_lookup`).
    The customer is created at the provider on first need. When the provider does not answer (or the budget is
    spent), the portal's panel stands: Create asks the provider again before it charges."""
    actor.require(Permission.BUY)
    if not provider.previews_invoices or not coupon_code.strip():
        return None
    with session_scope(engine) as session:  # written: a lookup of an unknown code is counted
        panel = throttled_price_panel(session, buyer=Buyer(actor.account_id, client), plan_id=plan_id,
                                      quantity=quantity, coupon_code=coupon_code, now=now)
        if panel.coupon_status != "valid":
            return panel
        plan, _ = plan_on_sale(session, plan_id)
    try:
        spend_provider_lookup(engine, actor)
        customer_id = provider_customer(engine, provider, actor)
        check_provider_total(provider, customer_id=customer_id, plan_code=plan.code, unit_amount=plan.unit_amount,
                             currency=plan.currency, quantity=quantity, coupon_code=normalise_code(coupon_code),
                             expected_total=panel.total)
        return None
    except (ProviderUnavailable, ProviderBusy) as exc:
        log.warning("coupon %s could not be confirmed with the provider (%s)", normalise_code(coupon_code),
                    "unavailable" if isinstance(exc, ProviderUnavailable) else "the account's look-ups are spent")
        return None
    except PaymentError as exc:
        message = exc.message if exc.code == "coupon_unavailable" else COUPON_UNCONFIRMED
    with session_scope(engine, write=False) as session:
        without = price_panel(session, plan_id=plan_id, quantity=quantity, coupon_code="", now=now)
    return without.model_copy(update={"coupon_status": "invalid", "coupon_message": message})

"""The Add License screen's rules: what can be bought, form checks, and the price panel.

The price panel and the charge both come from `cf_portal.services.pricing.quote`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal.models import Coupon, Plan, Product
from cf_portal.services import throttle
from cf_portal.services.coupons import CouponRejected, describe, discount_of, find_applicable_coupon
from cf_portal.services.errors import DomainError
from cf_portal.services.pricing import Quote, format_money, quote

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
    name = (text or "").strip()
    if not name:
        raise DomainError("Enter a name for this license, for example a team or a person.", field="reference_name")
    if len(name) > MAX_NAME_LENGTH:
        raise DomainError(f"Use at most {MAX_NAME_LENGTH} characters (this has {len(name)}).",
                          field="reference_name")
    return name


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


def price(session: Session, *, plan: Plan, quantity: int, coupon_code: str, now: datetime
          ) -> tuple[Quote, Coupon | None, CouponRejected | None]:
    """The quote for a purchase, with the coupon if it applies (else why it does not)."""
    coupon, rejected = None, None
    if coupon_code.strip():
        try:
            coupon = find_applicable_coupon(session, code=coupon_code, product_id=plan.product_id,
                                            quantity=quantity, currency=plan.currency, now=now)
        except CouponRejected as exc:
            rejected = exc
    result = quote(unit_amount=plan.unit_amount, quantity=quantity, currency=plan.currency,
                   discount=discount_of(coupon) if coupon else None)
    return result, coupon, rejected


def coupon_throttle_checks(account_id: int, client: str) -> list[tuple[str, throttle.Policy]]:
    checks = [(f"coupon-account:{account_id}", throttle.COUPON_ACCOUNT)]
    if client:
        checks.append((f"coupon-client:{client}", throttle.COUPON_CLIENT))
    return checks


def throttled_price_panel(session: Session, *, account_id: int, client: str, plan_id: int, quantity: int,
                          coupon_code: str, count_unknown: bool, now: datetime) -> PricePanel:
    """The price panel for a buyer, where guessing coupon codes is slowed down and then locked per account
    and per client. Only unknown codes count, and only when `count_unknown` (a newly typed code, not the same
    code priced again for another quantity). A waiting buyer's code is not looked up at all."""
    if not coupon_code.strip():
        return price_panel(session, plan_id=plan_id, quantity=quantity, coupon_code="", now=now)
    checks = coupon_throttle_checks(account_id, client)
    wait = throttle.longest_wait(session, checks, now=now)
    if wait:
        panel = price_panel(session, plan_id=plan_id, quantity=quantity, coupon_code="", now=now)
        return panel.model_copy(update={
            "coupon_status": "invalid",
            "coupon_message": f"Too many coupon codes that don't exist were tried. Try again in {wait.in_words()}.",
        })
    panel, rejected = _price_panel(session, plan_id=plan_id, quantity=quantity, coupon_code=coupon_code, now=now)
    if rejected is not None and rejected.unknown and count_unknown:
        for key, policy in checks:
            throttle.record_failure(session, key, policy, now=now)
    return panel


def price_panel(session: Session, *, plan_id: int, quantity: int, coupon_code: str, now: datetime) -> PricePanel:
    return _price_panel(session, plan_id=plan_id, quantity=quantity, coupon_code=coupon_code, now=now)[0]


def _price_panel(session: Session, *, plan_id: int, quantity: int, coupon_code: str, now: datetime
                 ) -> tuple[PricePanel, CouponRejected | None]:
    plan, _ = plan_on_sale(session, plan_id)
    result, coupon, rejected = price(session, plan=plan, quantity=quantity, coupon_code=coupon_code, now=now)
    money = lambda amount: format_money(amount, result.currency)  # noqa: E731
    if result.discount_months is None:
        note = "every month"
    elif result.discount_months == 1:
        note = "on the first month"
    else:
        note = f"for {result.discount_months} months"
    panel = PricePanel(
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
    return panel, rejected

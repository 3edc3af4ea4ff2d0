"""Reading the licenses of an account, as the Licenses page shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal.models import Coupon, License, LicenseStatus, Plan, Product
from cf_portal.services.coupons import discount_of
from cf_portal.services.periods import day, period_bounds
from cf_portal.services.pricing import Quote, format_money, quote
from cf_portal.services.seats import seats_left


class LicenseRow(BaseModel):
    """One line of the Licenses table; plain data, safe to send to the browser."""

    id: int
    reference_name: str
    product: str
    plan: str
    quantity: int
    assigned: int
    available: int
    monthly_cost: int
    monthly_cost_display: str
    currency: str
    status: str
    discount_ends: str  # "Discount ends on 4 March 2027", "Discount ended on …" or "" (none, or forever)


def discount_ends(price: Quote, *, anchor: datetime, periods_billed: int) -> str:
    """When a coupon that lasts some months stops taking money off, in words: it is counted in billing periods
    from the license's first (`anchor`), the one the Licenses table and the Manage page both show."""
    if not price.discount_is_temporary:
        return ""
    ends_at, _ = period_bounds(anchor, price.discount_months)
    if price.discount_months <= periods_billed - 1:
        return f"Discount ended on {day(ends_at)}"
    return f"Discount ends on {day(ends_at)}"


def list_licenses(session: Session, *, account_id: int) -> list[LicenseRow]:
    rows = session.exec(
        select(License, Plan, Product, Coupon)
        .join(Plan, Plan.id == License.plan_id)
        .join(Product, Product.id == Plan.product_id)
        .outerjoin(Coupon, Coupon.id == License.coupon_id)
        .where(License.account_id == account_id, License.status != LicenseStatus.PENDING.value)
        .order_by(License.created_at.desc(), License.id.desc())
    ).all()
    result = []
    for lic, plan, product, coupon in rows:
        price = quote(
            unit_amount=lic.unit_amount,
            quantity=lic.quantity,
            currency=lic.currency,
            discount=discount_of(coupon) if coupon else None,
        )
        # What this billing period costs (the coupon counted by periods), as the Manage page's "Monthly now".
        monthly = price.amount_for_month(lic.periods_billed - 1)
        result.append(
            LicenseRow(
                id=lic.id,
                reference_name=lic.reference_name,
                product=product.name,
                plan=plan.name,
                quantity=lic.quantity,
                assigned=lic.seats_assigned,
                available=seats_left(lic),
                monthly_cost=monthly,
                monthly_cost_display=format_money(monthly, lic.currency),
                currency=lic.currency,
                status=lic.status,
                discount_ends=discount_ends(price, anchor=lic.created_at, periods_billed=lic.periods_billed),
            )
        )
    return result


class SeatUse(BaseModel):
    """One bar of the Licenses page's seat chart: a license's seats, assigned and still available."""

    name: str  # the license's reference name
    assigned: int
    available: int
    quantity: int


def seat_use(rows: list[LicenseRow]) -> list[SeatUse]:
    """The seat chart of licenses listed by `list_licenses` (so of one account), cancelled ones left out: their
    seats grant nothing any more."""
    return [SeatUse(name=row.reference_name, assigned=row.assigned, available=row.available, quantity=row.quantity)
            for row in rows if row.status != LicenseStatus.CANCELED.value]

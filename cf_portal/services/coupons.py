"""Coupons: whether a code applies, what it does in money terms, and in plain words."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from cf_portal.models import Coupon, CouponDuration, CouponProduct, Product
from cf_portal.services.errors import DomainError
from cf_portal.services.pricing import Discount, format_money

MAX_CODE_LENGTH = 40


class CouponRejected(DomainError):
    """`unknown`: no coupon has this code (what guessing codes runs into, so it counts towards throttling)."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message, field="coupon_code")
        self.unknown = unknown


def normalise_code(code: str) -> str:
    return (code or "").strip().upper()


def discount_of(coupon: Coupon) -> Discount:
    months = {CouponDuration.ONCE: 1, CouponDuration.FOREVER: None}.get(
        CouponDuration(coupon.duration), coupon.duration_months
    )
    return Discount(percent_off=coupon.percent_off, amount_off=coupon.amount_off, currency=coupon.currency,
                    months=months)


def describe(coupon: Coupon) -> str:
    """'20% off, forever', '$10 off the first month', '15% off for 3 months'."""
    if coupon.percent_off is not None:
        what = f"{coupon.percent_off}% off"
    else:
        what = f"{format_money(coupon.amount_off or 0, coupon.currency or 'usd').removesuffix('.00')} off"
    duration = CouponDuration(coupon.duration)
    if duration is CouponDuration.FOREVER:
        return f"{what}, forever"
    if duration is CouponDuration.ONCE:
        return f"{what} the first month"
    months = coupon.duration_months or 1
    return f"{what} for {months} month{'s' if months != 1 else ''}"


def find_applicable_coupon(session: Session, *, code: str, product_id: int, quantity: int, currency: str,
                           now: datetime) -> Coupon:
    """The coupon of `code` if it can be used for this purchase; CouponRejected says why not."""
    normalised = normalise_code(code)
    coupon = session.exec(select(Coupon).where(Coupon.code == normalised)).first() if normalised else None
    if coupon is None or len(normalised) > MAX_CODE_LENGTH:
        raise CouponRejected("This coupon code doesn't exist. Check the spelling.", unknown=True)
    if coupon.expires_at is not None and coupon.expires_at <= now:
        raise CouponRejected(f"This coupon expired on {coupon.expires_at:%B} {coupon.expires_at.day}, "
                             f"{coupon.expires_at.year}.")
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise CouponRejected("This coupon has been fully redeemed.")
    products = session.exec(
        select(Product).join(CouponProduct, CouponProduct.product_id == Product.id)
        .where(CouponProduct.coupon_id == coupon.id).order_by(Product.sort_order)
    ).all()
    if products and product_id not in {p.id for p in products}:
        names = " and ".join(p.name for p in products)
        raise CouponRejected(f"This coupon is not valid for this product. It applies to {names} only.")
    if quantity < coupon.min_quantity:
        raise CouponRejected(f"This coupon needs at least {coupon.min_quantity} licenses.")
    if coupon.amount_off is not None and (coupon.currency or "").lower() != currency.lower():
        raise CouponRejected("This coupon is not valid in this plan's currency.")
    return coupon


def redeem(session: Session, *, coupon_id: int, now: datetime) -> None:
    """Take one redemption, in the caller's transaction. The conditional update cannot pass the limit
    even when two buyers race for the last one (and the table's CHECK constraint backs it up)."""
    taken = session.execute(
        sa.update(Coupon)
        .where(Coupon.id == coupon_id)
        .where(sa.or_(Coupon.max_redemptions.is_(None), Coupon.times_redeemed < Coupon.max_redemptions))
        .where(sa.or_(Coupon.expires_at.is_(None), Coupon.expires_at > now))
        .values(times_redeemed=Coupon.times_redeemed + 1)
    ).rowcount
    if taken != 1:
        raise CouponRejected("This coupon has just been fully redeemed or has expired.")


def release(session: Session, *, coupon_id: int) -> None:
    """Give back a redemption taken for a purchase that did not go through."""
    session.execute(
        sa.update(Coupon).where(Coupon.id == coupon_id, Coupon.times_redeemed > 0)
        .values(times_redeemed=Coupon.times_redeemed - 1)
    )

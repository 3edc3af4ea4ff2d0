"""Coupons: what a code does, in money terms and in plain words."""

from __future__ import annotations

from cf_portal.models import Coupon, CouponDuration
from cf_portal.services.pricing import Discount, format_money


def discount_of(coupon: Coupon) -> Discount:
    months = {CouponDuration.ONCE: 1, CouponDuration.FOREVER: None}.get(
        CouponDuration(coupon.duration), coupon.duration_months
    )
    return Discount(
        percent_off=coupon.percent_off,
        amount_off=coupon.amount_off,
        currency=coupon.currency,
        months=months,
    )


def describe(coupon: Coupon) -> str:
    """'20% off, forever', '$10 off the first month', '15% off for 3 months'."""
    what = f"{coupon.percent_off}% off" if coupon.percent_off is not None else (
        f"{format_money(coupon.amount_off or 0, coupon.currency or 'usd').removesuffix('.00')} off"
    )
    duration = CouponDuration(coupon.duration)
    if duration is CouponDuration.FOREVER:
        return f"{what}, forever"
    if duration is CouponDuration.ONCE:
        return f"{what} the first month"
    months = coupon.duration_months or 1
    return f"{what} for {months} month{'s' if months != 1 else ''}"

"""Coupons: validation, redemption within the limit.

Two buyers taking the last redemption at the same moment are only a real race on PostgreSQL (on SQLite writers
queue up behind `BEGIN IMMEDIATE`); `make test` runs it there too. See tests/support/concurrency.py."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Coupon
from cf_portal.services.coupons import CouponRejected, describe, find_applicable_coupon, redeem
from tests.unit.conftest import NOW, Seeded


def check(seeded: Seeded, code: str, plan: str = "awareness-business", quantity: int = 5) -> Coupon:
    with session_scope(seeded.engine, write=False) as session:
        return find_applicable_coupon(session, code=code, product_id=seeded.plans[plan].product_id,
                                      quantity=quantity, currency="usd", now=NOW)


@pytest.mark.parametrize(("code", "words"), [
    ("WELCOME20", "20% off, forever"),
    ("TENOFF", "$10 off the first month"),
    ("SPRING15", "15% off for 3 months"),
    ("PHISH25", "25% off, forever"),
])
def test_valid_codes_say_what_they_do(seeded: Seeded, code: str, words: str) -> None:
    plan = "phishing-standard" if code == "PHISH25" else "awareness-business"
    assert describe(check(seeded, code, plan)) == words


def test_case_and_surrounding_spaces_do_not_matter(seeded: Seeded) -> None:
    assert check(seeded, "  welcome20 ").code == "WELCOME20"


@pytest.mark.parametrize(("code", "plan", "quantity", "reason"), [
    ("NOPE", "awareness-business", 5, "doesn't exist"),
    ("", "awareness-business", 5, "doesn't exist"),
    ("EXPIRED25", "awareness-business", 5, "expired on December 31, 2024"),
    ("LAUNCH50", "awareness-business", 5, "fully redeemed"),
    ("PHISH25", "darkweb-pro", 5, "applies to Phishing Simulator only"),
    ("TEAM10", "awareness-business", 9, "needs at least 10 licenses"),
])
def test_invalid_codes_say_why(seeded: Seeded, code: str, plan: str, quantity: int, reason: str) -> None:
    with pytest.raises(CouponRejected) as info:
        check(seeded, code, plan, quantity)
    assert reason in info.value.message
    assert info.value.field == "coupon_code"


def test_team10_applies_from_ten_licenses(seeded: Seeded) -> None:
    assert check(seeded, "TEAM10", quantity=10).percent_off == 10


def test_redeem_cannot_take_an_expired_coupon(seeded: Seeded) -> None:
    with session_scope(seeded.engine) as session:
        coupon = session.exec(select(Coupon).where(Coupon.code == "WELCOME20")).one()
        coupon.expires_at = NOW - timedelta(seconds=1)
    with pytest.raises(CouponRejected):
        with session_scope(seeded.engine) as session:
            redeem(session, coupon_id=coupon.id, now=NOW)


def test_two_buyers_cannot_both_take_the_last_redemption(seeded: Seeded) -> None:
    with session_scope(seeded.engine) as session:
        coupon = Coupon(code="LASTONE", percent_off=10, duration="forever", max_redemptions=1)
        session.add(coupon)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def buyer() -> None:
        barrier.wait()
        try:
            with session_scope(seeded.engine) as session:
                redeem(session, coupon_id=coupon.id, now=NOW)
            outcomes.append("taken")
        except CouponRejected:
            outcomes.append("refused")

    threads = [threading.Thread(target=buyer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["refused"] * 7 + ["taken"]
    with session_scope(seeded.engine, write=False) as session:
        assert session.execute(sa.select(Coupon.times_redeemed).where(Coupon.id == coupon.id)).scalar_one() == 1

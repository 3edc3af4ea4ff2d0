from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cf_portal.services.pricing import Discount, format_money, prorate, quote, quote_change


def test_plain_price_is_unit_times_quantity() -> None:
    q = quote(unit_amount=1900, quantity=5, currency="usd")
    assert (q.subtotal, q.discount, q.total, q.discount_months) == (9500, 0, 9500, 0)
    assert q.amount_for_month(0) == q.amount_for_month(7) == 9500


def test_percent_forever_discounts_every_month() -> None:
    q = quote(unit_amount=1900, quantity=5, currency="usd", discount=Discount(percent_off=20))
    assert (q.discount, q.total) == (1900, 7600)
    assert q.discount_months is None and not q.discount_is_temporary
    assert q.amount_for_month(0) == q.amount_for_month(24) == 7600


def test_fixed_once_discounts_only_the_first_month_and_never_below_zero() -> None:
    q = quote(unit_amount=900, quantity=1, currency="usd", discount=Discount(amount_off=1000, currency="usd", months=1))
    assert (q.discount, q.total) == (900, 0)
    assert q.discount_is_temporary
    assert q.amount_for_month(0) == 0
    assert q.amount_for_month(1) == 900


def test_repeating_discount_lasts_its_months() -> None:
    q = quote(unit_amount=1200, quantity=10, currency="usd", discount=Discount(percent_off=15, months=3))
    assert q.total == 10200
    assert [q.amount_for_month(m) for m in range(5)] == [10200, 10200, 10200, 12000, 12000]
    assert q.monthly_after_discount == 12000


def test_percent_rounds_half_up_to_a_cent() -> None:
    # 15% of 10 cents is 1.5 cents: rounded to 2.
    assert quote(unit_amount=10, quantity=1, currency="usd", discount=Discount(percent_off=15)).discount == 2
    # 15% of 9 cents is 1.35 cents: rounded to 1.
    assert quote(unit_amount=9, quantity=1, currency="usd", discount=Discount(percent_off=15)).discount == 1


@pytest.mark.parametrize(("subtotal", "percent", "discount"), [
    (10, 25, 3),  # 2.5 cents -> 3 (Python's round() would give 2)
    (50, 5, 3),  # 2.5 cents -> 3
    (30, 15, 5),  # 4.5 cents -> 5 (round() would give 4)
    (10, 5, 1),  # 0.5 cents -> 1 (round() would give 0)
    (90, 5, 5),  # 4.5 cents -> 5
    (70, 5, 4),  # 3.5 cents -> 4 (round() agrees: odd below)
    (1, 50, 1),  # half a cent of a one-cent line -> the whole cent
])
def test_half_cents_round_up(subtotal: int, percent: int, discount: int) -> None:
    q = quote(unit_amount=subtotal, quantity=1, currency="usd", discount=Discount(percent_off=percent))
    assert (q.discount, q.total) == (discount, subtotal - discount)


def test_fixed_discount_must_be_in_the_plans_currency() -> None:
    with pytest.raises(ValueError):
        quote(unit_amount=900, quantity=1, currency="eur", discount=Discount(amount_off=100, currency="usd"))


@pytest.mark.parametrize("bad", [dict(), dict(percent_off=10, amount_off=5, currency="usd"), dict(percent_off=0),
                                 dict(percent_off=101), dict(amount_off=0, currency="usd"), dict(amount_off=5),
                                 dict(percent_off=5, months=0)])
def test_discounts_must_make_sense(bad: dict) -> None:
    with pytest.raises(ValueError):
        Discount(**bad)


def test_quantity_and_price_must_make_sense() -> None:
    with pytest.raises(ValueError):
        quote(unit_amount=900, quantity=0, currency="usd")
    with pytest.raises(ValueError):
        quote(unit_amount=-1, quantity=1, currency="usd")


def test_money_is_formatted_at_the_edge() -> None:
    assert format_money(1999, "usd") == "$19.99"
    assert format_money(123456789, "usd") == "$1,234,567.89"
    assert format_money(5, "eur") == "€0.05"
    assert format_money(-250, "gbp") == "-£2.50"
    assert format_money(100, "chf") == "1.00 CHF"


discounts = st.one_of(
    st.none(),
    st.builds(Discount, percent_off=st.integers(1, 100), months=st.one_of(st.none(), st.integers(1, 36))),
    st.builds(Discount, amount_off=st.integers(1, 10_000_000), currency=st.just("usd"),
              months=st.one_of(st.none(), st.integers(1, 36))),
)


@given(unit=st.integers(0, 1_000_000), quantity=st.integers(1, 1000), discount=discounts)
def test_total_is_never_negative_nor_above_the_undiscounted_price(unit: int, quantity: int, discount) -> None:  # noqa: ANN001
    q = quote(unit_amount=unit, quantity=quantity, currency="usd", discount=discount)
    assert 0 <= q.total <= q.subtotal == unit * quantity
    assert q.discount + q.total == q.subtotal
    assert all(isinstance(v, int) for v in (q.subtotal, q.discount, q.total, q.monthly_after_discount))
    for month in range(40):
        assert q.total <= q.amount_for_month(month) <= q.subtotal


def spec_percent_discount(subtotal: int, percent: int) -> int:
    """The README's rule, written from the words rather than from pricing.py: `percent` % of the subtotal in exact
    decimal arithmetic, rounded to a whole cent with halves going up."""
    exact = Decimal(subtotal) * Decimal(percent) / Decimal(100)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@given(unit=st.integers(0, 1_000_000), quantity=st.integers(1, 1000), percent=st.integers(1, 100))
def test_percent_discount_is_the_spec_rounded_half_up(unit: int, quantity: int, percent: int) -> None:
    q = quote(unit_amount=unit, quantity=quantity, currency="usd", discount=Discount(percent_off=percent))
    assert q.discount == spec_percent_discount(unit * quantity, percent)
    assert q.total == unit * quantity - q.discount


def test_percent_discount_meets_the_spec_for_every_subtotal_up_to_five_dollars() -> None:
    """Every small subtotal at every percent, where half cents are common (random wide amounts seldom hit one)."""
    wrong = [(subtotal, percent) for subtotal in range(1, 501) for percent in range(1, 101)
             if quote(unit_amount=subtotal, quantity=1, currency="usd", discount=Discount(percent_off=percent)).discount
             != spec_percent_discount(subtotal, percent)]
    assert wrong == []


# --- prorations (a change within a period) ---------------------------------------------------------------------


def test_a_proration_is_the_days_left_over_the_days_of_the_period_rounded_half_up() -> None:
    assert prorate(3000, days_left=15, days_in_period=30) == 1500
    assert prorate(1000, days_left=1, days_in_period=31) == 32  # 32.26 cents
    assert prorate(100, days_left=1, days_in_period=8) == 13  # 12.5 cents rounds up
    assert prorate(1200, days_left=31, days_in_period=31) == 1200
    assert prorate(1200, days_left=0, days_in_period=31) == 0
    with pytest.raises(ValueError):
        prorate(1200, days_left=32, days_in_period=31)


@given(amount=st.integers(0, 10_000_000), total=st.integers(28, 31), data=st.data())
def test_a_proration_is_exact_to_the_cent_and_grows_with_the_days_left(amount: int, total: int, data) -> None:  # noqa: ANN001
    left = data.draw(st.integers(0, total))
    exact = Decimal(amount) * left / total
    assert prorate(amount, days_left=left, days_in_period=total) == int(exact.quantize(Decimal(1), ROUND_HALF_UP))
    if left < total:
        assert prorate(amount, days_left=left, days_in_period=total) <= prorate(
            amount, days_left=left + 1, days_in_period=total) <= amount


@given(unit=st.integers(1, 100_000), quantity=st.integers(1, 500), added=st.integers(1, 500),
       discount=discounts, month=st.integers(0, 13), total=st.integers(28, 31), data=st.data())
def test_adding_seats_charges_the_difference_of_the_months_prorated_and_never_less_than_nothing(
        unit: int, quantity: int, added: int, discount, month: int, total: int, data) -> None:  # noqa: ANN001
    left = data.draw(st.integers(0, total))
    before = quote(unit_amount=unit, quantity=quantity, currency="usd", discount=discount)
    after = quote(unit_amount=unit, quantity=quantity + added, currency="usd", discount=discount)
    change = quote_change(before=before, after=after, month_index=month, days_left=left, days_in_period=total)
    difference = after.amount_for_month(month) - before.amount_for_month(month)
    assert change.due_now == prorate(max(difference, 0), days_left=left, days_in_period=total) >= 0
    # The whole period left costs what the month costs more; the next renewal is the new month's price.
    whole = quote_change(before=before, after=after, month_index=month, days_left=total, days_in_period=total)
    assert whole.due_now == max(difference, 0)
    assert change.next_renewal == after.amount_for_month(month + 1)
    # Without a fixed discount, more seats never cost less (a fixed discount may absorb them).
    if discount is None or discount.percent_off is not None:
        assert difference >= 0


def test_a_cheaper_change_charges_nothing_now() -> None:
    before = quote(unit_amount=2400, quantity=5, currency="usd")
    after = quote(unit_amount=1200, quantity=5, currency="usd")
    change = quote_change(before=before, after=after, month_index=0, days_left=10, days_in_period=30)
    assert (change.due_now, change.next_renewal) == (0, 6000)

"""The one pricing function: the price shown in the checkout and the amount charged come from here.

All amounts are integer minor units (cents) of one currency. Rounding: a percent discount is
`subtotal * percent / 100` rounded half up to a whole cent (so 15% of $0.10 is 2 cents); a fixed
discount is capped at the subtotal. A total is never negative and never above the subtotal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Discount:
    """The money terms of a coupon. `months` is None for forever, 1 for once, N for repeating."""

    percent_off: int | None = None
    amount_off: int | None = None
    currency: str | None = None
    months: int | None = None

    def __post_init__(self) -> None:
        if (self.percent_off is None) == (self.amount_off is None):
            raise ValueError("a discount is either percent off or amount off")
        if self.percent_off is not None and not 1 <= self.percent_off <= 100:
            raise ValueError("percent off must be 1 to 100")
        if self.amount_off is not None and (self.amount_off <= 0 or not self.currency):
            raise ValueError("amount off must be positive and have a currency")
        if self.months is not None and self.months < 1:
            raise ValueError("a limited discount lasts at least one month")

    @property
    def is_forever(self) -> bool:
        return self.months is None


@dataclass(frozen=True)
class Quote:
    currency: str
    unit_amount: int
    quantity: int
    subtotal: int  # unit_amount x quantity, every month
    discount: int  # off each discounted month
    total: int  # due now, for the first month
    discount_months: int | None  # None: every month; 0: no discount
    monthly_after_discount: int  # what each month costs once the discount has ended

    @property
    def discount_is_temporary(self) -> bool:
        return self.discount > 0 and self.discount_months is not None

    def amount_for_month(self, month_index: int) -> int:
        """What month `month_index` (0 = the first, charged at purchase) costs."""
        if self.discount_months is None or month_index < self.discount_months:
            return self.total
        return self.monthly_after_discount


def quote(*, unit_amount: int, quantity: int, currency: str, discount: Discount | None = None) -> Quote:
    if unit_amount < 0:
        raise ValueError("unit amount cannot be negative")
    if quantity < 1:
        raise ValueError("quantity must be at least 1")
    subtotal = unit_amount * quantity
    off = 0
    months: int | None = 0
    if discount is not None:
        if discount.percent_off is not None:
            off = (subtotal * discount.percent_off + 50) // 100
        else:
            if discount.currency and discount.currency.lower() != currency.lower():
                raise ValueError("a fixed discount must be in the plan's currency")
            off = discount.amount_off or 0
        off = min(off, subtotal)
        months = discount.months
    return Quote(
        currency=currency,
        unit_amount=unit_amount,
        quantity=quantity,
        subtotal=subtotal,
        discount=off,
        total=subtotal - off,
        discount_months=months if off else 0,
        monthly_after_discount=subtotal,
    )


_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def format_money(amount: int, currency: str) -> str:
    """`1999, 'usd'` -> `$19.99`; whole amounts keep their cents so columns line up."""
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 100)
    symbol = _SYMBOLS.get(currency.lower())
    number = f"{major:,}.{minor:02d}"
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency.upper()}"


def prorate(amount: int, *, days_left: int, days_in_period: int) -> int:
    """The part of a period's `amount` for `days_left` of its `days_in_period` days, rounded half up to a cent."""
    if days_in_period < 1 or not 0 <= days_left <= days_in_period:
        raise ValueError("days left must be within the period")
    return (amount * days_left * 2 + days_in_period) // (days_in_period * 2)


@dataclass(frozen=True)
class ChangeQuote:
    """A change of plan or quantity within a period: what it costs now, and what each month costs after it.

    `due_now` is the difference between the month's price after and before the change (each with the coupon as it
    stands this month), prorated to the days left in the period (`prorate`); never negative: a change that costs
    less takes effect at the next renewal, with no refund. `next_renewal` is the new price of the next month."""

    currency: str
    before: Quote
    after: Quote
    month_index: int
    days_left: int
    days_in_period: int
    due_now: int
    next_renewal: int


def quote_change(*, before: Quote, after: Quote, month_index: int, days_left: int, days_in_period: int) -> ChangeQuote:
    if before.currency != after.currency:
        raise ValueError("a change keeps the currency")
    difference = after.amount_for_month(month_index) - before.amount_for_month(month_index)
    return ChangeQuote(currency=after.currency, before=before, after=after, month_index=month_index,
                       days_left=days_left, days_in_period=days_in_period,
                       due_now=prorate(max(difference, 0), days_left=days_left, days_in_period=days_in_period),
                       next_renewal=after.amount_for_month(month_index + 1))

"""Billing periods: a license renews every calendar month on the day it was bought.

Period n runs from `anchor + n months` to `anchor + (n + 1) months` (dateutil's relativedelta: a license bought on
31 January renews on 28 (or 29) February, then on 31 March: always counted from the anchor, so the day never
drifts). Proration counts whole days (UTC) left in the period, the day of the change included.
"""

from __future__ import annotations

from datetime import datetime

from dateutil.relativedelta import relativedelta


def day(moment: datetime) -> str:
    """'4 January 2027' (dates are shown in UTC, the billing clock's zone)."""
    return f"{moment.day} {moment:%B %Y}"


def period_bounds(anchor: datetime, index: int) -> tuple[datetime, datetime]:
    if index < 0:
        raise ValueError("periods are counted from 0")
    return anchor + relativedelta(months=index), anchor + relativedelta(months=index + 1)


def days_between(start: datetime, end: datetime) -> int:
    return (end.date() - start.date()).days


def days_left(now: datetime, period_start: datetime, period_end: datetime) -> tuple[int, int]:
    """(days left including today, days in the period), for prorating a change made at `now`."""
    total = max(days_between(period_start, period_end), 1)
    left = min(max(days_between(now, period_end), 0), total)
    return left, total

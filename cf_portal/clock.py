"""The portal's one clock: timezone-aware UTC (the database keeps UTC; pages show local dates).

Services that decide by the time take `now=` (or `today=`) from their caller, so tests can pass a fixed
moment; callers without one in hand (states, routes, commands, column defaults) ask `now()` here. It sits
beside settings.py and db.py, below models, payments and services, so each of them can use it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    """Today's date in UTC (card expiry is judged by it)."""
    return now().date()

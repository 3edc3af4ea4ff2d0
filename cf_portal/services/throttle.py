"""Slowing down, then locking, whatever keeps failing: sign-ins per email (slowed down only), per email and client
(locked too) and per client, sign-ups per client, coupon-code checks per account and per client. And budgets:
how many calls a key may make in a window (look-ups at the payment provider per account, `spend`).

Counts live in the `throttle` table, so every worker sees the same numbers. A failure is one atomic
upsert; a locked or waiting key is refused before the password or code is even looked at. Where parallel
attempts must not all pass one check (sign-in and sign-up), `locked_wait` holds the keys' rows while the
wait is checked and the outcome counted, so the attempts are judged one after the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from cf_portal.models import Throttle


@dataclass(frozen=True)
class Policy:
    free: int  # failures in a window that cost nothing
    lock_after: int | None  # failures in a window that lock the key (None: never locked, only slowed down)
    window: timedelta  # failures older than this are forgotten (unless the key is locked)
    lock_for: timedelta = timedelta(0)
    max_delay_s: int = 30  # the wait after each failure past `free` doubles up to this


# Sign-ins (OWASP's authentication cheat sheet): an email is only ever slowed down, from wherever the failures come,
# so a stranger failing on purpose cannot lock its owner out; the lock is per (email, client) pair, and a client
# failing across many emails is locked on its own.
SIGN_IN_EMAIL = Policy(free=3, lock_after=None, window=timedelta(minutes=15))
SIGN_IN_PAIR = Policy(free=3, lock_after=10, window=timedelta(minutes=15), lock_for=timedelta(minutes=15))
SIGN_IN_CLIENT = Policy(free=10, lock_after=30, window=timedelta(minutes=15), lock_for=timedelta(minutes=15))
# Every sign-up counts (it hashes a password and says whether an email is taken), not only failed ones.
SIGN_UP_CLIENT = Policy(free=10, lock_after=30, window=timedelta(hours=1), lock_for=timedelta(hours=1))
COUPON_ACCOUNT = Policy(free=10, lock_after=25, window=timedelta(minutes=15), lock_for=timedelta(minutes=15),
                        max_delay_s=5)
COUPON_CLIENT = Policy(free=20, lock_after=40, window=timedelta(minutes=15), lock_for=timedelta(minutes=15),
                       max_delay_s=5)


@dataclass(frozen=True)
class Budget:
    calls: int  # calls allowed in each window
    per: timedelta  # a fixed window, starting with the first call after the last one ended


# Look-ups at the payment provider per account (a coupon confirmed with Stripe's preview, the card form's
# SetupIntent, a confirmed card): Stripe's rate limit is shared by every account of the portal. One look-up is
# a few requests (the coupon's preview makes about four).
PROVIDER_LOOKUPS = Budget(calls=20, per=timedelta(minutes=1))


@dataclass(frozen=True)
class Wait:
    seconds: int  # 0: go ahead
    locked: bool  # a lock (minutes) rather than a slow-down (seconds)

    def __bool__(self) -> bool:
        return self.seconds > 0

    def in_words(self) -> str:
        if self.seconds < 60:
            return f"{self.seconds} second{'s' if self.seconds != 1 else ''}"
        minutes = math.ceil(self.seconds / 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"


GO = Wait(0, False)


def wait_for(session: Session, key: str, policy: Policy, *, now: datetime) -> Wait:
    """How long `key` must wait before its next attempt."""
    row = session.get(Throttle, key)
    if row is None:
        return GO
    if row.locked_until is not None and row.locked_until > now:
        return Wait(math.ceil((row.locked_until - now).total_seconds()), True)
    if row.window_started_at <= now - policy.window or row.failures < policy.free:
        return GO
    delay = min(2 ** (row.failures - policy.free), policy.max_delay_s)
    ready_at = row.last_failure_at + timedelta(seconds=delay)
    return Wait(math.ceil((ready_at - now).total_seconds()), False) if ready_at > now else GO


def longest_wait(session: Session, checks: list[tuple[str, Policy]], *, now: datetime) -> Wait:
    waits = [wait_for(session, key, policy, now=now) for key, policy in checks]
    return max(waits, key=lambda w: (w.locked, w.seconds), default=GO) if any(waits) else GO


def _insert(session: Session):  # noqa: ANN202
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(Throttle.__table__)


def locked_wait(session: Session, checks: list[tuple[str, Policy]], *, now: datetime) -> Wait:
    """Like `longest_wait`, with the keys' rows locked until the caller's transaction ends (a missing row is
    created empty first, so that there is a row to lock). The outcome counted in the same transaction is then
    seen by the next attempt's check: parallel attempts cannot all pass one check."""
    keys = sorted({key for key, _ in checks})  # always in the same order: no deadlock between two attempts
    session.execute(_insert(session).values([
        {"key": key, "failures": 0, "window_started_at": now, "last_failure_at": now} for key in keys
    ]).on_conflict_do_nothing(index_elements=["key"]))
    session.exec(select(Throttle).where(Throttle.key.in_(keys)).order_by(Throttle.key).with_for_update()
                 .execution_options(populate_existing=True)).all()
    return longest_wait(session, checks, now=now)


def _count(session: Session, key: str, window: timedelta, *, now: datetime) -> tuple[int, datetime]:
    """One more for `key` (an atomic upsert in the caller's transaction): the count in the window, and when the
    window started. A window that is over (and not locked) starts again."""
    table = Throttle.__table__
    insert = _insert(session)
    expired = sa.and_(table.c.window_started_at <= now - window,
                      sa.or_(table.c.locked_until.is_(None), table.c.locked_until <= now))
    statement = insert.values(key=key, failures=1, window_started_at=now, last_failure_at=now).on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "failures": sa.case((expired, 1), else_=table.c.failures + 1),
            "window_started_at": sa.case((expired, now), else_=table.c.window_started_at),
            "last_failure_at": now,
        },
    ).returning(table.c.failures, table.c.window_started_at)
    count, started = session.execute(statement).one()
    return count, started


def record_failure(session: Session, key: str, policy: Policy, *, now: datetime) -> int:
    """Count one failure for `key` (in the caller's transaction); returns the failures in the window."""
    failures, _ = _count(session, key, policy.window, now=now)
    if policy.lock_after is not None and failures >= policy.lock_after:
        table = Throttle.__table__
        session.execute(sa.update(table).where(table.c.key == key).values(locked_until=now + policy.lock_for))
    return failures


def spend(session: Session, key: str, budget: Budget, *, now: datetime) -> Wait:
    """Take one call from `key`'s budget (in the caller's transaction, which must commit even when the call is
    refused): GO, or the wait until the window ends, when the call must not be made."""
    count, started = _count(session, key, budget.per, now=now)
    if count <= budget.calls:
        return GO
    return Wait(max(1, math.ceil((started + budget.per - now).total_seconds())), False)


def clear(session: Session, key: str) -> None:
    session.execute(sa.delete(Throttle.__table__).where(Throttle.__table__.c.key == key))

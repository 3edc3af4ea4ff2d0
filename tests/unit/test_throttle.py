"""Throttling: the counts behind slowed-down and locked sign-ins and coupon checks.

The tests of coupon guesses at the same moment are only real races on PostgreSQL (on SQLite writers queue up behind
`BEGIN IMMEDIATE`); `make test` runs them there too. See tests/support/concurrency.py."""

from __future__ import annotations

from datetime import timedelta

from cf_portal.db import session_scope
from cf_portal.services import checkout, throttle
from tests.unit.conftest import NOW, Seeded

POLICY = throttle.Policy(free=2, lock_after=5, window=timedelta(minutes=10), lock_for=timedelta(minutes=10))


def fail(seeded: Seeded, key: str, at) -> int:  # noqa: ANN001
    with session_scope(seeded.engine) as session:
        return throttle.record_failure(session, key, POLICY, now=at)


def wait(seeded: Seeded, key: str, at) -> throttle.Wait:  # noqa: ANN001
    with session_scope(seeded.engine, write=False) as session:
        return throttle.wait_for(session, key, POLICY, now=at)


def test_free_failures_then_doubling_waits_then_a_lock(seeded: Seeded) -> None:
    key = "test:someone"
    assert not wait(seeded, key, NOW)
    assert [fail(seeded, key, NOW), fail(seeded, key, NOW)] == [1, 2]
    assert wait(seeded, key, NOW) == throttle.Wait(1, False)
    assert not wait(seeded, key, NOW + timedelta(seconds=1))
    fail(seeded, key, NOW + timedelta(seconds=1))
    assert wait(seeded, key, NOW + timedelta(seconds=1)) == throttle.Wait(2, False)
    fail(seeded, key, NOW + timedelta(seconds=3))
    assert wait(seeded, key, NOW + timedelta(seconds=3)) == throttle.Wait(4, False)
    assert fail(seeded, key, NOW + timedelta(seconds=7)) == 5
    locked = wait(seeded, key, NOW + timedelta(seconds=7))
    assert locked.locked and locked.seconds == 600 and locked.in_words() == "10 minutes"
    # The lock ends, and with the window over the count starts again.
    assert not wait(seeded, key, NOW + timedelta(seconds=7, minutes=10))
    assert fail(seeded, key, NOW + timedelta(minutes=11)) == 1


def test_keys_are_counted_apart_and_cleared(seeded: Seeded) -> None:
    for _ in range(5):
        fail(seeded, "test:a", NOW)
    assert wait(seeded, "test:a", NOW).locked
    assert not wait(seeded, "test:b", NOW)
    with session_scope(seeded.engine) as session:
        throttle.clear(session, "test:a")
    assert not wait(seeded, "test:a", NOW)


def panel(seeded: Seeded, code: str, *, account_id: int, at=NOW,  # noqa: ANN001
          client: str = "") -> checkout.PricePanel:
    plan = seeded.plans["awareness-business"]
    with session_scope(seeded.engine) as session:
        return checkout.throttled_price_panel(session, buyer=checkout.Buyer(account_id, client), plan_id=plan.id,
                                              quantity=3, coupon_code=code, now=at)


def test_guessing_coupon_codes_is_slowed_then_locked_per_account(seeded: Seeded) -> None:
    account = seeded.actor.account_id
    other = seeded.other_actor().account_id
    at = NOW
    guesses = 0
    while True:
        shown = panel(seeded, f"GUESS{guesses}", account_id=account, at=at)
        if "Too many" in shown.coupon_message:
            if "minute" in shown.coupon_message and guesses >= throttle.COUPON_ACCOUNT.lock_after:
                break
            at += timedelta(seconds=5)  # slowed down: wait (at most 5 s for coupons)
            continue
        assert shown.coupon_message == "This coupon code doesn't exist. Check the spelling."
        guesses += 1
    assert guesses == throttle.COUPON_ACCOUNT.lock_after
    # Locked: even a real code is not looked up, and Create would be refused (the coupon shows as invalid).
    locked = panel(seeded, "WELCOME20", account_id=account, at=at)
    assert (locked.coupon_status, locked.discount) == ("invalid", "")
    # Another account is not affected.
    assert panel(seeded, "WELCOME20", account_id=other, at=at).coupon_status == "valid"


def test_known_codes_do_not_count_but_every_lookup_of_an_unknown_one_does(seeded: Seeded) -> None:
    account = seeded.actor.account_id
    for _ in range(30):
        assert panel(seeded, "EXPIRED25", account_id=account).coupon_status == "invalid"  # exists: not a guess
    assert panel(seeded, "WELCOME20", account_id=account).coupon_status == "valid"
    # The same unknown code looked up again (another quantity, plan or product) counts again: nothing tells a
    # lookup that answers from one that does not.
    messages = [panel(seeded, "NOSUCHCODE", account_id=account).coupon_message
                for _ in range(throttle.COUPON_ACCOUNT.free + 1)]
    assert messages[-1].startswith("Too many coupon codes")


def test_parallel_coupon_guesses_get_no_more_lookups_than_the_throttle_allows(seeded: Seeded) -> None:
    """Guesses sent at once (one account, other clients) must not all pass the check made before the lookup:
    only the free guesses are looked up, the rest are told to wait."""
    from tests.support.concurrency import run_at_once

    messages: list[str] = []
    run_at_once(12, lambda i: messages.append(
        panel(seeded, f"PARALLEL{i}", account_id=seeded.actor.account_id, client=f"10.8.0.{i}").coupon_message))
    assert len(messages) == 12
    looked_up = messages.count("This coupon code doesn't exist. Check the spelling.")
    assert looked_up == throttle.COUPON_ACCOUNT.free, messages
    assert all(m.startswith("Too many coupon codes") for m in messages if "Check the spelling" not in m)


def test_a_budget_allows_its_calls_in_each_window(seeded: Seeded) -> None:
    budget = throttle.Budget(calls=3, per=timedelta(minutes=1))

    def spend(at) -> throttle.Wait:  # noqa: ANN001
        with session_scope(seeded.engine) as session:
            return throttle.spend(session, "test:budget", budget, now=at)

    assert [bool(spend(NOW + timedelta(seconds=s))) for s in range(3)] == [False] * 3
    assert spend(NOW + timedelta(seconds=20)) == throttle.Wait(40, False)  # until the window ends
    assert not spend(NOW + timedelta(minutes=1))  # a new window

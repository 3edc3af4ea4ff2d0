"""A burst of sign-ins (each an argon2 hash of 64 MiB) neither runs more hashes at once than the machine has cores
nor holds up a purchase made meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import reflex as rx

from cf_portal.services import passwords
from cf_portal.state.add_license import submit_purchase
from cf_portal.state.auth import attempt_sign_in
from cf_portal.state.password_work import run_password_work
from tests.state.test_add_license_state import CARD, add_card, loaded
from tests.support.events import run_on_a_loop

SIGN_INS = 50


class CountingHasher:
    """The real hasher, counting the hashes running at once."""

    def __init__(self, hasher) -> None:  # noqa: ANN001
        self._hasher, self._lock = hasher, threading.Lock()
        self.running = self.peak = self.calls = 0

    def _counted(self, work, *args):  # noqa: ANN001, ANN002, ANN202
        with self._lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        try:
            return work(*args)
        finally:
            with self._lock:
                self.running -= 1

    def hash(self, password: str) -> str:
        return self._counted(self._hasher.hash, password)

    def verify(self, password_hash: str, password: str) -> bool:
        return self._counted(self._hasher.verify, password_hash, password)

    def check_needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def test_a_purchase_completes_during_a_burst_of_sign_ins_and_hashes_stay_bounded(
        root_state: rx.State, monkeypatch: pytest.MonkeyPatch) -> None:
    state = loaded(root_state)
    add_card(state, CARD)
    state.set_reference_name("Bought during a sign-in burst")
    begun = state._begin_create()
    assert begun is not None
    counting = CountingHasher(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", counting)

    async def burst() -> tuple[object, int, float, float]:
        started = time.perf_counter()
        # Each from its own client and to an unknown email, so that every one hashes (none is throttled).
        sign_ins = [asyncio.ensure_future(run_password_work(
            attempt_sign_in, {"email": f"visitor{i}@example.com", "password": "not the password"}, f"10.7.{i}.1"))
            for i in range(SIGN_INS)]
        await asyncio.sleep(0.05)  # the burst is under way
        outcome = await asyncio.to_thread(submit_purchase, *begun)  # as AddLicenseState.create runs it
        bought_after = time.perf_counter() - started
        still_signing_in = sum(not task.done() for task in sign_ins)
        attempts = await asyncio.gather(*sign_ins)
        assert all(a.errors == {"form": "The email or password is not right."} for a in attempts), attempts[:3]
        return outcome, still_signing_in, bought_after, time.perf_counter() - started

    outcome, still_signing_in, bought_after, burst_took = run_on_a_loop(burst())
    print(f"\npurchase done after {bought_after:.2f} s with {still_signing_in} of {SIGN_INS} sign-ins still "
          f"waiting; the burst took {burst_took:.2f} s; at most {counting.peak} hashes at once "
          f"(bound {passwords.HASH_SLOTS})")
    assert outcome.result is not None, outcome.error
    assert counting.calls == SIGN_INS
    assert counting.peak <= passwords.HASH_SLOTS
    assert still_signing_in > SIGN_INS // 2  # the purchase did not queue behind the sign-ins

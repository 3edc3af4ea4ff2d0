"""Helpers for tests of what happens when two people (or workers) do something at the same moment.

Races are only real on PostgreSQL. On SQLite every writer starts with `BEGIN IMMEDIATE` (cf_portal/db.py), so
threads that write queue up behind one lock and a check-then-act bug cannot show there: turning `seats.assign`
into check-then-act passed every SQLite run and failed only on PostgreSQL. `make test` (scripts/test.sh) runs the
whole suite a second time with `DB=postgres`, so every race test runs there too; no race test may be skipped or
limited to SQLite. To try one race on its own: `DB=postgres .venv/bin/python -m pytest tests/unit/test_seats.py`.

A race test checks every thread's outcome: exactly the expected winners, and a clean refusal (a `DomainError`
with its message, not a database error) for each of the others. A thread that dies with an exception fails
the test (`run_at_once` raises it, and pyproject's filterwarnings turns pytest's unhandled-thread warning into
an error for hand-made threads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def run_at_once(count: int, work: Callable[[int], None]) -> None:
    """Run `work(i)` for i in range(count) in threads that start together, wait for all of them, and raise the
    first exception a thread died with."""
    barrier = threading.Barrier(count)
    crashes: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:
            crashes.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if crashes:
        raise AssertionError(f"{len(crashes)} of {count} threads crashed; the first: {crashes[0]!r}") from crashes[0]


def pausing_for_each_other(work: Callable[..., Any], parties: int = 2, timeout_s: float = 2) -> Callable[..., Any]:
    """`work`, then a pause until `parties` callers have done it too, so that each reads before any writes (the
    race under test). When the others do not come within `timeout_s` (they wait for a lock, as they should), the
    pause ends."""
    gate = threading.Barrier(parties, timeout=timeout_s)

    def run(*args: Any, **kwargs: Any) -> Any:
        result = work(*args, **kwargs)
        try:
            gate.wait()
        except threading.BrokenBarrierError:
            pass
        return result

    return run

"""Helpers for tests of what happens when two people (or workers) do something at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def run_at_once(count: int, work: Callable[[int], None]) -> None:
    """Run `work(i)` for i in range(count) in threads that start together, and wait for all of them."""
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


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

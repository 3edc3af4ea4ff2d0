"""Where slow work runs, so that the event loop, shared by every tab this worker serves, stays free.

- `asyncio.to_thread`: calls that mostly wait (the payment provider, the database).
- `in_process`: Python that keeps the CPU busy for long (a 20,000-row CSV checked row by row). In a thread it
  would hold the GIL, which the loop then gets back only at each 5 ms switch interval: another tab's events took
  130–614 ms p95 during such an import (bench/import_event_loop.py, docs/benchmarks.md), against 5–17 ms with
  the work in a process of its own. One worker process, started on first use and kept; "spawn", as forking a process that
  runs threads is unsafe. The function must be importable without Reflex (a service) and its arguments and
  result must pickle.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# How long a page believes work it started is still under way (Create, a change of cards): longer than any of
# it takes (a few provider calls of at most about 20 seconds each, retried for a few seconds). An older busy
# mark was left by a worker that is gone, and the page lets the person try again.
STUCK_AFTER_S = 120

_pool: ProcessPoolExecutor | None = None


def _executor() -> Executor:
    global _pool  # noqa: PLW0603 (one pool per app process, made on first use)
    if _pool is None:
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _pool


async def in_process(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`work(*args)` in the worker process; its exceptions are raised here. A worker that died (killed for
    memory, say) is replaced at the next call."""
    global _pool  # noqa: PLW0603
    executor = _executor()
    try:
        return await asyncio.get_running_loop().run_in_executor(executor, _call, work, args, kwargs)
    except BrokenProcessPool:
        if _pool is executor:
            _pool = None
        raise


def _call(work: Callable[..., T], args: tuple, kwargs: dict) -> T:
    return work(*args, **kwargs)

"""The worker process that CPU-heavy work runs in, away from the event loop (state/work.py)."""

from __future__ import annotations

import os

import pytest

from cf_portal.state import work
from tests.support.events import run_on_a_loop


def test_work_runs_in_another_process_and_its_errors_come_back() -> None:
    async def both() -> tuple[int, int]:
        return await work.in_process(os.getpid), await work.in_process(os.getpid)

    first, second = run_on_a_loop(both())
    assert first != os.getpid() and first == second  # one worker, kept
    with pytest.raises(ValueError, match="invalid literal"):
        run_on_a_loop(work.in_process(int, "not a number"))

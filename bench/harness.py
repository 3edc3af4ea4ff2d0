"""What the browser benchmarks share. The app itself is started by tests/support/app.py, from a copy
of the checkout, as the end-to-end tests start it."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.app import CHROMIUM_ARGS, SERVER_ERROR_MARKERS, running_app  # noqa: E402


def try_the_demo(page, url: str, *, timeout_ms: float = 30_000) -> None:  # noqa: ANN001
    """Sign the browser in as the demo owner, as a visitor would: "Try the demo" on the sign-in page (which copies
    the demo account: give a demo account of 100,000 employees a longer `timeout_ms`)."""
    page.goto(url + "/signin")
    page.get_by_role("button", name="Try the demo").click()
    page.wait_for_url(url + "/licenses**", timeout=timeout_ms)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least q of the samples at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


__all__ = ["CHROMIUM_ARGS", "SERVER_ERROR_MARKERS", "percentile", "running_app", "try_the_demo"]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and their children so far."""
    total = 0.0
    seen: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            if process.pid in seen:
                continue
            seen.add(process.pid)
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
    return total

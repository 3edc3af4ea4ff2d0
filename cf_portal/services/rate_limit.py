"""A request rate per key, held in the memory of one worker process: a token bucket per key.

Each key may make `rate` requests a second on average and `burst` at once; a request past that is told how long
to wait (the API answers 429 with Retry-After). The buckets live in this process only: with N workers a key may
reach N times the rate. That is the price of keeping a check a read (the `throttle` table would make every
request a write, which SQLite serialises for the whole app); a shared limit belongs in front of the portal
(the reverse proxy) or in Redis when the portal runs several workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

MAX_BUCKETS = 10_000  # past this, full (idle) buckets are forgotten: a full bucket is the same as none


class TokenBuckets:
    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> float:
        """Take one request from `key`'s bucket: 0.0 when it may go ahead, else the seconds until it may."""
        with self._lock:
            now = self._clock()
            tokens, counted = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - counted) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > MAX_BUCKETS:
                    self._forget_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        self._buckets = {key: (tokens, counted) for key, (tokens, counted) in self._buckets.items()
                         if tokens + (now - counted) * self.rate < self.burst}

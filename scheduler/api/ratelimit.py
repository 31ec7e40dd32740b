"""Token buckets, one per (tenant, kind of call), with an injected clock (pure, thread-safe).

A bucket holds at most ``capacity`` tokens and refills at ``rate_per_s``; a call
takes one token or is refused with the seconds until one is back. The API keys
buckets by tenant name (never by anything the request says) and by kind:

* ``submit``: the contract's ``max_submissions_per_minute`` (burst = that many);
* ``request``: every authenticated call, a server-wide per-tenant budget;
* ``auth-failure``: failed authentications per client address, so token
  guessing is slow and the audit log cannot be flooded.

Limits are per server process; run one ``dcops serve`` per host (or put the
limit in the proxy in front) when you scale out.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    capacity: float
    rate_per_s: float
    tokens: float
    updated_s: float

    def take(self, now_s: float) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        elapsed = max(0.0, now_s - self.updated_s)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.updated_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        if self.rate_per_s <= 0:
            return math.inf
        return (1.0 - self.tokens) / self.rate_per_s


class RateLimiter:
    """Named token buckets created on first use; limits may change between calls."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._max_keys = max_keys

    def take(self, kind: str, key: str, *, per_minute: float, burst: float | None = None) -> float:
        """0.0 when the call may go ahead, else seconds to wait (``inf``: never, limit is 0)."""
        capacity = max(burst if burst is not None else per_minute, 0.0)
        rate = max(per_minute, 0.0) / 60.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get((kind, key))
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._evict_full(now)
                bucket = TokenBucket(capacity, rate, capacity, now)
                self._buckets[(kind, key)] = bucket
            elif bucket.capacity != capacity or bucket.rate_per_s != rate:
                bucket.capacity, bucket.rate_per_s = capacity, rate
                bucket.tokens = min(bucket.tokens, capacity)
            return bucket.take(now)

    def waiting(self, kind: str, key: str) -> float:
        """Seconds until ``key``'s bucket holds a token again, without taking one (0.0: ready)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get((kind, key))
            if bucket is None:
                return 0.0
            tokens = min(
                bucket.capacity, bucket.tokens + (now - bucket.updated_s) * bucket.rate_per_s
            )
            if tokens >= 1.0:
                return 0.0
            return math.inf if bucket.rate_per_s <= 0 else (1.0 - tokens) / bucket.rate_per_s

    def _evict_full(self, now: float) -> None:
        """Drop buckets that have refilled completely (they hold no information)."""
        for key, b in list(self._buckets.items()):
            if b.tokens + (now - b.updated_s) * b.rate_per_s >= b.capacity:
                del self._buckets[key]


def retry_after_header(wait_s: float) -> int:
    """Seconds for ``Retry-After`` (an integer >= 1; 'never' is reported as one minute)."""
    if math.isinf(wait_s):
        return 60
    return max(1, math.ceil(wait_s))

"""Concurrency slots per tenant: how many of a tenant's requests may be in the server at once.

One tenant's slow or hostile requests then hold at most ``limit`` of the API's
workers (and of its interpreter time), so other tenants keep their latency. A
request that finds its tenant's slots taken waits up to ``wait_s`` for one
(cheap: a sleep on the event loop, no worker), then is refused with 429.
"""

from __future__ import annotations

import asyncio
import threading
import time

from scheduler.api.problems import ApiProblem, Code

POLL_S = 0.01


class TenantSlots:
    def __init__(self, limit: int, wait_s: float) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.wait_s = wait_s
        self._busy: dict[str, int] = {}
        self._lock = threading.Lock()

    def in_use(self, tenant: str) -> int:
        with self._lock:
            return self._busy.get(tenant, 0)

    async def acquire(self, tenant: str) -> str:
        """Take a slot of ``tenant`` (returns the key to release), or raise 429."""
        deadline = time.monotonic() + self.wait_s
        while True:
            with self._lock:
                busy = self._busy.get(tenant, 0)
                if busy < self.limit:
                    self._busy[tenant] = busy + 1
                    return tenant
            if time.monotonic() >= deadline:
                raise ApiProblem(
                    Code.RATE_LIMITED,
                    f"tenant {tenant!r} already has {busy} request(s) in progress "
                    f"(limit {self.limit}); retry when one ends",
                    retry_after_s=1,
                )
            await asyncio.sleep(POLL_S)

    def release(self, tenant: str) -> None:
        with self._lock:
            left = self._busy.get(tenant, 1) - 1
            if left > 0:
                self._busy[tenant] = left
            else:
                self._busy.pop(tenant, None)

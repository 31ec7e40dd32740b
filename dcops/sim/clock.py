"""Clocks for the simulator: a virtual one (the default, reproducible) and the wall clock."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the simulator asks of a clock: the current time in seconds since the epoch."""

    def now(self) -> float: ...


class VirtualClock:
    """Time that moves only when told to: ``advance(s)`` or ``set(t)``; thread-safe."""

    def __init__(self, start_s: float) -> None:
        self._now = float(start_s)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (never back); return the new time."""
        if seconds < 0:
            raise ValueError("a virtual clock only moves forward")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when_s: float) -> None:
        """Jump to ``when_s``, which must not be in the past."""
        with self._lock:
            if when_s < self._now:
                raise ValueError("a virtual clock only moves forward")
            self._now = float(when_s)


class WallClock:
    """The real time (``time.time()``)."""

    def now(self) -> float:
        return time.time()

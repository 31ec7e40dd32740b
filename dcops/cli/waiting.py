"""What a long fan-out is waiting for: the nodes without a result yet and the time left.

A sweep whose last node hangs is otherwise a still progress bar for up to a minute
(``--timeout``, default 60 s). :class:`Waiting` keeps the nodes not yet answered;
:meth:`Waiting.line` says, once nothing has come back for ``quiet_s``::

    at most 45 s left, waiting for sim-r02-t18 (no answer yet)

The time left is an upper bound from the limits the nodes run under: each node has
``timeout_s``, ``concurrency`` run at once (so ``ceil(nodes / concurrency)`` waves at
most), and ``deadline_s`` caps the whole collection.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

#: Nodes named in the line; the rest are counted.
SHOWN = 3


class Waiting:
    """The pending nodes of one fan-out (thread-safe: results arrive on another thread)."""

    def __init__(
        self,
        nodes: Sequence[str],
        *,
        timeout_s: float,
        concurrency: int,
        deadline_s: float | None = None,
        quiet_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pending = list(dict.fromkeys(nodes))
        self._lock = threading.Lock()
        self._clock = clock
        self.started = clock()
        self.last = self.started
        waves = math.ceil(len(self._pending) / max(concurrency, 1)) if self._pending else 0
        limit = timeout_s * waves
        self.limit_s = limit if deadline_s is None else min(limit, deadline_s)
        self.quiet_s = quiet_s

    def done(self, node: str) -> None:
        with self._lock:
            if node in self._pending:
                self._pending.remove(node)
            self.last = self._clock()

    @property
    def pending(self) -> list[str]:
        with self._lock:
            return list(self._pending)

    def line(self) -> str:
        """ "at most N s left, waiting for 2 nodes: A, B (no answer yet)"; "" while results flow."""
        now = self._clock()
        pending = self.pending
        if not pending or now - self.last < self.quiet_s:
            return ""
        names = ", ".join(pending[:SHOWN])
        more = f" and {len(pending) - SHOWN} more" if len(pending) > SHOWN else ""
        left = max(0, math.ceil(self.limit_s - (now - self.started)))
        what = "" if len(pending) == 1 else f"{len(pending)} nodes: "
        return f"at most {left} s left, waiting for {what}{names}{more} (no answer yet)"


class StageWatch:
    """The wait of the stage running now, for a run of several stages (a burn-in).

    Called as ``watch(stage, nodes, timeout_s, concurrency)`` when a stage starts
    waiting on ``nodes``; returns the callback told each node as it answers.
    :meth:`line` is the status line of that stage (see :class:`Waiting`).
    """

    def __init__(
        self, *, quiet_s: float = 3.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.quiet_s = quiet_s
        self._clock = clock
        self._stage = ""
        self._current: Waiting | None = None

    def __call__(
        self, stage: str, nodes: Sequence[str], timeout_s: float, concurrency: int
    ) -> Callable[[str], None]:
        waiting = Waiting(
            nodes,
            timeout_s=timeout_s,
            concurrency=concurrency,
            quiet_s=self.quiet_s,
            clock=self._clock,
        )
        self._stage, self._current = stage, waiting
        return waiting.done

    def line(self) -> str:
        """ "probe: at most 7 s left, waiting for sim-r02-t18 (no answer yet)"; "" otherwise."""
        current = self._current
        line = current.line() if current is not None else ""
        return f"{self._stage}: {line}" if line else ""

"""Helpers shared by the runners: argv checks, bounded output capture, a watchdog."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from types import TracebackType

#: Default cap on captured output per stream (stdout, stderr) of one command.
DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024

#: Read size for pipes and channels.
CHUNK_BYTES = 64 * 1024


def check_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """Return ``argv`` as a tuple; refuse a bare string or an empty list (a caller's bug)."""
    if isinstance(argv, str | bytes):
        raise TypeError("argv must be a list of arguments, not a string")
    args = tuple(argv)
    if not args:
        raise ValueError("argv is empty")
    for arg in args:
        if not isinstance(arg, str):
            raise TypeError(f"argv items must be str, got {type(arg).__name__}")
        if "\x00" in arg:
            raise ValueError("argv items must not contain NUL bytes")
    return args


class OutputBuffer:
    """Keeps the first ``limit`` bytes of a stream and counts the rest.

    The producer keeps being drained after the cap (so it never blocks on a
    full pipe or SSH window); what is dropped is only counted.
    """

    def __init__(self, limit: int = DEFAULT_MAX_OUTPUT_BYTES) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self._limit = limit
        self._parts: list[bytes] = []
        self._kept = 0
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        room = self._limit - self._kept
        if room >= len(data):
            self._parts.append(data)
            self._kept += len(data)
            return
        if room > 0:
            self._parts.append(data[:room])
            self._kept += room
        self.dropped += len(data) - max(room, 0)

    def text(self) -> str:
        """The captured bytes as text (undecodable bytes replaced), plus a truncation note."""
        text = b"".join(self._parts).decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n[dcops: output truncated, {self.dropped} more bytes not captured]\n"
        return text


class Watchdog:
    """Calls ``action`` once if the ``with`` block is still running after ``timeout_s``.

    Used to break out of library calls that have no timeout of their own (a
    paramiko exec request waiting on a hung server): the action closes the
    channel or transport, which makes the blocked call fail.
    """

    def __init__(self, timeout_s: float, action: Callable[[], object]) -> None:
        self._action = action
        self._lock = threading.Lock()
        self._done = False
        self.fired = False
        self._timer = threading.Timer(max(timeout_s, 0.0), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
        self._action()

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()

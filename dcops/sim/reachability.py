"""How unreachable and hung nodes answer every simulated adapter.

An unreachable node raises :class:`~dcops.errors.ConnectError` at once. A hung
node blocks the caller until ``timeout_s`` has truly passed (wall time, never
earlier) and then raises :class:`~dcops.errors.CommandTimeout`; with no timeout
it blocks until the fleet is closed (:meth:`Hangs.release`), as a hung host
would block a caller that set none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from dcops.errors import CommandTimeout, ConnectError


class Hangs:
    """The wait a hung node imposes; ``release()`` frees callers that set no timeout."""

    def __init__(self) -> None:
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    def wait(self, host: str, timeout_s: float | None) -> CommandTimeout:
        """Block as a hung host does; return the error to raise when the wait ends."""
        if timeout_s is None:
            self._released.wait()
            return CommandTimeout(host, "no answer (hung); the simulated fleet was closed")
        deadline = time.monotonic() + max(0.0, timeout_s)
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(left)
        return CommandTimeout(host, f"no answer within {timeout_s:g} s (hung)")


def check_reachable(
    nodes: Iterable[str],
    unreachable: frozenset[str],
    hung: frozenset[str],
    hangs: Hangs,
    timeout_s: float | None,
) -> None:
    """Raise as the first unreachable node would, else block for the first hung one."""
    wanted = list(dict.fromkeys(nodes))
    for node in wanted:
        if node in unreachable:
            raise ConnectError(node, "connection timed out (host unreachable)")
    for node in wanted:
        if node in hung:
            raise hangs.wait(node, timeout_s)

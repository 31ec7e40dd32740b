"""The drain circuit breaker: refuse mass drains (a broken check looks like 40 bad nodes).

Pure. A sweep (or burn-in) asks before draining; when more than ``max_fleet``
of the fleet, or more than ``max_rack`` of one rack, would be drained at once,
nothing is drained and the caller alerts instead (NVSentinel does the same to
stop mass quarantine). A single node alone never trips it, so a one-node
``--local`` sweep can still drain its own node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BreakerLimits:
    max_fleet: float = 0.25  # share of the fleet drained in one sweep
    max_rack: float = 0.34  # share of one rack (6 of 18 trays)

    def __post_init__(self) -> None:
        if not (0 <= self.max_fleet <= 1 and 0 <= self.max_rack <= 1):
            raise ValueError("breaker limits are shares in 0..1")


def trip(
    to_drain: Sequence[str],
    *,
    fleet_size: int,
    rack_of: Callable[[str], str],
    rack_sizes: Mapping[str, int],
    limits: BreakerLimits,
) -> str | None:
    """Why the breaker refuses to drain ``to_drain``, or None when it may go ahead."""
    count = len(set(to_drain))
    if count <= 1:
        return None
    if count > limits.max_fleet * fleet_size:
        return (
            f"circuit breaker: {count} of {fleet_size} nodes would be drained "
            f"(> {limits.max_fleet:.0%} of the fleet); nothing drained"
        )
    per_rack = Counter(rack_of(n) for n in set(to_drain))
    for rack, n in sorted(per_rack.items()):
        size = rack_sizes.get(rack, n)
        if n > 1 and n > limits.max_rack * size:
            return (
                f"circuit breaker: {n} of {size} nodes of rack {rack} would be drained "
                f"(> {limits.max_rack:.0%} of a rack); nothing drained"
            )
    return None

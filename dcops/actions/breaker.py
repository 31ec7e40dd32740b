"""The one circuit breaker: shares of a rack and of the fleet, a cap per run, a rate per node.

Pure: :func:`check` takes the nodes a batch would take out of service, what
dcops already took out recently, and the per-node history, and says which
requests may go ahead. Every command that acts (burn-in, sweep, ``dcops node``,
approvals, runbooks) passes here, through :class:`dcops.actions.Actuator`.

- **shares** (NVSentinel's breaker): the nodes this batch takes out plus those
  dcops took out within ``breaker_window_s`` may not exceed ``max_drain_fleet``
  of the fleet or ``max_drain_rack`` of a rack (a broken check, a fabric event
  or a bad driver push looks like 40 bad nodes). A single node alone never
  trips a share (a one-node site can still drain its node). A trip refuses the
  whole batch: nothing is taken out, the caller alerts.
- **cap per run**: at most ``max_per_run`` nodes taken out by one batch.
- **rate per node** (Meta GCM: 3 per hour, then a cooldown): a node with
  ``node_max_actions`` actions within ``node_window_s`` is left alone; so is a
  node an operator put back in service after dcops took it out, for
  ``override_cooldown_s`` (dcops does not fight an operator).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dcops.actions.settings import ActionSettings


@dataclass(frozen=True)
class NodeHistory:
    """What dcops did to one node lately (from the actions table)."""

    actions_in_window: int = 0  # done actions of any kind within node_window_s
    overridden_at_s: float | None = None  # a dcops take-out an operator reversed (its time)


@dataclass(frozen=True)
class Topology:
    """Fleet and racks, for the shares."""

    fleet: Sequence[str]
    rack_of: Callable[[str], str | None]
    rack_sizes: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BreakerVerdict:
    tripped: str | None = None  # why the whole batch is refused
    per_node: Mapping[str, str] = field(default_factory=dict)  # node -> why it is refused

    @property
    def ok(self) -> bool:
        return self.tripped is None and not self.per_node


def node_limits(
    nodes: Sequence[str],
    history: Mapping[str, NodeHistory],
    settings: ActionSettings,
    now_s: float,
) -> dict[str, str]:
    """Nodes refused by the per-node rate limit or an operator's override, with why."""
    out: dict[str, str] = {}
    for node in dict.fromkeys(nodes):
        h = history.get(node, NodeHistory())
        if settings.node_max_actions and h.actions_in_window >= settings.node_max_actions:
            out[node] = (
                f"rate limit: {h.actions_in_window} actions on {node} in the last "
                f"{settings.node_window_s:.0f}s (max {settings.node_max_actions})"
            )
        elif (
            h.overridden_at_s is not None
            and now_s - h.overridden_at_s < settings.override_cooldown_s
        ):
            left = settings.override_cooldown_s - (now_s - h.overridden_at_s)
            out[node] = (
                f"cooldown: an operator returned {node} to service after dcops took it out; "
                f"dcops leaves it alone for {left:.0f}s more"
            )
    return out


def shares(
    batch: Sequence[str],
    recent: Sequence[str],
    topology: Topology,
    settings: ActionSettings,
) -> str | None:
    """Why taking ``batch`` out (with ``recent`` already out) trips the breaker, or None."""
    new = list(dict.fromkeys(batch))
    if not new:
        return None
    if settings.max_per_run and len(new) > settings.max_per_run:
        return (
            f"circuit breaker: {len(new)} nodes would be taken out in one run "
            f"(max_per_run {settings.max_per_run}); nothing done"
        )
    out = set(new) | set(recent)
    fleet = len(topology.fleet) or len(out)
    if len(out) > 1 and len(out) > settings.max_drain_fleet * fleet:
        earlier = len(out) - len(new)
        note = (
            f", {earlier} of them in the last {settings.breaker_window_s:.0f}s" if earlier else ""
        )
        return (
            f"circuit breaker: {len(out)} of {fleet} nodes would be out of service by dcops"
            f"{note} (> {settings.max_drain_fleet:.0%} of the fleet); nothing done"
        )
    per_rack = Counter(r for r in (topology.rack_of(n) for n in out) if r is not None)
    touched = {topology.rack_of(n) for n in new}
    for rack, count in sorted(per_rack.items()):
        if rack not in touched:
            continue
        size = topology.rack_sizes.get(rack, count)
        if count > 1 and count > settings.max_drain_rack * size:
            return (
                f"circuit breaker: {count} of {size} nodes of rack {rack} would be out of "
                f"service by dcops (> {settings.max_drain_rack:.0%} of a rack); nothing done"
            )
    return None


def check(
    batch: Sequence[str],
    *,
    recent: Sequence[str],
    history: Mapping[str, NodeHistory],
    topology: Topology,
    settings: ActionSettings,
    now_s: float,
    takes_out: bool = True,
) -> BreakerVerdict:
    """The breaker's verdict on a batch: per-node refusals first, then the shares."""
    per_node = node_limits(batch, history, settings, now_s)
    if not takes_out:
        return BreakerVerdict(None, per_node)
    left = [n for n in batch if n not in per_node]
    return BreakerVerdict(shares(left, recent, topology, settings), per_node)

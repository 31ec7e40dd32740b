"""In-memory node actions that record what was asked (like httpx's MockTransport).

Product code, not a test hack: the fleet simulator drains and resumes through
it, and it stands in for Kubernetes until that backend lands. It follows
Slurm's rules closely enough for the code above the port: a drain keeps the
base state and adds ``DRAIN``; resume clears ``DRAIN`` and brings a ``DOWN``
node back to ``IDLE``; an unknown node changes nothing and raises
:class:`~dcops.errors.UnknownNodeError`::

    actions = RecordingNodeActions("sim-r01-t[01-18]")
    actions.drain("sim-r01-t03", "dcops: xid 79")
    actions.log[-1]            # NodeActionRecord(action='drain', nodes=('sim-r01-t03',), ...)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from dcops.errors import UnknownNodeError
from dcops.hostlist import compress
from dcops.node_actions.base import (
    DRAIN_FLAG,
    NodeActionFeature,
    SchedulerNodeState,
    check_reason,
    node_names,
    register,
)


@dataclass(frozen=True)
class NodeActionRecord:
    """One call that changed something: ``drain`` or ``resume``, on which nodes, when."""

    action: str
    nodes: tuple[str, ...]
    reason: str
    time_s: float


@register("recording")
class RecordingNodeActions:
    """NodeActions over an in-memory table of nodes; every change is appended to ``log``."""

    name = "recording"
    features = frozenset(
        {
            NodeActionFeature.DRAIN,
            NodeActionFeature.RESUME,
            NodeActionFeature.STATES,
            NodeActionFeature.REASON_USER,
            NodeActionFeature.REASON_TIME,
        }
    )

    def __init__(
        self,
        nodes: str | Iterable[str] = (),
        *,
        user: str = "dcops",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.user = user
        self.clock = clock
        self.log: list[NodeActionRecord] = []
        self._nodes: dict[str, SchedulerNodeState] = {
            name: SchedulerNodeState(node=name, states=("IDLE",)) for name in node_names(nodes)
        }

    # --- what the simulator uses to shape the table ----------------------------------------

    def add_node(self, node: str, base: str = "IDLE") -> None:
        """Add (or reset) a node with a base state."""
        self._nodes[node] = SchedulerNodeState(node=node, states=(base.upper(),))

    def set_base(self, node: str, base: str) -> None:
        """Change a node's base state (``ALLOCATED``, ``DOWN``...), keeping flags and reason."""
        state = self._known([node])[node]
        self._nodes[node] = replace(state, states=(base.upper(), *state.flags))

    # --- the port ------------------------------------------------------------------------

    def drain(self, nodes: str | Iterable[str], reason: str) -> list[str]:
        names = node_names(nodes)
        text = check_reason(reason)
        current = self._known(names)
        now = self.clock()
        for name in names:
            state = current[name]
            flags = state.flags if DRAIN_FLAG in state.flags else (*state.flags, DRAIN_FLAG)
            self._nodes[name] = SchedulerNodeState(
                node=name,
                states=(state.base, *flags),
                reason=text,
                reason_user=self.user,
                reason_time_s=now,
            )
        if names:
            self.log.append(NodeActionRecord("drain", tuple(names), text, now))
        return names

    def resume(self, nodes: str | Iterable[str]) -> list[str]:
        names = node_names(nodes)
        current = self._known(names)
        todo = [n for n in names if current[n].drain or current[n].down]
        now = self.clock()
        for name in todo:
            state = current[name]
            base = "IDLE" if state.down else state.base
            flags = tuple(f for f in state.flags if f not in (DRAIN_FLAG, "NOT_RESPONDING"))
            self._nodes[name] = SchedulerNodeState(node=name, states=(base, *flags))
        if todo:
            self.log.append(NodeActionRecord("resume", tuple(todo), "", now))
        return todo

    def states(self, nodes: str | Iterable[str] | None = None) -> dict[str, SchedulerNodeState]:
        if nodes is None:
            return dict(self._nodes)
        return self._known(node_names(nodes))

    # --- helpers ---------------------------------------------------------------------------

    def _known(self, names: list[str]) -> dict[str, SchedulerNodeState]:
        missing = [n for n in names if n not in self._nodes]
        if missing:
            raise UnknownNodeError(f"not known to the scheduler: {compress(missing)}")
        return {n: self._nodes[n] for n in names}

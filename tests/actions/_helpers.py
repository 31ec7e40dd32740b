"""Shared setup for actuator tests: a 2-rack x 18-node in-memory scheduler and a store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcops.actions import ActionRequest, ActionSettings, Actuator, Source, Topology, evidence
from dcops.node_actions import RecordingNodeActions
from dcops.store import AuditLog, Store

NODES = [f"n-r{r:02d}-t{t:02d}" for r in (1, 2) for t in range(1, 19)]


def topology() -> Topology:
    return Topology(
        fleet=NODES, rack_of=lambda n: n.split("-")[1], rack_sizes={"r01": 18, "r02": 18}
    )


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    store: Store
    audit: AuditLog
    sched: RecordingNodeActions
    clock: Clock = field(default_factory=Clock)
    lock_dir: Path | None = None

    def actuator(self, settings: ActionSettings | None = None, **kw: Any) -> Actuator:
        return Actuator(
            self.audit,
            node_actions=self.sched,
            settings=settings,
            topology=topology(),
            lock_dir=self.lock_dir,
            clock=self.clock,
            **kw,
        )


def rig(tmp_path: Path) -> Rig:
    store = Store(tmp_path / "state.db")
    return Rig(store, AuditLog(store, actor="tester"), RecordingNodeActions(NODES), Clock(),
               tmp_path / "locks")  # fmt: skip


def drain(
    node: str, source: str = "sweep", run_id: str = "sw-1", reason: str = ""
) -> ActionRequest:
    check = f"burnin {run_id}: gemm" if source == "burnin" else "t-smi"
    why = reason or f"dcops: {check}: bad"
    return ActionRequest.make(
        "drain",
        node,
        reason=why,
        source=Source(source, run_id),
        requested_by="cron",
        evidence=[evidence("gemm", "slow", metric="tflops", value=600.0, threshold=1900.0)],
    )


def resume(node: str, source: str = "sweep", run_id: str = "sw-2") -> ActionRequest:
    return ActionRequest.make(
        "resume", node, reason="passed", source=Source(source, run_id), requested_by="cron"
    )


Submit = Callable[..., object]

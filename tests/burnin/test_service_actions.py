"""burnin.service acts only through the actuator: re-read ownership at resume time, errors never
drain, one run-level error when most targets could not be tested."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from burnin.profiles import load_thresholds
from burnin.service import ActionPolicy, execute, run_error
from burnin.suite import Progress, SuiteOptions, sim_ports
from dcops.actions import Actuator, topology_of
from dcops.node_actions import RecordingNodeActions
from dcops.sim import Fault, SimFleet
from dcops.store import AuditLog, Store

NODE = "sim-r01-t04"


def _run(
    fleet: SimFleet,
    store: Store,
    sched: RecordingNodeActions,
    *,
    recheck: bool = False,
    nodes: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    policy = ActionPolicy(apply=True, recheck=recheck)
    targets = tuple(fleet.site.nodes() if nodes is None else nodes)
    actuator = Actuator(AuditLog(store, actor="t"), node_actions=sched,
                        topology=topology_of(fleet.site))  # fmt: skip
    return execute(
        sim_ports(fleet),
        load_thresholds(fleet.site.sku),
        SuiteOptions(nodes=targets, probe_timeout_s=0.05),
        store=store,
        actuator=actuator,
        policy=policy,
        progress=progress,
    )


def test_recheck_rereads_the_scheduler_before_resuming(tmp_path: Path) -> None:
    with SimFleet.from_dict({"racks": 1, "seed": 2}) as fleet, Store(tmp_path / "s.db") as store:
        sched = RecordingNodeActions(fleet.site.nodes())
        fleet.inject(Fault(kind="ecc", node=NODE, gpus=(3,), uncorrectable=1))
        first = _run(fleet, store, sched)
        assert [(a["nodes"], a["outcome"]) for a in first["actions"]] == [(NODE, "ok")]
        fleet.repair(NODE)

        def operator_redrains(stage: str, done: int, total: int) -> None:
            # while the recheck runs (hours on a real fleet), an operator takes the node over
            if not sched.states([NODE])[NODE].reason.startswith("admin"):
                sched.drain([NODE], "admin: keep out, RMA 4711")

        second = _run(fleet, store, sched, recheck=True, nodes=[NODE], progress=operator_redrains)
        assert second["status"] == "pass"
        [resume] = second["actions"]
        assert resume["action"] == "resume" and resume["status"] == "skipped"
        assert "someone else (admin: keep out, RMA 4711)" in resume["message"]
        state = sched.states([NODE])[NODE]
        assert state.drain and state.reason == "admin: keep out, RMA 4711"


def test_errors_never_drain(tmp_path: Path) -> None:
    with SimFleet.from_dict({"racks": 1, "seed": 2}) as fleet, Store(tmp_path / "s.db") as store:
        sched = RecordingNodeActions(fleet.site.nodes())
        fleet.inject(Fault(kind="unreachable", node="sim-r01-t02"))
        report = _run(fleet, store, sched)
        assert report["summary"]["error"] == 1
        assert report["actions"] == [] and report["run_error"] is None
        assert not any(s.drain for s in sched.states().values())


def test_most_targets_in_error_is_one_run_level_error() -> None:
    def node(name: str, status: str) -> dict[str, object]:
        message = f"{name} not tested during gemm: Slurm allocation: timeout"
        reason = {"check": "reachability", "status": "error", "value": "backend"}
        reason["message"] = message
        return {"node": name, "status": status, "reasons": [reason] if status == "error" else []}

    report = {"nodes": [node("a", "error"), node("b", "error"), node("c", "pass")]}
    why = run_error(report)
    assert why is not None and why.startswith("2 of 3 nodes could not be tested")
    assert "dcops or its backend failed" in why
    assert run_error({"nodes": [node("a", "error"), node("b", "pass")]}) is None


def test_recheck_says_why_each_node_is_not_resumed(tmp_path: Path) -> None:
    still_bad, redrained, good = "sim-r01-t05", NODE, "sim-r01-t06"
    with SimFleet.from_dict({"racks": 1, "seed": 2}) as fleet, Store(tmp_path / "s.db") as store:
        sched = RecordingNodeActions(fleet.site.nodes())
        for node in (still_bad, redrained, good):
            fleet.inject(Fault(kind="ecc", node=node, gpus=(3,), uncorrectable=1))
        _run(fleet, store, sched)
        fleet.repair(redrained)
        fleet.repair(good)

        def operator_redrains(stage: str, done: int, total: int) -> None:
            if not sched.states([redrained])[redrained].reason.startswith("admin"):
                sched.drain([redrained], "admin: keep out, RMA 4711")

        nodes = [redrained, still_bad, good]
        second = _run(fleet, store, sched, recheck=True, nodes=nodes, progress=operator_redrains)
        why = second["not_resumed"]
        assert set(why) == {redrained, still_bad}  # the good one was resumed
        assert why[still_bad].startswith("recheck fail: ")
        assert "gpu3" in why[still_bad]
        assert why[redrained].startswith("skipped: ") and "RMA 4711" in why[redrained]
        assert not why[redrained].startswith(f"skipped: {redrained}:")  # the node named once
        assert not sched.states([good])[good].drain


def test_a_burnin_has_no_not_resumed(tmp_path: Path) -> None:
    with SimFleet.from_dict({"racks": 1, "seed": 2}) as fleet, Store(tmp_path / "s.db") as store:
        report = _run(fleet, store, RecordingNodeActions(fleet.site.nodes()), nodes=[NODE])
        assert report["not_resumed"] == {}

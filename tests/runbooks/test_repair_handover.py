"""An escalated runbook hands its node to ``repair``: the actuator and capacity treat it so."""

from __future__ import annotations

from pathlib import Path

from capacity.trays import Owner, SchedulerFacts, TrayFacts, classify
from dcops.actions import ActionRequest, Source
from runbooks.engine import drive, start
from runbooks.library import load_library
from tests.runbooks._sim import sim_rig

BOOKS = load_library()
T07 = "sim-r01-t07"


def test_escalated_run_hands_the_node_to_repair_and_only_return_to_service_brings_it_back(
    tmp_path: Path,
) -> None:
    rig = sim_rig(tmp_path, levels=("runbook:gpu_reset=act",))
    run = start(rig.ctx, BOOKS["gpu-reset"], T07, values={"gpu": 2})
    assert run["status"] == "escalated" and "handed to repair" in run["message"]
    state = rig.node_actions.states([T07])[T07]
    assert state.drain and state.reason.startswith("dcops: repair: ticket-")
    assert run["run_id"] in state.reason

    # a clean sweep (or a burn-in recheck) never returns a node handed to repair
    for source in ("sweep", "burnin"):
        request = ActionRequest.make(
            "resume", T07, reason="clean", source=Source(source, "x"), requested_by="cron"
        )
        [result] = rig.ctx.actuator.submit([request], apply=True)
        assert result.status.value == "skipped" and "taken out by repair" in result.message
    assert rig.node_actions.states([T07])[T07].drain

    # capacity: out, owner repair, with the ticket as its reason
    facts = TrayFacts(
        node=T07,
        rack="r01",
        gpus=4,
        lifecycle="drained",
        scheduler=SchedulerFacts(drain=True, reason=state.reason, by_dcops=True),
    )
    verdict = classify(facts, now_s=0.0)
    assert verdict.owner is Owner.REPAIR and verdict.reason == state.reason

    rig.world.fleet.repair(T07)  # the GPU was swapped; return-to-service brings it back
    back = start(rig.ctx, BOOKS["return-to-service"], T07)
    action = next(s["action_id"] for s in back["steps"] if s["status"] == "waiting_approval")
    rig.approve(action)
    assert drive(rig.ctx, back["run_id"])["status"] == "done"
    assert rig.node_actions.states([T07])[T07].in_service
    assert rig.ctx.audit.verify().ok
    handovers = [r for r in rig.ctx.audit.records() if r.action == "handover"]
    assert [r.outcome for r in handovers] == ["started", "ok"]


def test_no_handover_when_an_operator_took_the_node_over(tmp_path: Path) -> None:
    rig = sim_rig(tmp_path, levels=("runbook:gpu_reset=act",))
    rig.node_actions.drain(T07, "admin: mine")
    run = start(rig.ctx, BOOKS["gpu-reset"], T07, values={"gpu": 2})
    assert run["status"] == "aborted"
    assert rig.node_actions.states([T07])[T07].reason == "admin: mine"
    assert not [r for r in rig.ctx.audit.records() if r.action == "handover"]

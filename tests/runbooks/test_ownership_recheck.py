"""Safety: a runbook re-reads ownership right before each acting step; no GPU 0 by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dcops.errors import InputError
from runbooks.engine import drive, start
from runbooks.library import load_library
from runbooks.plan import plan
from tests.runbooks._sim import sim_rig

BOOKS = load_library()
T03, T07 = "sim-r01-t03", "sim-r01-t07"
RMA = "admin: RMA 4711, hands off"


def _waiting(run: dict[str, Any]) -> str:
    assert run["status"] == "waiting_approval", run["message"]
    action_id = next(s["action_id"] for s in run["steps"] if s["status"] == "waiting_approval")
    assert isinstance(action_id, str)
    return action_id


def test_approved_reboot_of_a_node_an_operator_took_over_is_refused_and_audited(
    tmp_path: Path,
) -> None:
    rig = sim_rig(tmp_path)
    run = start(rig.ctx, BOOKS["xid-79-reboot"], T03, why="sweep: XID 79")
    action = _waiting(run)  # the reboot waits for its approval, the node drained by the run
    rig.node_actions.drain(T03, RMA)  # an operator takes the node over meanwhile
    approved = rig.approve(action)
    assert approved.status.value == "skipped" and "ownership changed" in approved.message
    assert not rig.world.maintenance.booting_until  # nothing was rebooted
    assert rig.world.fleet.probe.read(T03).gpus[1].lost  # the fault is still there
    done = drive(rig.ctx, run["run_id"])
    reboot = next(s for s in done["steps"] if s["name"] == "reboot")
    assert reboot["status"] == "refused" and "refused" in reboot["outcome"]
    assert done["status"] == "aborted" and "refused" in done["message"]
    assert {s["name"]: s["status"] for s in done["steps"]}["resume"] == "pending"
    state = rig.node_actions.states([T03])[T03]
    assert state.drain and state.reason == RMA  # left to its new owner
    audit = rig.ctx.audit
    assert any(r.outcome == "skipped" and r.action == "reboot" for r in audit.records())
    steps = [r for r in audit.records(action="runbook.step") if r.evidence["step"] == "reboot"]
    assert steps[-1].outcome == "refused"
    assert audit.verify().ok


def test_takeover_after_an_approval_gate_refuses_the_next_acting_step(tmp_path: Path) -> None:
    rig = sim_rig(tmp_path, levels=("runbook:reboot=act",))  # reboot runs without approval
    seen: list[str] = []

    def takeover_after_collect() -> None:  # the operator drains the node mid-run
        from runbooks.runs import get_run

        if not seen:
            return
        run = get_run(rig.store, seen[0])
        collected = any(s["name"] == "collect" and s["status"] == "done" for s in run["steps"])
        if collected and rig.node_actions.states([T03])[T03].reason != RMA:
            rig.node_actions.drain(T03, RMA)

    run = start(rig.ctx, BOOKS["xid-79-reboot"], T03, autonomy="recommend")
    seen.append(run["run_id"])
    from runbooks.runs import update_run

    update_run(rig.store, run["run_id"], status="running", apply=1, autonomy="act")
    rig.ctx.on_change = takeover_after_collect
    done = drive(rig.ctx, run["run_id"])
    states = {s["name"]: s["status"] for s in done["steps"]}
    assert states["collect"] == "done" and states["reboot"] == "refused", done
    assert done["status"] == "aborted"
    assert rig.world.fleet.probe.read(T03).gpus[1].lost  # no reboot ran
    assert all(a["kind"] != "reboot" for a in rig.ctx.actuator.list_actions())


def test_a_runbook_never_acts_on_a_node_someone_else_drained(tmp_path: Path) -> None:
    rig = sim_rig(tmp_path, levels=("runbook:gpu_reset=act",))
    rig.node_actions.drain(T07, RMA)
    run = start(rig.ctx, BOOKS["gpu-reset"], T07, values={"gpu": 2})
    assert run["status"] == "aborted"
    assert run["steps"][0]["status"] == "refused" and "someone else" in run["steps"][0]["outcome"]
    assert rig.node_actions.states([T07])[T07].reason == RMA


def test_gpu_reset_without_a_gpu_index_is_refused_before_anything_runs(tmp_path: Path) -> None:
    rig = sim_rig(tmp_path, levels=("runbook:gpu_reset=act",))
    for name in ("gpu-reset", "row-remap-pending", "nvlink5-errors"):
        with pytest.raises(InputError, match="no GPU index"):
            start(rig.ctx, BOOKS[name], T07)
        with pytest.raises(InputError, match="no GPU index"):
            plan(BOOKS[name], T07)
    with pytest.raises(InputError, match="GPU index"):
        start(rig.ctx, BOOKS["gpu-reset"], T07, values={"gpu": "all"})
    assert rig.store.conn.execute("SELECT COUNT(*) FROM runbook_runs").fetchone()[0] == 0
    assert rig.node_actions.states([T07])[T07].in_service  # nothing drained
    lines = plan(BOOKS["gpu-reset"], T07, {"gpu": 5})
    reset = next(line for line in lines if line["name"] == "reset")
    assert reset["commands"][0]["argv"] == ["nvidia-smi", "-r", "-i", "5"]


def test_the_reset_step_itself_refuses_a_missing_gpu(tmp_path: Path) -> None:
    from runbooks.steps import gpu_index

    assert gpu_index("{gpu}") is None and gpu_index(None) is None and gpu_index(True) is None
    assert gpu_index("3") == 3 and gpu_index(0) == 0 and gpu_index(-1) is None

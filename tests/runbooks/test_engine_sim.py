"""The engine end to end on the simulator: approvals, escalation, limits, resume, abort, audit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dcops.errors import BusyError
from runbooks.engine import abort, drive, start
from runbooks.library import load_library
from runbooks.runs import Limits, get_run
from tests.runbooks._sim import sim_rig

BOOKS = load_library()
T03, T07 = "sim-r01-t03", "sim-r01-t07"


def _waiting(run: dict[str, Any]) -> str:
    assert run["status"] == "waiting_approval", run["message"]
    action_id = next(s["action_id"] for s in run["steps"] if s["status"] == "waiting_approval")
    assert isinstance(action_id, str)
    return action_id


def test_xid_79_tray_waits_for_approval_then_reboots_and_returns(tmp_path: Path) -> None:
    rig = sim_rig(tmp_path)
    run = start(rig.ctx, BOOKS["xid-79-reboot"], T03, why="sweep: XID 79")
    assert [s["status"] for s in run["steps"][:3]] == ["done", "done", "waiting_approval"]
    assert rig.node_actions.states([T03])[T03].drain  # drained before the reboot
    assert rig.approve(_waiting(run)).status.value == "done"
    run = drive(rig.ctx, run["run_id"])
    assert run["status"] == "done", run["message"]
    wait = next(s for s in run["steps"] if s["name"] == "wait-up")
    assert wait["evidence"]["waited_s"] >= 200  # the reboot took its (virtual) minutes
    assert rig.node_actions.states([T03])[T03].in_service
    assert not rig.world.fleet.probe.read(T03).gpus[1].lost
    assert drive(rig.ctx, run["run_id"])["status"] == "done"  # resume of a finished run: no-op
    assert rig.ctx.audit.verify().ok
    steps = [r for r in rig.ctx.audit.records(action="runbook.step") if r.target == T03]
    assert {r.evidence["step"] for r in steps} >= {"drain", "reboot", "check", "resume"}


def test_uncorrectable_ecc_tray_escalates_with_its_evidence_bundle(tmp_path: Path) -> None:
    rig = sim_rig(tmp_path, levels=("runbook:gpu_reset=act",))  # approvals off for resets
    run = start(rig.ctx, BOOKS["gpu-reset"], T07, values={"gpu": 2})
    assert run["status"] == "escalated"
    check = next(s for s in run["steps"] if s["name"] == "check")
    assert check["status"] == "failed" and "uncorrectable" in check["outcome"]
    assert next(s for s in run["steps"] if s["name"] == "resume")["status"] == "pending"
    assert rig.node_actions.states([T07])[T07].drain  # left out of service
    (ticket,) = (tmp_path / "tickets").glob("*.json")
    data = json.loads(ticket.read_text())
    assert data["node"] == T07 and data["runbook"] == "gpu-reset"
    assert {e["item"] for e in data["evidence"]} == {"dmesg", "nvidia-smi-q", "remapped-rows"}
    assert all(Path(e["file"]).is_file() for e in data["evidence"])
    assert oct(ticket.stat().st_mode & 0o777) == "0o600"


def test_second_run_on_a_node_is_refused(tmp_path: Path) -> None:
    rig = sim_rig(tmp_path)
    start(rig.ctx, BOOKS["xid-79-reboot"], T03)
    with pytest.raises(BusyError, match="one runbook per node"):
        start(rig.ctx, BOOKS["gpu-reset"], T03, values={"gpu": 1})


def test_rack_limit_blocks_a_second_destructive_step_until_the_first_ends(tmp_path: Path) -> None:
    rig = sim_rig(tmp_path)
    first = start(rig.ctx, BOOKS["xid-79-reboot"], T03)
    second = start(rig.ctx, BOOKS["gpu-reset"], T07, values={"gpu": 2})
    assert second["status"] == "blocked" and first["run_id"] in second["message"]
    rig.approve(_waiting(first))
    assert drive(rig.ctx, first["run_id"])["status"] == "done"
    assert drive(rig.ctx, second["run_id"])["status"] == "waiting_approval"


def test_repeated_remediation_escalates_instead(tmp_path: Path) -> None:
    rig = sim_rig(tmp_path, levels=("runbook:reboot=act",), limits=Limits(max_remediations_7d=1))
    assert start(rig.ctx, BOOKS["xid-79-reboot"], T03)["status"] == "done"
    again = start(rig.ctx, BOOKS["xid-79-reboot"], T03)
    assert again["status"] == "escalated" and "1 remediations" in again["message"]
    assert all(s["status"] == "skipped" for s in again["steps"])


def test_abort_denies_the_pending_approval(tmp_path: Path) -> None:
    rig = sim_rig(tmp_path)
    run = start(rig.ctx, BOOKS["xid-79-reboot"], T03)
    action = _waiting(run)
    done = abort(rig.ctx, run["run_id"])
    assert done["status"] == "aborted"
    assert rig.ctx.actuator.show(action)["status"] == "denied"
    assert get_run(rig.store, run["run_id"])["status"] == "aborted"


def test_recommend_autonomy_runs_nothing(tmp_path: Path) -> None:
    rig = sim_rig(tmp_path)
    run = start(rig.ctx, BOOKS["xid-79-reboot"], T03, autonomy="recommend")
    assert run["status"] == "recommended"
    assert all(s["status"] == "pending" for s in run["steps"])
    assert not rig.node_actions.states([T03])[T03].drain


def test_a_crash_inside_a_non_idempotent_step_asks_before_running_it_again(
    tmp_path: Path,
) -> None:
    from runbooks.runs import update_run, update_step

    rig = sim_rig(tmp_path, levels=("runbook:reboot=act",))
    run = start(rig.ctx, BOOKS["xid-79-reboot"], T03, autonomy="recommend")
    run_id = run["run_id"]
    # as if a process had driven it into the reboot step and died there (kill -9)
    update_run(rig.store, run_id, status="running", apply=1, autonomy="act", pid=999_999_999)
    for s in run["steps"][:2]:
        update_step(rig.store, run_id, s["seq"], status="done")
    update_step(rig.store, run_id, run["steps"][2]["seq"], status="running", attempts=1)
    again = drive(rig.ctx, run_id)
    reboot = next(s for s in again["steps"] if s["name"] == "reboot")
    assert again["status"] == "waiting_approval" and "not idempotent" in reboot["outcome"]
    rig.approve(reboot["action_id"])
    assert drive(rig.ctx, run_id)["status"] == "done"


def test_thermal_runbook_escalates_to_facilities_and_changes_nothing(tmp_path: Path) -> None:
    scenario = tmp_path / "hot.yaml"
    scenario.write_text(
        "racks: 1\nseed: 2\nfaults:\n  - {node: sim-r01-t09, gpu: 3, kind: thermal_throttle}\n"
    )
    rig = sim_rig(tmp_path, scenario=scenario)
    run = start(rig.ctx, BOOKS["thermal-facilities"], "sim-r01-t09", why="throttle")
    assert run["status"] == "done"
    (ticket,) = (tmp_path / "tickets").glob("*.json")
    data = json.loads(ticket.read_text())
    assert data["to"] == "facilities" and data["title"] == "thermal throttling on sim-r01-t09"
    temps = next(e for e in data["evidence"] if e["item"] == "temperatures")
    assert "GPU Current Temp" in Path(temps["file"]).read_text()
    assert rig.ctx.actuator.list_actions() == []  # nothing was asked of the fleet


def test_xid_45_alone_restarts_the_fabric_manager(tmp_path: Path) -> None:
    scenario = tmp_path / "fm.yaml"
    scenario.write_text(
        "racks: 1\nseed: 2\nfaults:\n  - {node: sim-r01-t02, gpu: 0, kind: xid, code: 45}\n"
    )
    rig = sim_rig(tmp_path, scenario=scenario, levels=("runbook:service_restart=act",))
    run = start(rig.ctx, BOOKS["xid-45-fabric-manager"], "sim-r01-t02")
    assert run["status"] == "done", run["message"]
    restart = next(s for s in run["steps"] if s["name"] == "restart-fm")
    assert "systemctl restart nvidia-fabricmanager" in restart["outcome"]
    assert not rig.world.fleet.probe.read("sim-r01-t02").gpus[0].xids  # cleared by the restart


def test_row_remap_and_nvlink_runbooks_end_to_end(tmp_path: Path) -> None:
    scenario = tmp_path / "mixed.yaml"
    scenario.write_text(
        "racks: 1\nseed: 2\nfaults:\n"
        "  - {node: sim-r01-t04, gpu: 1, kind: remapped_rows}\n"
        "  - {node: sim-r01-t11, gpu: 2, kind: xid, code: 149, message: 'NETIR_LINK_EVT  Fatal"
        "   XC0 i0 Link 17 (0x025625c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)'}\n"
    )
    rig = sim_rig(
        tmp_path,
        scenario=scenario,
        levels=("runbook:gpu_reset=act",),
        limits=Limits(max_per_rack=2),
    )
    remap = start(rig.ctx, BOOKS["row-remap-pending"], "sim-r01-t04", values={"gpu": 1})
    link = start(rig.ctx, BOOKS["nvlink5-errors"], "sim-r01-t11", values={"gpu": 2})
    assert remap["status"] == "done" and link["status"] == "done", (remap, link)
    assert not rig.world.fleet.probe.read("sim-r01-t04").gpus[1].remapped_rows_pending
    assert rig.node_actions.states(["sim-r01-t11"])["sim-r01-t11"].in_service


def test_return_to_service_after_a_repair(tmp_path: Path) -> None:
    rig = sim_rig(tmp_path, levels=("runbook:gpu_reset=act",))
    assert start(rig.ctx, BOOKS["gpu-reset"], T07, values={"gpu": 2})["status"] == "escalated"
    rig.world.fleet.repair(T07)  # the GPU was swapped
    run = start(rig.ctx, BOOKS["return-to-service"], T07)
    assert [s["status"] for s in run["steps"][:3]] == ["done", "done", "done"]  # checks, burn-in
    assert rig.node_actions.states([T07])[T07].drain  # still out until approved
    rig.approve(_waiting(run))
    done = drive(rig.ctx, run["run_id"])
    assert done["status"] == "done" and rig.node_actions.states([T07])[T07].in_service


def test_an_expired_approval_fails_the_step_and_escalates(tmp_path: Path) -> None:
    import time

    rig = sim_rig(tmp_path, approval_ttl_s=0.05)
    run = start(rig.ctx, BOOKS["xid-79-reboot"], T03)
    _waiting(run)
    time.sleep(0.2)
    done = drive(rig.ctx, run["run_id"])
    reboot = next(s for s in done["steps"] if s["name"] == "reboot")
    assert reboot["status"] == "failed" and "expired" in reboot["outcome"]
    assert done["status"] == "escalated"
    assert rig.world.fleet.probe.read(T03).gpus[1].lost  # nothing was rebooted


def test_a_run_aborted_from_elsewhere_stops_before_its_next_step(tmp_path: Path) -> None:
    from runbooks.runs import update_run

    rig = sim_rig(tmp_path, levels=("runbook:reboot=act",))
    seen: list[str] = []

    def abort_after_collect() -> None:  # the operator's `dcops runbook abort`, mid-run
        run = get_run(rig.store, seen[0]) if seen else None
        if run and any(s["name"] == "collect" and s["status"] == "done" for s in run["steps"]):
            update_run(rig.store, run["run_id"], status="aborted", message="operator")

    run = start(rig.ctx, BOOKS["xid-79-reboot"], T03, autonomy="recommend")
    seen.append(run["run_id"])
    update_run(rig.store, run["run_id"], status="running", apply=1, autonomy="act")
    rig.ctx.on_change = abort_after_collect
    done = drive(rig.ctx, run["run_id"])
    states = {s["name"]: s["status"] for s in done["steps"]}
    assert done["status"] == "aborted" and states["collect"] == "done"
    assert states["reboot"] == "pending" and rig.world.fleet.probe.read(T03).gpus[1].lost


def test_the_simulator_answers_every_command_of_the_library(tmp_path: Path) -> None:
    from dcops.cli.runbook_ports import check_commands
    from runbooks.plan import plan

    rig = sim_rig(tmp_path)
    node = "sim-r01-t12"  # healthy
    seen: set[tuple[str, ...]] = set()
    for book in BOOKS.values():
        for line in plan(book, node, {"gpu": 1}, check_commands):
            for cmd in line.get("commands", []):
                argv = tuple(cmd["argv"])
                if argv in seen or argv[:2] == ("systemctl", "reboot"):
                    continue
                seen.add(argv)
                result = rig.world.fleet.runner.run(node, list(argv), timeout_s=30)
                assert result.returncode in (0, 3), (argv, result.stderr)
    from runbooks.commands import COLLECT_ARGV

    for item_argv in COLLECT_ARGV.values():  # every collect item, used by the library or not
        assert rig.world.fleet.runner.run(node, item_argv, timeout_s=30).returncode == 0, item_argv
    assert len(seen) >= 12
    # and the reboot: answered, then the node is away for its boot time
    assert rig.world.fleet.runner.run(node, ["systemctl", "reboot"], timeout_s=30).ok


def test_fleet_limit_refuses_a_run_past_max_fleet_until_one_finishes(tmp_path: Path) -> None:
    from dcops.errors import RefusedError

    rig = sim_rig(tmp_path, limits=Limits(max_fleet=2, max_per_rack=18))
    first = start(rig.ctx, BOOKS["xid-79-reboot"], T03)
    second = start(rig.ctx, BOOKS["gpu-reset"], T07, values={"gpu": 2})
    assert {first["status"], second["status"]} == {"waiting_approval"}
    with pytest.raises(RefusedError, match=r"2 runbook runs in flight .*max_fleet = 2"):
        start(rig.ctx, BOOKS["xid-79-reboot"], "sim-r01-t09")
    assert get_run(rig.store, first["run_id"])["status"] == "waiting_approval"  # untouched
    assert not rig.node_actions.states(["sim-r01-t09"])["sim-r01-t09"].drain
    rows = rig.store.conn.execute("SELECT COUNT(*) FROM runbook_runs").fetchone()[0]
    assert rows == 2  # the refused run left nothing behind
    # a recommendation touches nothing, so it is not counted against the fleet
    assert (
        start(rig.ctx, BOOKS["xid-79-reboot"], "sim-r01-t09", autonomy="recommend")["status"]
        == "recommended"
    )
    abort(rig.ctx, first["run_id"])  # one finishes: the fleet has room again
    third = start(rig.ctx, BOOKS["xid-79-reboot"], "sim-r01-t10")
    assert third["status"] == "waiting_approval"

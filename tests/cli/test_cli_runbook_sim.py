"""The issue's "done means" on the simulator, as an operator types it (real processes).

An XID 79 tray and an uncorrectable-ECC tray: ``runbook suggest`` picks the right
runbooks; with ``--apply`` destructive steps wait for approval by default; after
the approvals the first tray is rebooted and returned to service, the second is
escalated with its evidence bundle; the audit chain verifies. What the runs did
to the simulated fleet persists between the commands.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.cli.test_cli_core import dcops

REPO = Path(__file__).resolve().parents[2]
SCENARIO = str(REPO / "examples" / "scenarios" / "remediation.yaml")
T03, T07 = "sim-r01-t03", "sim-r01-t07"


def _json(*args: str, code: int = 0) -> Any:
    proc = dcops(*args)
    assert proc.returncode == code, proc.stderr + proc.stdout
    return json.loads(proc.stdout)


def _approve(run: dict[str, Any]) -> None:
    assert run["status"] == "waiting_approval", run
    (action,) = [s["action_id"] for s in run["steps"] if s["status"] == "waiting_approval"]
    pending = _json("actions", "list", "--pending", "--json")
    assert [a["id"] for a in pending] == [action]
    (done,) = _json("actions", "approve", action, "--json")
    assert done["status"] == "done", done


def test_xid79_tray_returns_and_ecc_tray_escalates() -> None:
    sweep = _json("sweep", "--sim", SCENARIO, "--json", code=1)
    picks = {
        s["node"]: s for s in _json("runbook", "suggest", "--from-sweep", sweep["run_id"], "--json")
    }
    assert picks[T03]["runbook"] == "xid-79-reboot" and "XID 79" in picks[T03]["why"]
    assert picks[T07]["runbook"] == "gpu-reset" and picks[T07]["params"] == {"gpu": 2}

    first = _json(
        "runbook", "run", "xid-79-reboot", "--nodes", T03, "--sim", SCENARIO, "--apply", "--json"
    )
    reboot = next(s for s in first["steps"] if s["name"] == "reboot")
    assert reboot["status"] == "waiting_approval"  # destructive: waits by default
    _approve(first)
    done = _json("runbook", "resume", first["run_id"], "--json")
    assert done["status"] == "done", done["message"]
    assert [s["status"] for s in done["steps"]] == ["done"] * 7
    assert _json("runbook", "status", first["run_id"], "--json")["status"] == "done"
    assert _json("runbook", "resume", first["run_id"], "--json")["status"] == "done"  # no-op

    second = _json(
        "runbook", "run", "gpu-reset", "--nodes", T07, "--param", "gpu=2", "--sim", SCENARIO,
        "--apply", "--json",
    )  # fmt: skip
    _approve(second)
    escalated = _json("runbook", "resume", second["run_id"], "--json", code=1)
    assert escalated["status"] == "escalated"
    check = next(s for s in escalated["steps"] if s["name"] == "check")
    assert check["status"] == "failed" and "uncorrectable" in check["outcome"]
    tickets = list((Path(os.environ["XDG_DATA_HOME"]) / "dcops" / "tickets").glob("*.json"))
    (ticket,) = [json.loads(t.read_text()) for t in tickets]
    assert ticket["node"] == T07 and ticket["evidence"]

    # the fleet remembers: a new sweep sees the first tray healthy, the second still bad
    again = _json("sweep", "--sim", SCENARIO, "--json", code=1)
    status = {n["node"]: n["status"] for n in again["nodes"]}
    assert status[T03] == "ok" and status[T07] != "ok"
    history = _json("runbook", "history", "--json")
    assert {(h["node"], h["status"]) for h in history} == {(T03, "done"), (T07, "escalated")}
    assert dcops("audit", "verify").returncode == 0


def test_sweep_remediate_opens_recommended_runs_only() -> None:
    report = _json("sweep", "--sim", SCENARIO, "--remediate", "--json", code=1)
    opened = {r["node"]: r for r in report["remediation"]}
    assert opened[T03]["runbook"] == "xid-79-reboot" and opened[T03]["status"] == "recommended"
    run = _json("runbook", "status", opened[T03]["run_id"], "--json")
    assert all(s["status"] == "pending" for s in run["steps"])
    nodes = {n["node"]: n for n in _json("sweep", "--sim", SCENARIO, "--json", code=1)["nodes"]}
    assert nodes[T03]["status"] != "ok"  # nothing was done to it


def test_run_without_apply_is_the_plan() -> None:
    plan = _json("runbook", "run", "xid-79-reboot", "--nodes", T03, "--sim", SCENARIO, "--json")
    assert plan["status"] == "planned" and plan["steps"][2]["action"]["kind"] == "reboot"
    assert _json("runbook", "history", "--json") == []


def test_suggest_from_a_burnin_run() -> None:
    report = _json("burnin", "run", "--sim", SCENARIO, "--json", code=1)
    picks = {
        s["node"]: s["runbook"]
        for s in _json("runbook", "suggest", "--from-burnin", report["run_id"], "--json")
    }
    assert picks == {T03: "xid-79-reboot", T07: "gpu-reset"}
    wrong = dcops("runbook", "suggest", "--from-sweep", report["run_id"])
    assert wrong.returncode == 2 and "unknown sweep run" in wrong.stderr


def test_sweep_judges_nvlink5_xids_by_their_decode(tmp_path: Path) -> None:
    regs = "(0x{} 0x{} 0x00000000 0x00000000 0x00000000 0x00000000)"
    scenario = tmp_path / "nvlink5.yaml"
    scenario.write_text(
        "racks: 1\nseed: 3\nfaults:\n"
        "  - {node: sim-r01-t01, gpu: 0, kind: xid, code: 145, message: 'RLW_SRC_TRACK Nonfatal"
        f" XC1 i0 Link 02 {regs.format('040848e2', '00000008')}'}}\n"
        "  - {node: sim-r01-t02, gpu: 1, kind: xid, code: 149, message: 'NETIR_LINK_EVT  Fatal"
        f"   XC0 i0 Link 17 {regs.format('025625c6', '00000000')}'}}\n"
    )
    report = _json("sweep", "--sim", str(scenario), "--checks", "xid", "--json", code=1)
    status = {n["node"]: n["status"] for n in report["nodes"]}
    assert status["sim-r01-t01"] == "warn"  # non-fatal, XID_154_EVAL without a 154: restart app
    assert status["sim-r01-t02"] in ("suspect", "fail")  # link fatal: reset the GPU
    picks = {
        s["node"]: s["runbook"]
        for s in _json("runbook", "suggest", "--from-sweep", report["run_id"], "--json")
    }
    assert picks == {"sim-r01-t02": "nvlink5-errors"}

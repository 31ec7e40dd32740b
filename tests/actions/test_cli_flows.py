"""The actuator end to end through the CLI on the simulator (its scheduler kept in the store).

Each test here failed on the code before the actuator: sweeps resumed burn-in
drains, a recheck resumed a node an operator re-drained, errors drained nodes,
a bad --dtype drained healthy trays, a missing --textfile acted then exited 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.timeout(300)

SDC = {"node": "sim-r01-t09", "gpu": 0, "kind": "sdc"}
XID = {"node": "sim-r01-t03", "gpu": 1, "kind": "xid", "code": 79}


def dcops(tmp_path: Path, *args: str, config: str = "") -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(config)
    return subprocess.run(
        [sys.executable, "-m", "dcops", "--config", str(cfg), "--data-dir", str(tmp_path / "d"),
         "--actor", "alice", *args],
        capture_output=True, text=True, timeout=240, check=False, env=dict(os.environ),
    )  # fmt: skip


def scenario(tmp_path: Path, name: str, faults: list[dict[str, Any]]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"racks": 1, "seed": 4, "faults": faults}))
    return str(path)


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def status(tmp_path: Path, sc: str, node: str) -> dict[str, Any]:
    row: dict[str, Any]
    [row] = as_json(dcops(tmp_path, "node", "status", node, "--sim", sc, "--json"))
    return row


def test_a_sweep_never_resumes_a_burnin_drain(tmp_path: Path) -> None:
    bad = scenario(tmp_path, "bad.yaml", [SDC])
    proc = dcops(tmp_path, "burnin", "run", "--sim", bad, "--apply", "--json")
    assert proc.returncode == 1, proc.stderr
    assert [(a["nodes"], a["outcome"]) for a in as_json(proc)["actions"]] == [("sim-r01-t09", "ok")]
    clean = scenario(tmp_path, "clean.yaml", [])
    for _ in range(3):  # cron: clean sweeps, more than resume_after_passes
        report = as_json(dcops(tmp_path, "sweep", "--sim", clean, "--apply", "--json"))
    [resume] = [a for a in report["actions"] if a["node"] == "sim-r01-t09"]
    assert resume["status"] == "skipped"
    assert "taken out by burnin" in resume["message"]
    assert "only a burnin recheck that passes returns it, not a sweep" in resume["message"]
    notes = {(c["node"], c["kind"]) for c in report["consistency"]}
    assert ("sim-r01-t09", "burnin-drained-but-healthy") in notes
    row = status(tmp_path, clean, "sim-r01-t09")
    assert row["drained"] and row["by_dcops"] and row["reason"].startswith("dcops: burnin")
    # the recheck, the same kind of evidence, does return it
    proc = dcops(tmp_path, "burnin", "run", "--sim", clean, "--recheck", "--apply", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [(a["action"], a["outcome"]) for a in as_json(proc)["actions"]] == [("resume", "ok")]
    assert not status(tmp_path, clean, "sim-r01-t09")["drained"]


def test_an_operator_redrain_survives_recheck_and_sweep(tmp_path: Path) -> None:
    bad = scenario(tmp_path, "bad.yaml", [SDC])
    clean = scenario(tmp_path, "clean.yaml", [])
    dcops(tmp_path, "burnin", "run", "--sim", bad, "--apply", "--json")
    proc = dcops(tmp_path, "node", "drain", "sim-r01-t09", "--reason", "RMA 4711", "--sim",
                 clean, "--apply", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = status(tmp_path, clean, "sim-r01-t09")
    assert (row["reason"], row["by_dcops"], row["drained_by"]) == ("RMA 4711", False, "operator")
    proc = dcops(tmp_path, "burnin", "run", "--sim", clean, "--recheck", "--apply", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "no node drained by dcops" in as_json(proc)["message"]
    for _ in range(3):
        report = as_json(dcops(tmp_path, "sweep", "--sim", clean, "--apply", "--json"))
        assert report["actions"] == []
    row = status(tmp_path, clean, "sim-r01-t09")
    assert row["drained"] and row["reason"] == "RMA 4711"


def test_an_operator_resumed_node_is_not_drained_again_within_the_cooldown(
    tmp_path: Path,
) -> None:
    bad = scenario(tmp_path, "bad.yaml", [XID])
    first = dcops(tmp_path, "sweep", "--sim", bad, "--apply", "--json")
    assert [a["outcome"] for a in as_json(first)["actions"]] == ["ok"]
    proc = dcops(tmp_path, "node", "resume", "sim-r01-t03", "--sim", bad, "--apply", "--json")
    assert proc.returncode == 0, proc.stderr
    again = dcops(tmp_path, "sweep", "--sim", bad, "--apply", "--json")
    assert again.returncode == 5  # the one refusal exit code
    [drain] = as_json(again)["actions"]
    assert drain["status"] == "refused" and "cooldown: an operator returned" in drain["message"]
    assert not status(tmp_path, bad, "sim-r01-t03")["drained"]


def test_errors_never_drain_and_a_bad_dtype_touches_nothing(tmp_path: Path) -> None:
    demo = str(Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "demo.yaml")
    proc = dcops(tmp_path, "burnin", "run", "--sim", demo, "--dtype", "fp7", "--apply")
    assert proc.returncode == 2 and "unknown GEMM dtype 'fp7'" in proc.stderr
    assert as_json(dcops(tmp_path, "actions", "list", "--json")) == []
    assert as_json(dcops(tmp_path, "burnin", "history", "--json")) == []
    hung = scenario(tmp_path, "hung.yaml", [{"node": "sim-r01-t05", "kind": "hang"}])
    proc = dcops(tmp_path, "burnin", "run", "--sim", hung, "--apply", "--json",
                 "--probe-timeout", "0.3")  # fmt: skip
    report = as_json(proc)
    assert report["summary"]["error"] == 1 and report["actions"] == []
    assert proc.returncode == 1 and report["run_error"] is None


def test_sweep_with_a_missing_textfile_dir_fails_before_acting(tmp_path: Path) -> None:
    bad = scenario(tmp_path, "bad.yaml", [XID])
    proc = dcops(tmp_path, "sweep", "--sim", bad, "--apply", "--textfile", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "no such directory" in proc.stderr
    assert as_json(dcops(tmp_path, "audit", "show", "--json")) == []
    assert not status(tmp_path, bad, "sim-r01-t03")["drained"]


ONE_PER_RUN = "[actions]\nmax_per_run = 1\n"


def test_one_breaker_from_config_for_burnin_sweep_and_node(tmp_path: Path) -> None:
    two = scenario(tmp_path, "two.yaml", [XID, {**XID, "node": "sim-r01-t04"}])
    proc = dcops(tmp_path, "burnin", "run", "--sim", two, "--apply", "--json", config=ONE_PER_RUN)
    assert proc.returncode == 5, proc.stderr
    assert "max_per_run 1" in as_json(proc)["circuit_breaker"]
    proc = dcops(tmp_path, "sweep", "--sim", two, "--apply", "--json", config=ONE_PER_RUN)
    assert proc.returncode == 5 and "max_per_run 1" in as_json(proc)["circuit_breaker"]
    proc = dcops(tmp_path, "node", "drain", "sim-r01-t[04-05]", "--reason", "x", "--sim", two,
                 "--apply", "--json", config=ONE_PER_RUN)  # fmt: skip
    assert proc.returncode == 5 and as_json(proc)[0]["status"] == "refused"
    assert not any(
        status(tmp_path, two, n)["drained"] for n in ("sim-r01-t03", "sim-r01-t04", "sim-r01-t05")
    )
    proc = dcops(tmp_path, "node", "drain", "sim-r01-t[04-05]", "--reason", "x", "--sim", two,
                 "--apply", "--json")  # fmt: skip
    assert proc.returncode == 0 and as_json(proc)[0]["status"] == "done"


APPROVE = '[actions]\nlevels = ["operator:drain=approve"]\napproval_ttl_s = 3600\n'


def test_approval_flow_on_the_simulator(tmp_path: Path) -> None:
    sc = scenario(tmp_path, "ok.yaml", [])
    proc = dcops(tmp_path, "node", "drain", "sim-r01-t07", "--reason", "fan noise", "--sim", sc,
                 "--apply", "--json", config=APPROVE)  # fmt: skip
    [queued] = as_json(proc)
    assert queued["status"] == "pending" and not status(tmp_path, sc, "sim-r01-t07")["drained"]
    [pending] = as_json(dcops(tmp_path, "actions", "list", "--pending", "--json"))
    assert (pending["id"], pending["kind"], pending["targets"]) == (
        queued["id"],
        "drain",
        "sim-r01-t07",
    )
    assert pending["evidence"] == [{"check": "operator", "message": "fan noise", "by": "alice"}]
    proc = dcops(tmp_path, "actions", "approve", queued["id"], "--json", config=APPROVE)
    assert proc.returncode == 0, proc.stderr
    assert as_json(proc)[0]["status"] == "done"
    assert status(tmp_path, sc, "sim-r01-t07")["reason"] == "fan noise"
    proc = dcops(tmp_path, "actions", "undo", queued["id"], "--json")
    assert proc.returncode == 0 and as_json(proc)[0]["status"] == "done"
    assert not status(tmp_path, sc, "sim-r01-t07")["drained"]
    shown = as_json(dcops(tmp_path, "actions", "show", queued["id"], "--json"))
    assert shown["status"] == "undone" and shown["decided_by"] == "alice"
    verify = dcops(tmp_path, "audit", "verify", "--json")
    assert verify.returncode == 0 and as_json(verify)["ok"]
    proc = dcops(tmp_path, "actions", "approve", queued["id"])
    assert proc.returncode == 2 and "not pending" in proc.stderr


KILLED = """
import os, signal, sys
from dcops.actions import ActionRequest, Actuator, Source
from dcops.node_actions.stored import StoredNodeActions
from dcops.store import AuditLog, Store

store = Store(sys.argv[1])
sched = StoredNodeActions(store, [f"sim-r01-t{t:02d}" for t in range(1, 19)])
real = sched.drain

def drain_then_killed(nodes, reason):
    real(nodes, reason)                       # the scheduler drained the node ...
    os.kill(os.getpid(), signal.SIGKILL)      # ... and the run is killed before the outcome

sched.drain = drain_then_killed
request = ActionRequest.make("drain", "sim-r01-t03", reason="dcops: xid: XID 79",
                             source=Source("sweep", "sw-killed"), requested_by="cron")
Actuator(AuditLog(store, actor="cron"), node_actions=sched).submit([request], apply=True)
"""


def test_a_killed_run_leaves_an_intent_the_next_run_reconciles(tmp_path: Path) -> None:
    sc = scenario(tmp_path, "ok.yaml", [])
    db = tmp_path / "d" / "state.db"
    db.parent.mkdir()
    proc = subprocess.run([sys.executable, "-c", KILLED, str(db)], check=False, timeout=60)
    assert proc.returncode == -9
    [intent] = as_json(dcops(tmp_path, "actions", "list", "--json"))
    assert intent["status"] == "started" and intent["targets"] == "sim-r01-t03"
    assert [r["outcome"] for r in as_json(dcops(tmp_path, "audit", "show", "--json"))] == [
        "started"
    ]
    # the next run that acts settles it against the scheduler
    dcops(tmp_path, "sweep", "--sim", sc, "--apply", "--json")
    shown = as_json(dcops(tmp_path, "actions", "show", intent["id"], "--json"))
    assert shown["status"] == "done" and "reconciled" in shown["message"]
    audit = as_json(dcops(tmp_path, "audit", "show", "--json"))
    assert [(r["action"], r["outcome"]) for r in audit][:2] == [
        ("drain", "started"),
        ("drain", "reconciled:done"),
    ]
    assert as_json(dcops(tmp_path, "audit", "verify", "--json"))["ok"]


def test_concurrent_burnins_do_not_double_drain(tmp_path: Path) -> None:
    demo = str(Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "demo.yaml")
    cfg = tmp_path / "config.toml"
    cfg.write_text("")
    argv = [sys.executable, "-m", "dcops", "--config", str(cfg), "--data-dir",
            str(tmp_path / "d"), "burnin", "run", "--sim", demo, "--apply", "--json",
            "--probe-timeout", "0.3"]  # fmt: skip
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    ended = sorted((p.wait(timeout=240), p.communicate()[1]) for p in procs)
    codes = [code for code, _ in ended]
    # the second is busy, or came after and found them drained
    assert codes in ([1, 4], [1, 1]), ended
    done = [a for a in as_json(dcops(tmp_path, "actions", "list", "--json"))
            if a["kind"] == "drain" and a["status"] == "done"]  # fmt: skip
    targets = [a["targets"] for a in done]
    assert len(targets) == len(set(targets)) == 6

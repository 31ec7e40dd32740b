"""Runbooks over real SSH (the private sshd rig): timeouts, rollback, approvals, kill -9, locks.

Each test runs ``dcops`` as a real process against node names the rig's
ssh_config maps to its sshd (commands run on this machine as the test user),
with a site runbook directory of small runbooks written for the test.
Approvals go through the actuator's queue (``dcops actions approve``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.rig.ssh import SshdRig

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(120)]

NODE = "node-rb-01"


def _setup(rig: SshdRig, tmp: Path) -> dict[str, str]:
    books = tmp / "books"
    books.mkdir()
    m = tmp / "marks"
    m.mkdir()
    (books / "hang.yaml").write_text(
        "name: t-hang\ndescription: a step that hangs\ntriggers: {}\nsteps:\n"
        "  - {name: hang, kind: command, argv: [sleep, '37.25'], timeout_s: 2}\n"
        "on_failure: {escalate: false}\n"
    )
    (books / "rollback.yaml").write_text(
        "name: t-rollback\ndescription: a failing step and its rollback\ntriggers: {}\nsteps:\n"
        f"  - {{name: first, kind: command, argv: [touch, '{m}/first']}}\n"
        "  - {name: broken, kind: command, argv: [ls, /nonexistent-dcops-dir]}\n"
        f"  - {{name: never, kind: command, argv: [touch, '{m}/never']}}\n"
        "on_failure:\n  escalate: true\n  rollback:\n"
        f"    - {{name: undo, kind: command, argv: [rm, '{m}/first']}}\n"
    )
    (books / "gated.yaml").write_text(
        "name: t-gated\ndescription: an approval gate\ntriggers: {}\nsteps:\n"
        "  - {name: gate, kind: approve, prompt: 'may I touch {node}?'}\n"
        f"  - {{name: touch, kind: command, argv: [touch, '{m}/gated']}}\n"
    )
    (books / "slow.yaml").write_text(
        "name: t-slow\ndescription: three steps, the middle one slow\ntriggers: {}\nsteps:\n"
        f"  - {{name: one, kind: command, argv: [touch, '{m}/one']}}\n"
        "  - {name: two, kind: command, argv: [sleep, '3'], idempotent: true}\n"
        f"  - {{name: three, kind: command, argv: [touch, '{m}/three']}}\n"
    )
    (books / "mgmt.yaml").write_text(
        "name: t-mgmt\ndescription: a step on the management host\ntriggers: {}\nsteps:\n"
        f"  - {{name: there, kind: command, host: management, argv: [touch, '{m}/mgmt']}}\n"
    )
    (books / "recert.yaml").write_text(
        "name: t-recert\ndescription: a burn-in over SSH\ntriggers: {}\nsteps:\n"
        "  - {name: recertify, kind: burnin, rounds: 1, duration_s: 0.2, timeout_s: 120}\n"
    )
    thresholds = tmp / "thresholds.yaml"
    thresholds.write_text(
        "version: 1\nprofiles:\n  cpu:\n    collectives:\n      sizes_bytes: [1048576]\n"
    )
    site = tmp / "site.yaml"
    site.write_text(
        f"site: rig\nsku: cpu\nracks:\n  - name: r-rb\n    nodes: {NODE},node-rb-02\n"
        "    domain: nvl-rb\n"
    )
    cfg = tmp / "config.toml"
    cfg.write_text(
        f'site = "{site}"\ndata_dir = "{tmp / "data"}"\n'
        f'[ssh]\nidentity_files = ["{rig.identity_file}"]\nknown_hosts = "{rig.known_hosts}"\n'
        f'ssh_config = "{rig.ssh_config}"\nconnect_timeout_s = 3\n'
        f'[slurm]\nnode_actions = "none"\n'
        f'[runbooks]\nlibrary_dirs = ["{books}"]\nmanagement_host = "node-mgmt-01"\n'
        f'burnin_python = "{sys.executable}"\nburnin_thresholds = "{thresholds}"\n'
    )
    return {"DCOPS_CONFIG": str(cfg), "marks": str(m), "data": str(tmp / "data")}


def _dcops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcops", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "DCOPS_CONFIG": env["DCOPS_CONFIG"]},
        check=False,
    )


def _json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def _approve(env: dict[str, str], action_id: str) -> str:
    (result,) = _json(_dcops(env, "--actor", "bob", "actions", "approve", action_id, "--json"))
    return str(result["status"])


def _remote_sleepers(tag: str) -> list[str]:
    out = subprocess.run(
        ["pgrep", "-f", f"sleep {tag}"], capture_output=True, text=True, check=False
    )
    return out.stdout.split()


def test_a_hanging_step_is_killed_at_its_timeout(sshd_rig: SshdRig, tmp_path: Path) -> None:
    env = _setup(sshd_rig, tmp_path)
    start = time.monotonic()
    proc = _dcops(env, "runbook", "run", "t-hang", "--nodes", NODE, "--apply", "--json")
    elapsed = time.monotonic() - start
    run = _json(proc)
    assert proc.returncode == 1 and run["status"] == "failed"
    assert "killed at its timeout (2s)" in run["steps"][0]["outcome"]
    assert elapsed < 20
    deadline = time.monotonic() + 10
    while _remote_sleepers("37.25") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _remote_sleepers("37.25") == []  # GNU timeout on the node killed it


def test_a_failing_step_runs_its_rollback_then_escalates(sshd_rig: SshdRig, tmp_path: Path) -> None:
    env = _setup(sshd_rig, tmp_path)
    marks = Path(env["marks"])
    run = _json(_dcops(env, "runbook", "run", "t-rollback", "--nodes", NODE, "--apply", "--json"))
    steps = {s["name"]: s for s in run["steps"]}
    assert run["status"] == "escalated"
    assert steps["first"]["status"] == "done" and steps["broken"]["status"] == "failed"
    assert steps["never"]["status"] == "pending" and not (marks / "never").exists()
    assert steps["undo"]["status"] == "done" and not (marks / "first").exists()  # rolled back
    (ticket,) = (Path(env["data"]) / "tickets").glob("*.json")
    assert json.loads(ticket.read_text())["node"] == NODE


def test_an_approval_gate_waits_then_runs_after_approval(sshd_rig: SshdRig, tmp_path: Path) -> None:
    env = _setup(sshd_rig, tmp_path)
    marks = Path(env["marks"])
    run = _json(_dcops(env, "runbook", "run", "t-gated", "--nodes", NODE, "--apply", "--json"))
    assert run["status"] == "waiting_approval" and not (marks / "gated").exists()
    # a second run on the same node is refused while this one holds it
    second = _dcops(env, "runbook", "run", "t-slow", "--nodes", NODE, "--apply")
    assert second.returncode == 4 and "one runbook per node" in second.stderr
    # resuming before the approval changes nothing
    again = _json(_dcops(env, "runbook", "resume", run["run_id"], "--json"))
    assert again["status"] == "waiting_approval" and not (marks / "gated").exists()
    assert _approve(env, run["steps"][0]["action_id"]) == "done"
    done = _json(_dcops(env, "runbook", "resume", run["run_id"], "--json"))
    assert done["status"] == "done" and (marks / "gated").exists()
    assert _dcops(env, "runbook", "resume", run["run_id"], "--json").returncode == 0  # no-op
    verify = _dcops(env, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    records = _json(_dcops(env, "audit", "show", "--json"))
    steps = [r for r in records if r["action"] == "runbook.step"]
    assert [r["evidence"]["step"] for r in steps] == ["gate", "gate", "touch"]
    assert steps[-1]["evidence"]["evidence"]["argv"] == ["touch", str(marks / "gated")]


def test_a_sigkilled_run_resumes_from_its_last_finished_step(
    sshd_rig: SshdRig, tmp_path: Path
) -> None:
    env = _setup(sshd_rig, tmp_path)
    marks = Path(env["marks"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "dcops", "runbook", "run", "t-slow", "--nodes", NODE, "--apply"],
        env={**os.environ, "DCOPS_CONFIG": env["DCOPS_CONFIG"]},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not (marks / "one").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.8)  # inside step two (sleep 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    (row,) = _json(_dcops(env, "runbook", "history", "--json"))
    run = _json(_dcops(env, "runbook", "status", row["run_id"], "--json"))
    states = {s["name"]: s["status"] for s in run["steps"]}
    assert run["status"] == "running"
    assert states == {"one": "done", "two": "running", "three": "pending"}
    assert not (marks / "three").exists()
    done = _json(_dcops(env, "runbook", "resume", row["run_id"], "--json"))
    assert done["status"] == "done" and (marks / "three").exists()
    attempts = {s["name"]: s["attempts"] for s in done["steps"]}
    assert attempts == {"one": 1, "two": 2, "three": 1}  # one ran once; two again (idempotent)


def test_a_management_host_step_runs_there(sshd_rig: SshdRig, tmp_path: Path) -> None:
    env = _setup(sshd_rig, tmp_path)
    run = _json(_dcops(env, "runbook", "run", "t-mgmt", "--nodes", NODE, "--apply", "--json"))
    assert run["status"] == "done" and (Path(env["marks"]) / "mgmt").exists()
    records = _json(_dcops(env, "audit", "show", "--action", "runbook.step", "--json"))
    assert records[-1]["evidence"]["evidence"]["host"] == "node-mgmt-01"


@pytest.mark.torch
def test_a_burnin_step_recertifies_the_node_over_ssh(sshd_rig: SshdRig, tmp_path: Path) -> None:
    env = _setup(sshd_rig, tmp_path)
    proc = _dcops(env, "runbook", "run", "t-recert", "--nodes", NODE, "--apply", "--json")
    run = _json(proc)
    assert run["status"] == "done", (run, proc.stderr[-2000:])
    outcome = run["steps"][0]["outcome"]
    assert outcome.startswith("burn-in pass on ssh (GEMM TFLOP/s per GPU: [")
    assert float(outcome.rsplit("[", 1)[1].rstrip("])")) > 0  # a GEMM really ran there

"""A runbook against the real local Slurm cluster, through the CLI.

A drain/resume runbook (a site runbook from ``[runbooks] library_dirs``): its
dry-run changes nothing; applied, it drains the node in Slurm, waits for an
approval (``dcops actions approve``), then ``dcops runbook resume`` returns the
node -- and never one an operator drained meanwhile (that step is refused,
audited, and the operator's drain stays). ``dcops audit verify`` passes.

Every node a test drains is resumed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dcops.node_actions import SlurmCliNodeActions
from tests.rig.slurm import SlurmCluster, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(300)]

NODES = ("sim-r01-t15", "sim-r01-t16")
RUNBOOK = """\
name: rig-drain-resume
description: drain the node, wait until Slurm shows it drained, ask, return it
version: 1
triggers: {checks: [rig]}
steps:
  - {name: drain, kind: action, action: drain, reason: "rig runbook test"}
  - {name: drained, kind: wait_for, condition: scheduler_state, state: drained,
     timeout_s: 30, interval_s: 1}
  - {name: approve-resume, kind: approve, prompt: "return {node} to service"}
  - {name: resume, kind: action, action: resume}
on_failure: {escalate: false}
"""


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster) -> Iterator[SlurmCliNodeActions]:
    if os.geteuid() != 0:
        pytest.skip("draining nodes needs root (the rig's SlurmUser)")
    adapter = SlurmCliNodeActions(slurm_conf=slurm_cluster.slurm_conf)
    try:
        yield adapter
    finally:
        left = [n for n, s in adapter.states(list(NODES)).items() if s.drain or s.down]
        if left:
            adapter.resume(left)
            assert wait_until(
                lambda: all(s.in_service for s in adapter.states(left).values()), timeout_s=20
            )


def dcops(tmp_path: Path, cluster: SlurmCluster, *args: str) -> subprocess.CompletedProcess[str]:
    books = tmp_path / "books"
    books.mkdir(exist_ok=True)
    (books / "rig-drain-resume.yaml").write_text(RUNBOOK)
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[slurm]\nconf = "{cluster.slurm_conf}"\n[runbooks]\nlibrary_dirs = ["{books}"]\n'
    )
    return subprocess.run(
        [sys.executable, "-m", "dcops", "--config", str(cfg), "--data-dir", str(tmp_path / "d"),
         "--actor", "alice", *args],
        capture_output=True, text=True, timeout=240, check=False, env=dict(os.environ),
    )  # fmt: skip


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def scontrol_node(cluster: SlurmCluster, node: str) -> str:
    return cluster.run(["scontrol", "show", "node", node]).stdout


def _open_run(tmp_path: Path, cluster: SlurmCluster, node: str) -> tuple[str, str]:
    plan = dcops(tmp_path, cluster, "runbook", "run", "rig-drain-resume", "--nodes", node, "--json")
    assert plan.returncode == 0, plan.stderr
    planned = as_json(plan)
    assert planned["status"] == "planned"
    assert [s["name"] for s in planned["steps"]][:4] == [
        "drain", "drained", "approve-resume", "resume"
    ]  # fmt: skip
    assert "State=IDLE " in scontrol_node(cluster, node) or "DRAIN" not in scontrol_node(
        cluster, node
    )  # the dry-run changed nothing
    proc = dcops(tmp_path, cluster, "runbook", "run", "rig-drain-resume", "--nodes", node,
                 "--apply", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = as_json(proc)
    run = run[0] if isinstance(run, list) else run
    assert run["status"] == "waiting_approval", run
    steps = {s["name"]: s for s in run["steps"]}
    assert steps["drain"]["status"] == "done" and steps["drained"]["status"] == "done"
    shown = scontrol_node(cluster, node)
    assert "DRAIN" in shown and f"runbook {run['run_id']}: rig runbook test" in shown
    return run["run_id"], steps["approve-resume"]["action_id"]


def test_dry_run_then_approved_apply_drains_and_resumes_in_slurm(
    tmp_path: Path, slurm_cluster: SlurmCluster, slurm: SlurmCliNodeActions
) -> None:
    node = NODES[0]
    run_id, action = _open_run(tmp_path, slurm_cluster, node)
    approved = dcops(tmp_path, slurm_cluster, "actions", "approve", action, "--json")
    assert approved.returncode == 0, approved.stderr
    assert as_json(approved)[0]["status"] == "done"
    resumed = dcops(tmp_path, slurm_cluster, "runbook", "resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert as_json(resumed)["status"] == "done"
    assert wait_until(lambda: slurm.states([node])[node].in_service, timeout_s=20)
    assert "DRAIN" not in scontrol_node(slurm_cluster, node).split("Reason=")[0]
    verify = dcops(tmp_path, slurm_cluster, "audit", "verify", "--json")
    assert verify.returncode == 0, verify.stderr
    log = as_json(dcops(tmp_path, slurm_cluster, "audit", "show", "--json"))
    records = log if isinstance(log, list) else log["records"]
    steps = [r for r in records if r["action"] == "runbook.step"]
    assert {(r["evidence"]["step"], r["outcome"]) for r in steps} >= {
        ("drain", "done"), ("drained", "done"), ("approve-resume", "done"), ("resume", "done")
    }  # fmt: skip
    assert {r["action"] for r in records} >= {"drain", "resume", "runbook_approval"}


def test_never_resumes_a_node_an_operator_drained_meanwhile(
    tmp_path: Path, slurm_cluster: SlurmCluster, slurm: SlurmCliNodeActions
) -> None:
    node = NODES[1]
    run_id, action = _open_run(tmp_path, slurm_cluster, node)
    slurm_cluster.run(
        ["scontrol", "update", f"nodename={node}", "state=drain", "reason=admin: PSU swap 991"]
    )  # the operator takes the node over while the run waits
    dcops(tmp_path, slurm_cluster, "actions", "approve", action, "--json")
    resumed = dcops(tmp_path, slurm_cluster, "runbook", "resume", run_id, "--json")
    run = as_json(resumed)
    assert run["status"] == "aborted", run
    refused = [s for s in run["steps"] if s["status"] == "refused"]
    assert refused and "someone else" in refused[0]["outcome"] + str(refused)
    state = slurm.states([node])[node]
    assert state.drain and state.reason == "admin: PSU swap 991"
    assert "Reason=admin: PSU swap 991" in scontrol_node(slurm_cluster, node)
    verify = dcops(tmp_path, slurm_cluster, "audit", "verify", "--json")
    assert verify.returncode == 0, verify.stderr

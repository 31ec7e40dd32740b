"""The actuator against the real local Slurm cluster, through the CLI.

- the approval flow: a drain at level ``approve`` is queued, ``dcops actions
  approve`` drains it in Slurm, ``dcops actions undo`` resumes it, ``dcops audit
  verify`` passes and shows the records; an expired approval does not run;
- a sweep never resumes a burn-in drain, and an operator's re-drain survives
  both a burn-in recheck and sweeps (the simulator stands in for the hardware,
  Slurm is real).

Every node a test drains is resumed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dcops.node_actions import SlurmCliNodeActions
from tests.rig.slurm import SlurmCluster, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(300)]

NODES = ("sim-r01-t09", "sim-r01-t13", "sim-r01-t14")
APPROVE = '[actions]\nlevels = ["operator:drain=approve"]\n'


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


def dcops(
    tmp_path: Path, cluster: SlurmCluster, *args: str, config: str = ""
) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(config + f'\n[slurm]\nconf = "{cluster.slurm_conf}"\n')
    return subprocess.run(
        [sys.executable, "-m", "dcops", "--config", str(cfg), "--data-dir", str(tmp_path / "d"),
         "--actor", "alice", *args],
        capture_output=True, text=True, timeout=240, check=False, env=dict(os.environ),
    )  # fmt: skip


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def test_approval_flow_drains_and_undoes_in_slurm(
    tmp_path: Path, slurm_cluster: SlurmCluster, slurm: SlurmCliNodeActions
) -> None:
    node = "sim-r01-t13"
    proc = dcops(tmp_path, slurm_cluster, "node", "drain", node, "--reason", "fan noise, ticket 88",
                 "--apply", "--json", config=APPROVE)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [queued] = as_json(proc)
    assert queued["status"] == "pending" and queued["level"] == "approve"
    assert not slurm.states([node])[node].drain  # queued, not done
    [pending] = as_json(dcops(tmp_path, slurm_cluster, "actions", "list", "--pending", "--json"))
    assert (pending["id"], pending["kind"], pending["targets"], pending["status"]) == (
        queued["id"], "drain", node, "pending"
    )  # fmt: skip

    proc = dcops(tmp_path, slurm_cluster, "actions", "approve", queued["id"], "--json")
    assert proc.returncode == 0, proc.stderr
    assert as_json(proc)[0]["status"] == "done"
    state = slurm.states([node])[node]
    assert state.drain and state.reason == "fan noise, ticket 88" and not state.by_dcops
    [row] = as_json(dcops(tmp_path, slurm_cluster, "node", "status", node, "--json"))
    assert (row["node"], row["drained"], row["reason"], row["by_dcops"]) == (
        node, True, "fan noise, ticket 88", False
    )  # fmt: skip

    proc = dcops(tmp_path, slurm_cluster, "actions", "undo", queued["id"], "--json")
    assert proc.returncode == 0, proc.stderr
    assert as_json(proc)[0]["status"] == "done"
    assert wait_until(lambda: slurm.states([node])[node].in_service, timeout_s=20)
    shown = as_json(dcops(tmp_path, slurm_cluster, "actions", "show", queued["id"], "--json"))
    assert shown["status"] == "undone" and shown["decided_by"] == "alice"

    verify = dcops(tmp_path, slurm_cluster, "audit", "verify", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    audit = as_json(dcops(tmp_path, slurm_cluster, "audit", "show", "--json"))
    assert [(r["action"], r["outcome"]) for r in audit] == [
        ("drain", "pending"),  # queued
        ("drain", "approved"),  # approved by alice
        ("drain", "started"),
        ("drain", "ok"),  # drained in Slurm
        ("resume", "started"),
        ("resume", "ok"),  # undone
    ]
    assert audit[-1]["evidence"]["undo_of"] == queued["id"]


def test_an_expired_approval_does_not_run(
    tmp_path: Path, slurm_cluster: SlurmCluster, slurm: SlurmCliNodeActions
) -> None:
    node = "sim-r01-t13"
    short = APPROVE + "approval_ttl_s = 1\n"
    proc = dcops(tmp_path, slurm_cluster, "node", "drain", node, "--reason", "later",
                 "--apply", "--json", config=short)  # fmt: skip
    [queued] = as_json(proc)
    time.sleep(1.5)
    proc = dcops(tmp_path, slurm_cluster, "actions", "approve", queued["id"], config=short)
    assert proc.returncode == 2 and "expired" in proc.stderr
    assert not slurm.states([node])[node].drain
    [row] = as_json(dcops(tmp_path, slurm_cluster, "actions", "list", "--json"))
    assert row["status"] == "expired"


def _scenario(tmp_path: Path, name: str, faults: list[dict[str, Any]]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"racks": 1, "seed": 4, "faults": faults}))
    return str(path)


def test_sweeps_never_resume_a_burnin_drain_and_operator_redrains_survive(
    tmp_path: Path, slurm_cluster: SlurmCluster, slurm: SlurmCliNodeActions
) -> None:
    sdc, slow = "sim-r01-t09", "sim-r01-t14"
    bad = _scenario(tmp_path, "bad.yaml", [{"node": sdc, "gpu": 0, "kind": "sdc"},
                                           {"node": slow, "gpu": 3, "kind": "ecc",
                                            "uncorrectable": 1}])  # fmt: skip
    clean = _scenario(tmp_path, "clean.yaml", [])
    use = ("--node-actions", "slurm-cli")
    proc = dcops(tmp_path, slurm_cluster, "burnin", "run", "--sim", bad, "--apply", "--json", *use)
    assert proc.returncode == 1, proc.stderr
    drained = sorted(a["nodes"] for a in as_json(proc)["actions"] if a["outcome"] == "ok")
    assert drained == [sdc, slow]
    # an operator takes one of them over for an RMA
    proc = dcops(tmp_path, slurm_cluster, "node", "drain", slow, "--reason", "RMA 4711",
                 "--apply", "--json", *use)  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    for _ in range(3):  # cron sweeps over clean hardware
        proc = dcops(tmp_path, slurm_cluster, "sweep", "--sim", clean, "--nodes",
                     "sim-r01-t[09-14]", "--apply", "--json", *use)  # fmt: skip
        report = as_json(proc)
    assert [a["node"] for a in report["actions"] if a["outcome"] == "ok"] == []
    [resume] = [a for a in report["actions"] if a["node"] == sdc]
    assert "only a burnin recheck that passes returns it, not a sweep" in resume["message"]
    states = slurm.states([sdc, slow])
    assert states[sdc].drain and states[sdc].reason.startswith("dcops: burnin")
    assert states[slow].drain and states[slow].reason == "RMA 4711"

    # the burn-in recheck returns its own drain, never the operator's
    proc = dcops(tmp_path, slurm_cluster, "burnin", "run", "--sim", clean, "--recheck",
                 "--apply", "--json", *use)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [(a["action"], a["nodes"], a["outcome"]) for a in as_json(proc)["actions"]] == [
        ("resume", sdc, "ok")
    ]
    assert wait_until(lambda: slurm.states([sdc])[sdc].in_service, timeout_s=20)
    assert slurm.states([slow])[slow].reason == "RMA 4711"
    assert as_json(dcops(tmp_path, slurm_cluster, "audit", "verify", "--json"))["ok"]


def test_sweep_partition_reads_the_configured_slurm(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    """``sweep --partition`` asks the Slurm of config ``[slurm] conf`` (through the wiring)."""
    clean = _scenario(tmp_path, "clean.yaml", [])
    proc = dcops(tmp_path, slurm_cluster, "sweep", "--sim", clean, "--partition", "batch",
                 "--no-lock", "--json")  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    swept = {n["node"] for n in as_json(proc)["nodes"]}
    in_site = {f"sim-r01-t{t:02d}" for t in range(1, 19)}
    assert swept and swept == set(slurm_cluster.nodes) & in_site
    proc = dcops(tmp_path, slurm_cluster, "sweep", "--sim", clean, "--partition", "no-such",
                 "--no-lock", "--json")  # fmt: skip
    assert proc.returncode == 2 and "no-such" in proc.stderr

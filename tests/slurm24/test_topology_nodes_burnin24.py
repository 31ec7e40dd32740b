"""capacity's topology check, node actions and burn-in allocations on Slurm 24.11 with
topology/block (one block per rack of 9 trays).

- ``dcops capacity topology --check`` reads the live blocks: clean against the rig's
  site, then two trays swapped between the racks' blocks are ``wrong-block``, a tray
  left out of every block is ``missing``, and a block shorter than the base BlockSize
  (which 24.11 refuses to load) leaves the live topology, and the check, clean (the
  test edits topology.conf, reconfigures, and puts it back, reconfiguring again,
  whatever happens);
- drain/resume through the node-actions adapter and through ``dcops node`` (the
  actuator), a draining node with a running job, an unknown node;
- ``dcops burnin run --launcher slurm`` across both racks: one allocation per NVLink
  domain, each inside its own rack's block, collectives per domain.

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

from dcops.errors import UnknownNodeError
from dcops.hostlist import compress, expand
from dcops.node_actions import SlurmCliNodeActions, dcops_reason
from tests.integration._burnin_remote import burnin_run, by_node
from tests.rig.slurm import SlurmCluster, wait_until

pytestmark = [pytest.mark.slurm24, pytest.mark.timeout(300)]


# --- capacity topology ------------------------------------------------------------------


def topology_check(cluster: SlurmCluster, db: Path) -> subprocess.CompletedProcess[str]:
    assert cluster.site is not None
    env = {**cluster.env, "DCOPS_SLURM_CONF": str(cluster.slurm_conf), "DCOPS_STATE_DB": str(db)}
    return subprocess.run(
        [sys.executable, "-m", "dcops", "capacity", "topology", "--format", "slurm-block-conf",
         "--check", "--site", str(cluster.site), "--json"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


def test_generated_block_conf_is_what_the_rig_loads(slurm24_cluster: SlurmCluster) -> None:
    """dcops's generator and the rig agree on blocks and BlockSizes for the same racks."""
    assert slurm24_cluster.site is not None
    proc = subprocess.run(
        [sys.executable, "-m", "dcops", "capacity", "topology", "--format", "slurm-block-conf",
         "--site", str(slurm24_cluster.site)],
        capture_output=True, text=True, timeout=60, check=False, env=slurm24_cluster.env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    def entries(text: str) -> list[str]:
        return sorted(line for line in text.splitlines() if line and not line.startswith("#"))

    loaded = (slurm24_cluster.slurm_conf.parent / "topology.conf").read_text()
    assert entries(proc.stdout) == entries(loaded)


def _reconfigure(cluster: SlurmCluster, topo: Path, text: str) -> subprocess.CompletedProcess[str]:
    topo.write_text(text)
    return cluster.run(["scontrol", "reconfigure"], timeout_s=90, check=False)


def _blocks(cluster: SlurmCluster, r01: list[str], r02: list[str], sizes: str) -> str:
    return (
        f"BlockName=nvl-r01 Nodes={compress(r01)}\n"
        f"BlockName=nvl-r02 Nodes={compress(r02)}\nBlockSizes={sizes}\n"
    )


def test_block_drift_is_caught_and_repaired(slurm24_cluster: SlurmCluster, tmp_path: Path) -> None:
    cluster = slurm24_cluster
    db = tmp_path / "state.db"

    def check() -> tuple[int, dict[str, Any]]:
        proc = topology_check(cluster, db)
        assert proc.stdout, proc.stderr
        return proc.returncode, json.loads(proc.stdout)

    code, data = check()
    assert code == 0, data
    assert (data["checked"], data["plugin"]) == ("block", "topology/block")
    assert data["version"] == "24.11"
    assert data["groups"] == 2 and data["drift"] == [] and data["skipped"] == []

    topo = cluster.slurm_conf.parent / "topology.conf"
    original = topo.read_text()
    r01, r02 = list(cluster.racks["r01"]), list(cluster.racks["r02"])
    try:
        # two trays swapped between the racks' blocks: both wrong-block
        swapped = _blocks(cluster, [*r01[:-1], r02[-1]], [*r02[:-1], r01[-1]], "9,18")
        assert _reconfigure(cluster, topo, swapped).returncode == 0
        code, data = check()
        assert code == 1
        assert sorted(data["drift"], key=lambda d: d["node"]) == [
            {"node": r01[-1], "kind": "wrong-block", "expected": "nvl-r01", "found": "nvl-r02"},
            {"node": r02[-1], "kind": "wrong-block", "expected": "nvl-r02", "found": "nvl-r01"},
        ]
        # a tray left out of every block (BlockSizes lowered so that Slurm loads it): missing
        dropped = _blocks(cluster, r01[:-1], r02, "8,16")
        assert _reconfigure(cluster, topo, dropped).returncode == 0
        code, data = check()
        assert code == 1
        assert data["drift"] == [
            {"node": r01[-1], "kind": "missing", "expected": "nvl-r01", "found": None}
        ]
        # Slurm refuses a block shorter than the base BlockSize: the reconfigure fails, the
        # loaded topology stays, and the check (which reads the live one) says so
        assert _reconfigure(cluster, topo, original).returncode == 0
        short = _blocks(cluster, r01[:-1], r02, "9,18")
        refused = _reconfigure(cluster, topo, short)
        assert refused.returncode != 0, refused.stdout
        code, data = check()
        assert code == 0 and data["drift"] == [], data
    finally:
        topo.write_text(original)
        cluster.run(["scontrol", "reconfigure"], timeout_s=90)
    code, data = check()
    assert code == 0 and data["drift"] == []
    assert wait_until(
        lambda: cluster.run(["sinfo", "-h", "-o", "%t"]).stdout.strip() == "idle", timeout_s=60
    )


# --- node actions -----------------------------------------------------------------------


@pytest.fixture
def actions(slurm24_cluster: SlurmCluster) -> Iterator[SlurmCliNodeActions]:
    if os.geteuid() != 0:
        pytest.skip("draining nodes needs root (the rig's SlurmUser)")
    adapter = SlurmCliNodeActions(slurm_conf=slurm24_cluster.slurm_conf)
    before = adapter.states()
    yield adapter
    after = adapter.states()
    left = [n for n, s in after.items() if (s.drain or s.down) and not before[n].drain]
    if left:
        adapter.resume(left)
    assert wait_until(
        lambda: all(s.in_service for s in adapter.states(left).values()), timeout_s=30
    )


def test_drain_and_resume_across_racks(actions: SlurmCliNodeActions) -> None:
    nodes = ["sim-r01-t04", "sim-r02-t04"]
    reason = dcops_reason("burn-in all_reduce 612 GB/s < 760 GB/s (24.11 test)")
    t0 = time.time()
    assert actions.drain("sim-r01-t04,sim-r02-t04", reason) == nodes
    states = actions.states(nodes)
    for node in nodes:
        state = states[node]
        assert state.drain and state.drained and not state.in_service, state
        assert state.reason == reason and state.by_dcops and state.reason_user == "root"
        assert state.reason_time_s is not None and state.reason_time_s >= int(t0) - 1
    assert actions.resume(nodes) == nodes
    assert wait_until(lambda: all(s.in_service for s in actions.states(nodes).values()))
    assert all(s.reason == "" for s in actions.states(nodes).values())
    assert actions.resume(nodes) == []  # in service: left alone


def test_unknown_node_changes_nothing(actions: SlurmCliNodeActions) -> None:
    with pytest.raises(UnknownNodeError, match="sim-r03-t01"):
        actions.drain(["sim-r02-t05", "sim-r03-t01"], "dcops: must not happen")
    assert actions.states("sim-r02-t05")["sim-r02-t05"].in_service


def test_drain_with_a_running_job_is_draining_then_drained(
    slurm24_cluster: SlurmCluster, actions: SlurmCliNodeActions
) -> None:
    node = "sim-r02-t06"
    job = (
        slurm24_cluster.run(
            ["sbatch", "--parsable", "-w", node, "--gres=gpu:4", "-t", "2", "-o", "/dev/null",
             "--wrap", "sleep 60"],
            user=slurm24_cluster.test_user,
        )
        .stdout.strip()
        .split(";")[0]
    )  # fmt: skip
    try:
        assert wait_until(lambda: actions.states(node)[node].base in ("ALLOCATED", "MIXED"))
        actions.drain(node, "dcops: xid 79 (24.11 test)")
        state = actions.states(node)[node]
        assert state.draining and not state.drained, state
    finally:
        slurm24_cluster.run(["scancel", job])
    assert wait_until(lambda: actions.states(node)[node].drained, timeout_s=30)
    actions.resume(node)
    assert wait_until(lambda: actions.states(node)[node].in_service, timeout_s=30)


def _dcops(cluster: SlurmCluster, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[slurm]\nconf = "{cluster.slurm_conf}"\n')
    return subprocess.run(
        [sys.executable, "-m", "dcops", "--config", str(cfg), "--data-dir", str(tmp_path / "d"),
         "--actor", "alice", *args],
        capture_output=True, text=True, timeout=120, check=False, env=cluster.env,
    )  # fmt: skip


def test_dcops_node_drain_and_resume_apply_through_the_actuator(
    slurm24_cluster: SlurmCluster, actions: SlurmCliNodeActions, tmp_path: Path
) -> None:
    node = "sim-r01-t08"
    dry = _dcops(slurm24_cluster, tmp_path, "node", "drain", node, "--reason", "PSU swap 4711")
    assert dry.returncode == 0, dry.stderr
    assert actions.states(node)[node].in_service  # without --apply nothing changes
    done = _dcops(
        slurm24_cluster, tmp_path, "node", "drain", node, "--reason", "PSU swap 4711", "--apply"
    )
    assert done.returncode == 0, done.stderr
    state = actions.states(node)[node]
    # an operator's drain: the reason is the operator's own (not dcops's automatic prefix)
    assert state.drain and state.reason == "PSU swap 4711" and not state.by_dcops
    status = _dcops(slurm24_cluster, tmp_path, "node", "status", node, "--json")
    assert status.returncode == 0, status.stderr
    assert "DRAIN" in status.stdout
    back = _dcops(slurm24_cluster, tmp_path, "node", "resume", node, "--apply")
    assert back.returncode == 0, back.stderr
    assert wait_until(lambda: actions.states(node)[node].in_service, timeout_s=30)
    verify = _dcops(slurm24_cluster, tmp_path, "audit", "verify")
    assert verify.returncode == 0, verify.stderr


# --- burn-in ----------------------------------------------------------------------------


def _cpu_site(cluster: SlurmCluster, tmp_path: Path) -> Path:
    """The rig's racks as a site of CPU "GPUs" (one per node), one NVLink domain per rack."""
    path = tmp_path / "site.yaml"
    racks = [
        {"name": rack, "nodes": compress(list(members)), "domain": f"nvl-{rack}"}
        for rack, members in cluster.racks.items()
    ]
    path.write_text(yaml.safe_dump({"site": "rig24", "sku": "cpu", "racks": racks}))
    return path


def _sacct_burnin_jobs(cluster: SlurmCluster, since: str) -> list[dict[str, Any]]:
    out = cluster.run(
        ["sacct", "-X", "-n", "-P", "--name=dcops-burnin", "-S", since,
         "-o", "JobID,NodeList,State"]
    ).stdout  # fmt: skip
    return [
        {"job": f[0], "nodes": expand(f[1]), "state": f[2]}
        for f in (line.split("|") for line in out.splitlines() if line)
    ]


def test_burnin_allocates_each_nvlink_domain_inside_its_block(
    slurm24_cluster: SlurmCluster, tmp_path: Path
) -> None:
    cluster = slurm24_cluster
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 2))
    nodes = "sim-r01-t[01-02],sim-r02-t[01-02]"
    proc, report = burnin_run(
        tmp_path, "--nodes", nodes, "--launcher", "slurm",
        "--site", str(_cpu_site(cluster, tmp_path)),
        env={"DCOPS_SLURM_CONF": str(cluster.slurm_conf)}, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report["status"] == "pass" and report["params"]["backend"] == "slurm"
    assert sorted(by_node(report)) == expand(nodes)
    assert all(n["status"] == "pass" for n in report["nodes"])
    # collectives ran per domain: one group per rack, each with its busbw
    assert len(report["collectives"]) == 2, report["collectives"]
    assert all(v > 0 for v in report["collectives"].values())

    def allocations() -> list[dict[str, Any]]:
        return [j for j in _sacct_burnin_jobs(cluster, since) if j["state"] != "RUNNING"]

    assert wait_until(lambda: len(allocations()) == 2, timeout_s=30), _sacct_burnin_jobs(
        cluster, since
    )
    placed = sorted({cluster.rack_of(n) for n in job["nodes"]} for job in allocations())
    assert placed == [{"r01"}, {"r02"}]  # each allocation inside one rack's block
    assert sorted(n for job in allocations() for n in job["nodes"]) == expand(nodes)
    squeue = cluster.run(["squeue", "-h", "--name=dcops-burnin", "-o", "%i"]).stdout
    assert squeue.strip() == ""

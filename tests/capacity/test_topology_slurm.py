"""Topology drift against the real Slurm 22.05 rig: a node removed from its switch is caught.

Slurm 22.05 has topology/tree only (topology/block is 23.11+): the rig's leaf
switch per rack stands for the block, and the check says that blocks were
skipped. The test edits the rig's topology.conf, reconfigures, checks, and puts
the file back (reconfiguring again) whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rig.slurm import SlurmCluster

pytestmark = pytest.mark.slurm


def check(cluster: SlurmCluster, site: Path, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DCOPS_SLURM_CONF": str(cluster.slurm_conf), "DCOPS_STATE_DB": str(db)}
    return subprocess.run(
        [sys.executable, "-m", "dcops", "capacity", "topology", "--format", "slurm-block-conf",
         "--check", "--site", str(site), "--json"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


def reconfigure(cluster: SlurmCluster) -> None:
    cluster.run(["scontrol", "reconfigure"], timeout_s=60)


def test_node_removed_from_its_switch_is_drift(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(f"site: rig\nracks:\n  - name: r01\n    nodes: {slurm_cluster.nodes_expr}\n")
    db = tmp_path / "state.db"
    clean = check(slurm_cluster, site, db)
    assert clean.returncode == 0, clean.stderr
    data = json.loads(clean.stdout)
    assert data["checked"] == "tree" and data["plugin"] == "topology/tree"
    assert data["drift"] == []
    if tuple(int(x) for x in data["version"].split(".")) < (23, 11):
        assert any("has no topology/block" in s for s in data["skipped"])

    topo = slurm_cluster.slurm_conf.parent / "topology.conf"
    original = topo.read_text()
    victim = slurm_cluster.nodes[-1]
    leaf = next(
        line
        for line in original.splitlines()
        if line.startswith("SwitchName=") and "Nodes=" in line
    )
    members = re.search(r"Nodes=(\S+)", leaf)
    assert members is not None
    from dcops.hostlist import compress, expand

    kept = [n for n in expand(members.group(1)) if n != victim]
    try:
        topo.write_text(original.replace(leaf, leaf.replace(members.group(1), compress(kept))))
        reconfigure(slurm_cluster)
        drifted = check(slurm_cluster, site, db)
        assert drifted.returncode == 1, drifted.stderr
        assert json.loads(drifted.stdout)["drift"] == [
            {"node": victim, "kind": "missing", "expected": "r01", "found": None}
        ]
    finally:
        topo.write_text(original)
        reconfigure(slurm_cluster)
    after = check(slurm_cluster, site, db)
    assert after.returncode == 0 and json.loads(after.stdout)["drift"] == []

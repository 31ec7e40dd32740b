"""A runbook against the real local Slurm cluster: it drains and resumes a node, and never
resumes one an operator drained meanwhile.

The simulator stands in for the nodes' hardware (its node names are the cluster's);
drains and resumes go through the actuator to real ``scontrol``. Every node a test
drains is resumed at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcops.node_actions import SlurmCliNodeActions
from runbooks.engine import drive, start
from runbooks.library import load_library
from tests.rig.slurm import SlurmCluster, wait_until
from tests.runbooks._sim import sim_rig

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(120)]

NODE, OTHER = "sim-r01-t03", "sim-r01-t05"


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster) -> Iterator[SlurmCliNodeActions]:
    if os.geteuid() != 0:
        pytest.skip("draining nodes needs root (the rig's SlurmUser)")
    adapter = SlurmCliNodeActions(slurm_conf=slurm_cluster.slurm_conf)
    try:
        yield adapter
    finally:
        states = adapter.states([NODE, OTHER])
        left = [n for n, s in states.items() if s.drain or s.down]
        if left:
            adapter.resume(left)
            wait_until(
                lambda: all(s.in_service for s in adapter.states(left).values()), timeout_s=20
            )


def _scenario(tmp: Path) -> Path:
    path = tmp / "two-xid79.yaml"
    path.write_text(
        "racks: 1\nseed: 4\nfaults:\n"
        f"  - {{node: {NODE}, gpu: 1, kind: xid, code: 79}}\n"
        f"  - {{node: {OTHER}, gpu: 0, kind: xid, code: 79}}\n"
    )
    return path


def test_runbook_drains_reboots_and_resumes_in_slurm(
    slurm: SlurmCliNodeActions, tmp_path: Path
) -> None:
    rig = sim_rig(
        tmp_path, levels=("runbook:reboot=act",), scenario=_scenario(tmp_path), sched=slurm
    )
    run = start(rig.ctx, load_library()["xid-79-reboot"], NODE)
    assert run["status"] == "done", run["message"]
    drain = next(s for s in run["steps"] if s["name"] == "drain")
    assert drain["status"] == "done"
    records = rig.ctx.audit.records(action="drain")
    assert records[-1].evidence["call"][:3] == ["env", f"SLURM_CONF={slurm.slurm_conf}", "scontrol"]
    state = slurm.states([NODE])[NODE]
    assert state.in_service and not state.reason


def test_runbook_never_resumes_a_node_an_operator_drained_meanwhile(
    slurm: SlurmCliNodeActions, tmp_path: Path
) -> None:
    rig = sim_rig(tmp_path, scenario=_scenario(tmp_path), sched=slurm)
    run = start(rig.ctx, load_library()["xid-79-reboot"], OTHER)
    assert run["status"] == "waiting_approval"  # the reboot waits; the node is drained by dcops
    assert slurm.states([OTHER])[OTHER].reason.startswith("dcops: runbook")
    slurm.drain([OTHER], "admin: reseat GPU 0, ticket 812")  # an operator takes it over
    reboot = next(s for s in run["steps"] if s["status"] == "waiting_approval")
    rig.approve(reboot["action_id"])
    done = drive(rig.ctx, run["run_id"])
    resume = next(s for s in done["steps"] if s["name"] == "resume")
    assert done["status"] == "done"
    assert resume["status"] == "skipped" and "someone else" in resume["outcome"]
    state = slurm.states([OTHER])[OTHER]
    assert state.drain and state.reason == "admin: reseat GPU 0, ticket 812"

"""The sweep's drains and resumes against the real local Slurm cluster.

The simulator stands in for the nodes' hardware (its node names are the
cluster's), Slurm is real: an XID 79 drains with a ``dcops:`` reason, two clean
sweeps resume it, and an operator's drain is never resumed. Every node a test
drains is resumed at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcops.node_actions import SlurmCliNodeActions
from dcops.sim import Fault, SimFleet
from dcops.slurm.commands import SlurmCommands
from dcops.store import AuditLog, Store
from health.base import get_check
from health.sweep import SweepOptions, SweepPorts, run_sweep
from health.sweep_targets import partition_nodes
from tests.health import _sweep_checks  # noqa: F401  (registers the t-* checks)
from tests.rig.slurm import SlurmCluster, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(120)]

FAULTY, ADMIN = "sim-r01-t16", "sim-r01-t17"


@pytest.fixture
def actions(slurm_cluster: SlurmCluster) -> Iterator[SlurmCliNodeActions]:
    if os.geteuid() != 0:
        pytest.skip("draining nodes needs root (the rig's SlurmUser)")
    adapter = SlurmCliNodeActions(slurm_conf=slurm_cluster.slurm_conf)
    try:
        yield adapter
    finally:
        states = adapter.states([FAULTY, ADMIN])
        left = [n for n, s in states.items() if s.drain or s.down]
        if left:
            adapter.resume(left)
            wait_until(
                lambda: all(s.in_service for s in adapter.states(left).values()), timeout_s=20
            )


def test_xid79_drains_then_resumes_and_admin_drain_is_left_alone(
    actions: SlurmCliNodeActions, tmp_path: Path
) -> None:
    actions.drain([ADMIN], "admin: RMA ticket 4711")
    with SimFleet.from_dict({"racks": 1, "seed": 5}) as fleet, Store(tmp_path / "s.db") as store:
        fleet.inject(Fault(kind="xid", node=FAULTY, gpus=(2,), code=79))
        fleet.inject(Fault(kind="xid", node=ADMIN, gpus=(0,), code=79))
        ports = SweepPorts(
            runner=fleet.runner,
            site=fleet.site,
            checks=[get_check("t-smi")],
            store=store,
            audit=AuditLog(store, actor="test"),
            actions=actions,
        )
        nodes = [FAULTY, ADMIN]
        options = SweepOptions(apply=True, timeout_s=5, mode="sim")

        first = run_sweep(ports, nodes, options)
        assert [(a["action"], a["node"], a["outcome"]) for a in first["actions"]] == [
            ("drain", FAULTY, "ok")
        ]
        state = actions.states([FAULTY])[FAULTY]
        assert state.drain and state.reason == "dcops: t-smi: GPU fell off the bus (XID 79)"
        assert actions.states([ADMIN])[ADMIN].reason == "admin: RMA ticket 4711"

        fleet.repair(FAULTY)
        fleet.repair(ADMIN)
        second = run_sweep(ports, nodes, options)
        assert second["actions"] == []
        kinds = {(c["node"], c["kind"]) for c in second["consistency"]}
        assert kinds == {
            (FAULTY, "dcops-drained-but-healthy"),
            (ADMIN, "admin-drained-but-healthy"),
        }
        third = run_sweep(ports, nodes, options)
        assert [(a["action"], a["node"], a["outcome"]) for a in third["actions"]] == [
            ("resume", FAULTY, "ok")
        ]
        assert wait_until(lambda: actions.states([FAULTY])[FAULTY].in_service, timeout_s=20)
        admin = actions.states([ADMIN])[ADMIN]
        assert admin.drain and admin.reason == "admin: RMA ticket 4711"
        acted = [r for r in AuditLog(store).records() if r.action in ("drain", "resume")]
        assert [(r.action, r.outcome) for r in acted] == [
            ("drain", "started"),
            ("drain", "ok"),
            ("resume", "started"),
            ("resume", "ok"),
        ]


def test_partition_nodes_from_sinfo(slurm_cluster: SlurmCluster) -> None:
    nodes = partition_nodes("batch", SlurmCommands(slurm_conf=str(slurm_cluster.slurm_conf)))
    assert nodes == list(slurm_cluster.nodes)

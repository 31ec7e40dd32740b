"""SlurmCliNodeActions against the real local cluster: drain, resume, states, errors."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from dcops.errors import InputError, UnknownNodeError
from dcops.node_actions import NodeActions, SlurmCliNodeActions, create, dcops_reason
from dcops.remote.local import LocalRunner
from tests.rig.slurm import SlurmCluster, wait_until

pytestmark = pytest.mark.slurm


@pytest.fixture
def actions(slurm_cluster: SlurmCluster) -> Iterator[SlurmCliNodeActions]:
    """The adapter; every node a test drains is resumed afterwards, whatever happened."""
    if os.geteuid() != 0:
        pytest.skip("draining nodes needs root (the rig's SlurmUser)")
    adapter = SlurmCliNodeActions(slurm_conf=slurm_cluster.slurm_conf)
    before = adapter.states()
    yield adapter
    after = adapter.states()
    left = [n for n, s in after.items() if s.drain and not before[n].drain]
    if left:
        adapter.resume(left)
    wait_until(lambda: all(s.in_service for s in adapter.states(left).values()), timeout_s=20)


def _in_service(adapter: NodeActions, node: str) -> bool:
    return adapter.states([node])[node].in_service


def test_is_a_node_actions_backend(slurm_cluster: SlurmCluster) -> None:
    adapter = create("slurm-cli", slurm_conf=slurm_cluster.slurm_conf)
    assert isinstance(adapter, NodeActions)
    states = adapter.states()
    assert sorted(states) == sorted(slurm_cluster.nodes)
    assert all(s.in_service and s.base == "IDLE" for s in states.values())


def test_drain_sets_drain_with_our_reason_and_resume_returns_it(
    actions: SlurmCliNodeActions,
) -> None:
    node = "sim-r01-t07"
    reason = dcops_reason("burn-in all_reduce 612 GB/s < 760 GB/s (test)")
    t0 = time.time()
    assert actions.drain(node, reason) == [node]

    state = actions.states(node)[node]
    assert state.drain and state.drained and not state.in_service
    assert state.states[:2] == ("IDLE", "DRAIN")
    assert state.reason == reason
    assert state.by_dcops
    assert state.reason_user == "root"
    assert state.reason_time_s is not None and state.reason_time_s >= int(t0) - 1

    assert actions.resume(node) == [node]
    assert wait_until(lambda: _in_service(actions, node), timeout_s=20)
    state = actions.states(node)[node]
    assert state.reason == "" and not state.drain


def test_drain_a_hostlist(actions: SlurmCliNodeActions) -> None:
    nodes = ["sim-r01-t10", "sim-r01-t11", "sim-r01-t12"]
    assert actions.drain("sim-r01-t[10-12]", "dcops: rack test") == nodes
    assert all(s.drain for s in actions.states(nodes).values())
    assert actions.resume(nodes) == nodes
    assert wait_until(lambda: all(_in_service(actions, n) for n in nodes), timeout_s=20)


def test_resume_leaves_nodes_in_service_alone(actions: SlurmCliNodeActions) -> None:
    assert actions.resume(["sim-r01-t13"]) == []


def test_unknown_node_changes_nothing(actions: SlurmCliNodeActions) -> None:
    with pytest.raises(UnknownNodeError, match="no-such-node"):
        actions.drain(["sim-r01-t14", "no-such-node"], "dcops: must not happen")
    assert actions.states("sim-r01-t14")["sim-r01-t14"].in_service
    with pytest.raises(UnknownNodeError):
        actions.states("sim-r99-t01")
    with pytest.raises(UnknownNodeError):
        actions.resume("sim-r99-t[01-02]")


def test_bad_reason_is_an_input_error(actions: SlurmCliNodeActions) -> None:
    with pytest.raises(InputError):
        actions.drain("sim-r01-t15", "   ")
    with pytest.raises(InputError):
        actions.drain("sim-r01-t15", "dcops: two\nlines")
    assert actions.states("sim-r01-t15")["sim-r01-t15"].in_service


def test_drain_with_a_running_job_is_draining_then_drained(
    slurm_cluster: SlurmCluster, actions: SlurmCliNodeActions
) -> None:
    node = "sim-r01-t05"
    job_id = (
        slurm_cluster.run(
            [
                "sbatch",
                "--parsable",
                "-w",
                node,
                "--gres=gpu:4",
                "-t",
                "2",
                "-o",
                "/dev/null",
                "--wrap",
                "sleep 60",
            ],
            user=slurm_cluster.test_user,
        )
        .stdout.strip()
        .split(";")[0]
    )
    try:
        assert wait_until(lambda: actions.states(node)[node].base in ("ALLOCATED", "MIXED"))
        actions.drain(node, "dcops: xid 79 (test)")
        state = actions.states(node)[node]
        assert state.draining and not state.drained
    finally:
        slurm_cluster.run(["scancel", job_id])
    assert wait_until(lambda: actions.states(node)[node].drained, timeout_s=30)
    actions.resume(node)
    assert wait_until(lambda: _in_service(actions, node), timeout_s=20)


def test_through_a_runner_with_slurm_conf_in_argv(
    slurm_cluster: SlurmCluster, actions: SlurmCliNodeActions
) -> None:
    """The head-node path: argv through a RemoteRunner, SLURM_CONF passed by `env`."""
    adapter = SlurmCliNodeActions(
        slurm_conf=slurm_cluster.slurm_conf, runner=LocalRunner(), host="head-node"
    )
    node = "sim-r01-t16"
    try:
        adapter.drain(node, "dcops: via runner")
        assert adapter.states(node)[node].reason == "dcops: via runner"
    finally:
        adapter.resume(node)
    assert wait_until(lambda: _in_service(adapter, node), timeout_s=20)

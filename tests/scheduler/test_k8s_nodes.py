"""Kubernetes node actions (cordon + dcops taint) through the real client and the fake server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dcops.errors import InputError, SchedulerError, UnknownNodeError
from dcops.node_actions.base import NodeActions
from dcops.node_actions.kubernetes import (
    CORDONED_ANNOTATION,
    REASON_ANNOTATION,
    TAINT_KEY,
    KubernetesNodeActions,
    node_state,
    taint_value,
)
from tests.scheduler.k8s_fake_server import FakeKubeServer
from tests.scheduler.k8s_support import running_server

pytestmark = pytest.mark.timeout(30)
ADMIN_TAINT = {"key": "ops.example.com/maintenance", "value": "psu", "effect": "NoSchedule"}
GPU_TAINT = {"key": "nvidia.com/gpu", "effect": "NoSchedule"}


def _node(
    name: str, *, ready: str = "True", unschedulable: bool = False, taints: list[Any] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"taints": list(taints or [])}
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.clique": "r01"}},
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady"}]},
    }


@pytest.fixture
def server() -> Iterator[FakeKubeServer]:
    # every node patch dcops sends must leave a Node valid against the core schema
    with running_server(validate_every_write=True) as srv:
        srv.put(_node("gb200-r01-t01", taints=[GPU_TAINT]))
        srv.put(_node("gb200-r01-t02", taints=[GPU_TAINT, ADMIN_TAINT]))
        srv.put(_node("gb200-r01-t03", unschedulable=True, taints=[ADMIN_TAINT]))
        srv.put(_node("gb200-r01-t04", ready="Unknown"))
        yield srv


@pytest.fixture
def actions(server: FakeKubeServer) -> KubernetesNodeActions:
    return KubernetesNodeActions(host=server.url, clock=lambda: 1_700_000_000.0)


def _spec(server: FakeKubeServer, name: str) -> dict[str, Any]:
    node = server.get("v1", "Node", "", name)
    assert node is not None
    return node


def test_is_a_node_actions_backend(actions: KubernetesNodeActions) -> None:
    assert isinstance(actions, NodeActions)
    from dcops.node_actions.base import NODE_ACTIONS

    assert NODE_ACTIONS.get("kubernetes") is KubernetesNodeActions


def test_cordon_uncordon_round_trip_leaves_admin_taints(
    actions: KubernetesNodeActions, server: FakeKubeServer
) -> None:
    done = actions.drain("gb200-r01-t[01-02]", "nvlink-errors gpu2 crc 41/s")
    assert done == ["gb200-r01-t01", "gb200-r01-t02"]
    node = _spec(server, "gb200-r01-t02")
    assert node["spec"]["unschedulable"] is True
    assert {"key": TAINT_KEY, "value": "nvlink-errors", "effect": "NoSchedule"} in node["spec"][
        "taints"
    ]
    assert ADMIN_TAINT in node["spec"]["taints"] and GPU_TAINT in node["spec"]["taints"]
    assert (
        node["metadata"]["annotations"][REASON_ANNOTATION] == "dcops: nvlink-errors gpu2 crc 41/s"
    )
    state = actions.states("gb200-r01-t02")["gb200-r01-t02"]
    assert state.drain and state.by_dcops and state.reason_time_s == 1_700_000_000.0
    assert actions.resume("gb200-r01-t[01-02]") == ["gb200-r01-t01", "gb200-r01-t02"]
    node = _spec(server, "gb200-r01-t02")
    assert "unschedulable" not in node["spec"]
    assert node["spec"]["taints"] == [GPU_TAINT, ADMIN_TAINT]
    assert not (node["metadata"].get("annotations") or {})
    assert actions.states("gb200-r01-t02")["gb200-r01-t02"].in_service
    patches = [r for r in server.requests if r.method == "PATCH"]
    assert all(r.content_type.startswith("application/merge-patch+json") for r in patches)
    assert all(r.body["metadata"]["resourceVersion"] for r in patches)


def test_an_invalid_node_patch_is_refused(actions: KubernetesNodeActions) -> None:
    # the check on the fixture's server is live: a patch that breaks a Node is a 400
    with pytest.raises(SchedulerError, match="400"):
        actions.nodes_api.patch("gb200-r01-t01", {"spec": {"unschedulable": "yes"}})
    with pytest.raises(SchedulerError, match="400"):
        actions.nodes_api.patch("gb200-r01-t01", {"spec": {"taints": [{"key": "k"}]}})


def test_operator_cordon_is_left_alone(
    actions: KubernetesNodeActions, server: FakeKubeServer
) -> None:
    assert actions.resume("gb200-r01-t03") == []  # not ours: nothing happens
    assert _spec(server, "gb200-r01-t03")["spec"]["unschedulable"] is True
    actions.drain("gb200-r01-t03", "dcops: gemm-sdc checksum mismatch")
    assert _spec(server, "gb200-r01-t03")["metadata"]["annotations"][CORDONED_ANNOTATION] == "false"
    actions.drain("gb200-r01-t03", "dcops: gemm-sdc again")  # re-drain keeps who cordoned
    assert _spec(server, "gb200-r01-t03")["metadata"]["annotations"][CORDONED_ANNOTATION] == "false"
    assert actions.resume("gb200-r01-t03") == ["gb200-r01-t03"]
    node = _spec(server, "gb200-r01-t03")
    assert node["spec"]["unschedulable"] is True  # the operator's cordon stays
    assert node["spec"]["taints"] == [ADMIN_TAINT]
    state = actions.states("gb200-r01-t03")["gb200-r01-t03"]
    assert state.drain and not state.by_dcops


def test_unknown_node_changes_nothing(
    actions: KubernetesNodeActions, server: FakeKubeServer
) -> None:
    with pytest.raises(UnknownNodeError, match="gb200-r09-t01"):
        actions.drain(["gb200-r01-t01", "gb200-r09-t01"], "dcops: x")
    assert not [r for r in server.requests if r.method == "PATCH"]
    with pytest.raises(InputError):
        actions.drain("gb200-r01-t01", "two\nlines")


def test_conflict_is_retried(actions: KubernetesNodeActions, server: FakeKubeServer) -> None:
    real_get = actions.nodes_api.get
    stale = real_get("gb200-r01-t01")
    server.put(_node("gb200-r01-t01", taints=[GPU_TAINT, ADMIN_TAINT]))  # someone else wrote
    calls = iter([stale])
    actions.nodes_api.get = lambda name: next(calls, None) or real_get(name)  # type: ignore[method-assign]
    actions.drain("gb200-r01-t01", "dcops: xid-79")
    node = _spec(server, "gb200-r01-t01")
    assert ADMIN_TAINT in node["spec"]["taints"]
    assert [r.method for r in server.requests].count("PATCH") == 2


def test_states(actions: KubernetesNodeActions, server: FakeKubeServer) -> None:
    server.put(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "tenant-acme"},
        }
    )
    server.put(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "w", "namespace": "tenant-acme"},
            "spec": {"nodeName": "gb200-r01-t01"},
            "status": {"phase": "Running"},
        }
    )
    states = actions.states()
    assert states["gb200-r01-t01"].states == ("MIXED",)
    assert states["gb200-r01-t02"].states == ("IDLE",)
    assert states["gb200-r01-t03"].states == ("IDLE", "DRAIN")
    assert states["gb200-r01-t03"].reason == "cordoned (not by dcops)"
    assert states["gb200-r01-t04"].states == ("DOWN", "NOT_RESPONDING")
    assert not states["gb200-r01-t04"].in_service
    assert server.queries("GET", "/api/v1/pods")[-1]["fieldSelector"] == "status.phase=Running"


def test_taint_value_and_node_state_pure() -> None:
    assert taint_value("dcops: nvlink-errors on gpu2") == "nvlink-errors"
    assert taint_value("dcops: burn-in/all_reduce 612 GB/s") == "burn-in-all_reduce"
    assert taint_value("dcops:") == "unhealthy"
    assert len(taint_value("dcops: " + "x" * 100)) == 63
    down = node_state(_node("n", ready="False"))
    assert down.states == ("DOWN",) and down.reason == "KubeletReady"

"""Job -> GPU mapping from a Kubernetes pod list: node level (the API does not say which GPU)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dcops.errors import InputError
from telemetry.jobmap import allocations_from_pods, holder, pod_gpus


def pod(
    name: str,
    *,
    node: str | None = "gb200-r01-t01",
    phase: str = "Running",
    gpus: tuple[int, ...] = (4,),
    labels: dict[str, str] | None = None,
    namespace: str = "team-a",
    finished: str | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "startTime": "2025-03-01T10:00:00Z"}
    if finished:
        status["containerStatuses"] = [
            {"name": "main", "state": {"terminated": {"exitCode": 0, "finishedAt": finished}}}
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": f"c{i}", "resources": {"limits": {"nvidia.com/gpu": str(n)}}}
                for i, n in enumerate(gpus)
            ],
        },
        "status": status,
    }


START = datetime(2025, 3, 1, 10, tzinfo=UTC).timestamp()


def test_pods_give_node_level_allocations() -> None:
    pods = {
        "kind": "PodList",
        "items": [
            pod("train-0", labels={"dcops.io/tenant": "acme", "dcops.io/job": "llm"}),
            pod("train-1", node="gb200-r01-t02", labels={"batch.kubernetes.io/job-name": "llm2"}),
            pod("pending", node=None, phase="Pending"),
            pod("cpu", gpus=(0,)),
            pod("done", phase="Succeeded", finished="2025-03-01T11:00:00Z"),
            pod("gone", phase="Failed"),  # no finish time: no interval to claim
        ],
    }
    allocations = allocations_from_pods(pods, {"team-a": "team-a-tenant"})
    rows = sorted((a.node, a.gpu, a.gpus, a.job_id, a.tenant, a.end_s) for a in allocations)
    assert rows == [
        ("gb200-r01-t01", None, 4, "team-a/done", "team-a-tenant", START + 3600),
        ("gb200-r01-t01", None, 4, "team-a/llm", "acme", None),
        ("gb200-r01-t02", None, 4, "team-a/llm2", "team-a-tenant", None),
    ]
    assert {a.source for a in allocations} == {"kubernetes"}
    assert all(a.start_s == START for a in allocations)
    # One job on the node now: every GPU of it is that job's; nothing else is claimed.
    held = holder(allocations, "gb200-r01-t01", 2, START + 7200)
    assert held is not None and held.job_id == "team-a/llm"


def test_python_client_spelling() -> None:
    item = {
        "metadata": {"name": "p", "namespace": "ns", "owner_references": [{"name": "job-x"}]},
        "spec": {
            "node_name": "n1",
            "containers": [{"resources": {"requests": {"nvidia.com/gpu": 2}}}],
            "init_containers": [{"resources": {"limits": {"nvidia.com/gpu": 3}}}],
        },
        "status": {"phase": "Running", "start_time": datetime(2025, 3, 1, 10, tzinfo=UTC)},
    }
    assert pod_gpus(item) == 3  # the init container's need is larger
    (a,) = allocations_from_pods({"items": [item]})
    assert (a.node, a.gpus, a.job_id, a.start_s, a.account) == ("n1", 3, "ns/job-x", START, "ns")


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {
            "items": [
                pod("x")
                | {
                    "spec": {
                        "nodeName": "n",
                        "containers": [{"resources": {"limits": {"nvidia.com/gpu": "two"}}}],
                    }
                }
            ]
        },
    ],
)
def test_bad_pod_lists(bad: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        allocations_from_pods(bad)

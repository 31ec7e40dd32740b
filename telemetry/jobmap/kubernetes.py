"""GPU allocations from a Kubernetes pod list (pure).

Input: a ``PodList`` as ``kubectl get pods -A -o json`` prints it (camelCase)
or as the python client's ``to_dict()`` gives it (snake_case, datetimes).

**The GPU index is not knowable from the API**: the device plugin picks the
devices when the container starts and the pod object does not record them. So
every pod gives one node-level allocation (``gpu=None``, ``gpus`` = the GPUs it
requested). Per-GPU attribution needs the kubelet's pod-resources API on the
node (what dcgm-exporter reads), which dcops does not query yet.

A pod's GPUs: ``nvidia.com/gpu`` limits (else requests) summed over its
containers, or the largest init container's if larger (Kubernetes' effective
request). Job: label ``dcops.io/job`` (set by the scheduler bridge), else the
batch/JobSet/Kubeflow job-name labels, else the owner's name, else the pod's
name; the job id is ``<namespace>/<job>``. Tenant: label ``dcops.io/tenant``,
else ``tenants[namespace]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dcops.errors import InputError
from telemetry.jobmap.model import Allocation

GPU_RESOURCE = "nvidia.com/gpu"
TENANT_LABEL = "dcops.io/tenant"
_JOB_LABELS = (
    "dcops.io/job",
    "batch.kubernetes.io/job-name",
    "job-name",
    "jobset.sigs.k8s.io/jobset-name",
    "training.kubeflow.org/job-name",
)
_HOLDING_PHASES = frozenset({"Running"})
_ENDED_PHASES = frozenset({"Succeeded", "Failed"})


def _get(obj: Mapping[str, Any] | None, *names: str) -> Any:
    """The first of ``names`` (camelCase and snake_case spellings) present in ``obj``."""
    if not isinstance(obj, Mapping):
        return None
    for name in names:
        if obj.get(name) is not None:
            return obj[name]
    return None


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise InputError(f"pod list: unreadable time {value!r}") from exc


def _count(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError as exc:
        raise InputError(f"pod list: {GPU_RESOURCE} is not a whole number: {value!r}") from exc


def _container_gpus(container: Mapping[str, Any]) -> int:
    res = _get(container, "resources") or {}
    for kind in ("limits", "requests"):
        amount = _get(_get(res, kind), GPU_RESOURCE)
        if amount is not None:
            return _count(amount)
    return 0


def pod_gpus(pod: Mapping[str, Any]) -> int:
    """GPUs a pod holds (effective request: max of the containers' sum and any init container)."""
    spec = _get(pod, "spec") or {}
    main = sum(_container_gpus(c) for c in _get(spec, "containers") or ())
    init = max(
        (_container_gpus(c) for c in _get(spec, "initContainers", "init_containers") or ()),
        default=0,
    )
    return max(main, init)


def _job_name(meta: Mapping[str, Any]) -> str:
    labels = _get(meta, "labels") or {}
    for key in _JOB_LABELS:
        if labels.get(key):
            return str(labels[key])
    owners = _get(meta, "ownerReferences", "owner_references") or []
    if owners and _get(owners[0], "name"):
        return str(owners[0]["name"])
    return str(_get(meta, "name") or "")


def _end_of(status: Mapping[str, Any]) -> float | None:
    ends = []
    for cs in _get(status, "containerStatuses", "container_statuses") or ():
        term = _get(_get(cs, "state"), "terminated")
        finished = _epoch(_get(term, "finishedAt", "finished_at"))
        if finished is not None:
            ends.append(finished)
    return max(ends) if ends else None


def allocations_from_pods(
    pod_list: Mapping[str, Any], tenants: Mapping[str, str] | None = None
) -> list[Allocation]:
    """Node-level allocations of every pod that holds GPUs on a node (see the module docstring)."""
    items = pod_list.get("items")
    if not isinstance(items, list):
        raise InputError("pod list: no 'items' list (expected kubectl get pods -o json)")
    out = []
    for pod in items:
        meta = _get(pod, "metadata") or {}
        spec = _get(pod, "spec") or {}
        status = _get(pod, "status") or {}
        node = _get(spec, "nodeName", "node_name")
        phase = str(_get(status, "phase") or "")
        gpus = pod_gpus(pod)
        start = _epoch(_get(status, "startTime", "start_time"))
        if not node or gpus <= 0 or start is None:
            continue
        if phase in _HOLDING_PHASES:
            end = None
        elif phase in _ENDED_PHASES:
            end = _end_of(status)
            if end is None:
                continue  # ended, but when is unknown: no interval to claim
        else:
            continue
        namespace = str(_get(meta, "namespace") or "default")
        labels = _get(meta, "labels") or {}
        tenant = labels.get(TENANT_LABEL) or (tenants or {}).get(namespace)
        out.append(
            Allocation(
                node=str(node),
                gpu=None,
                gpus=gpus,
                job_id=f"{namespace}/{_job_name(meta)}",
                start_s=start,
                end_s=end,
                tenant=tenant,
                account=namespace,
                user=None,
                source="kubernetes",
            )
        )
    return out

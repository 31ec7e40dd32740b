"""Kubernetes Job / JobSet objects -> :class:`~scheduler.backends.base.JobStatus` (pure).

A workload Kueue has not admitted yet is still suspended: ``pending`` with the
reason Kueue or the controller gave. Terminal conditions win (``Complete`` /
``Completed`` -> completed; ``Failed`` -> failed, or ``timeout`` when the
deadline was exceeded); a workload with active pods is ``running``; an object
being deleted is ``cancelled``. GPUs are what the workload *requests*: pods x
``nvidia.com/gpu`` requests per pod, counted as soon as the object exists,
because Kueue reserves quota for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dcops.hostlist import compress
from dcops.jobstate import JobState
from scheduler.backends.base import JobStatus
from scheduler.kubernetes.render import GPU_RESOURCE

BACKEND = "kubernetes"
TENANT_LABEL = "dcops.io/tenant"
JOB_LABEL = "dcops.io/job"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "dcops"
#: Labels the controllers put on the pods of a Job / JobSet.
JOB_POD_LABEL = "batch.kubernetes.io/job-name"
JOBSET_POD_LABEL = "jobset.sigs.k8s.io/jobset-name"


def _time_s(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: object, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return default


def _true_conditions(status: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(c.get("type")): c
        for c in _list(status.get("conditions"))
        if isinstance(c, dict) and c.get("status") == "True"
    }


def pod_gpus(pod_template: Mapping[str, Any]) -> int:
    """GPUs one pod of ``pod_template`` requests (requests, else limits, per container)."""
    total = 0
    for container in _list(_dict(pod_template.get("spec")).get("containers")):
        res = _dict(_dict(container).get("resources"))
        amount = _dict(res.get("requests")).get(
            GPU_RESOURCE, _dict(res.get("limits")).get(GPU_RESOURCE)
        )
        total += _int(amount)
    return total


def _job_pods(job_spec: Mapping[str, Any]) -> int:
    return _int(job_spec.get("parallelism"), 1)


def workload_gpus(obj: Mapping[str, Any]) -> int:
    """GPUs a Job or JobSet requests in all."""
    spec = _dict(obj.get("spec"))
    if obj.get("kind") == "JobSet":
        total = 0
        for rjob in _list(spec.get("replicatedJobs")):
            job_spec = _dict(_dict(_dict(rjob).get("template")).get("spec"))
            per_job = _job_pods(job_spec) * pod_gpus(_dict(job_spec.get("template")))
            total += _int(_dict(rjob).get("replicas"), 1) * per_job
        return total
    return _job_pods(spec) * pod_gpus(_dict(spec.get("template")))


def _job_state(obj: Mapping[str, Any]) -> tuple[JobState, str, float | None, float | None]:
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    conds = _true_conditions(status)
    start, end = _time_s(status.get("startTime")), _time_s(status.get("completionTime"))
    if "Complete" in conds:
        return JobState.COMPLETED, str(conds["Complete"].get("reason", "")), start, end
    if "Failed" in conds:
        cond = conds["Failed"]
        reason = str(cond.get("reason", ""))
        state = JobState.TIMEOUT if reason == "DeadlineExceeded" else JobState.FAILED
        return state, reason, start, end or _time_s(cond.get("lastTransitionTime"))
    if spec.get("suspend") is True:
        reason = str(conds.get("Suspended", {}).get("reason", "")) or "waiting for Kueue admission"
        return JobState.PENDING, reason, start, None
    if _int(status.get("active")) > 0:
        return JobState.RUNNING, "", start, None
    return JobState.PENDING, "", start, None


def _jobset_state(obj: Mapping[str, Any]) -> tuple[JobState, str, float | None, float | None]:
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    conds = _true_conditions(status)
    for ctype, final in (("Completed", JobState.COMPLETED), ("Failed", JobState.FAILED)):
        if ctype in conds:
            cond = conds[ctype]
            reason = str(cond.get("reason", ""))
            state = final
            if final is JobState.FAILED and "deadline" in str(cond.get("message", "")).lower():
                state = JobState.TIMEOUT
            return state, reason, None, _time_s(cond.get("lastTransitionTime"))
    if spec.get("suspend") is True:
        reason = str(conds.get("Suspended", {}).get("reason", "")) or "waiting for Kueue admission"
        return JobState.PENDING, reason, None, None
    active = sum(_int(_dict(r).get("active")) for r in _list(status.get("replicatedJobsStatus")))
    if active > 0:
        return JobState.RUNNING, "", None, None
    return JobState.PENDING, "", None, None


def job_status(obj: Mapping[str, Any], *, pods: Sequence[Mapping[str, Any]] = ()) -> JobStatus:
    """The JobStatus of a dcops Job or JobSet object (``pods``: its pods, for node names)."""
    meta = _dict(obj.get("metadata"))
    labels = _dict(meta.get("labels"))
    kind = str(obj.get("kind", "Job"))
    state, reason, start, end = (_jobset_state if kind == "JobSet" else _job_state)(obj)
    if meta.get("deletionTimestamp") and state in (JobState.PENDING, JobState.RUNNING):
        state, reason = JobState.CANCELLED, "deleted"
    nodes = sorted(
        {
            str(_dict(p.get("spec")).get("nodeName"))
            for p in pods
            if _dict(p.get("spec")).get("nodeName")
        }
    )
    restarts = _int(_dict(obj.get("status")).get("restarts"))
    return JobStatus(
        backend=BACKEND,
        backend_job_id=str(meta.get("name", "")),
        tenant=str(labels.get(TENANT_LABEL, "")),
        name=str(labels.get(JOB_LABEL, meta.get("name", ""))),
        state=state,
        reason=reason,
        gpus=workload_gpus(obj),
        nodes=compress(nodes) if nodes else "",
        submit_time_s=_time_s(meta.get("creationTimestamp")),
        start_time_s=start,
        end_time_s=end,
        extra={
            "kind": kind,
            "namespace": str(meta.get("namespace", "")),
            "queue": str(labels.get("kueue.x-k8s.io/queue-name", "")),
            "restarts": restarts,
        },
    )

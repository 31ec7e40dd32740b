"""Slurm's job records as the scheduler port sees them: ids, ownership, states, GPUs.

Shared by the Slurm backends (slurm-cli, slurm-rest, slurm-pyslurm); pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dcops.errors import UnknownNameError
from dcops.jobstate import JobState
from dcops.slurm.parse import SlurmJob
from scheduler.backends.base import JobStatus
from scheduler.tenants.contract import TenantContract

JOB_ID = re.compile(r"[0-9]{1,12}")

#: Slurm's job states (squeue, sacct, slurmrestd, pyslurm) -> the port's JobState.
SLURM_STATES: dict[str, JobState] = {
    "PENDING": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "CONFIGURING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "REVOKED": JobState.CANCELLED,
    "CANCELLED": JobState.CANCELLED,
    "DEADLINE": JobState.TIMEOUT,
    "TIMEOUT": JobState.TIMEOUT,
    "NODE_FAIL": JobState.NODE_FAIL,
    "PREEMPTED": JobState.PREEMPTED,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
}


def check_job_id(backend_job_id: str) -> str:
    """A Slurm job id as the bridge accepts it (digits only), else 'not found'."""
    text = str(backend_job_id).strip()
    if not JOB_ID.fullmatch(text):
        raise UnknownNameError("job", str(backend_job_id)[:40], [])
    return text


def owns(tenant: TenantContract, job: SlurmJob) -> bool:
    """A Slurm job belongs to ``tenant``: its account and one of its Unix users."""
    return job.account == tenant.slurm_account and job.user in tenant.unix_users


def to_status(backend: str, tenant: TenantContract, job: SlurmJob) -> JobStatus:
    state = SLURM_STATES.get(job.state, JobState.UNKNOWN)
    return JobStatus(
        backend=backend,
        backend_job_id=str(job.job_id),
        tenant=tenant.name,
        name=job.name,
        state=state,
        reason="" if job.reason in ("None", "") else job.reason,
        gpus=job.gpus,
        nodes=job.nodes,
        submit_time_s=None if job.submit_time is None else float(job.submit_time),
        start_time_s=None if job.start_time is None else float(job.start_time),
        end_time_s=None if job.end_time is None else float(job.end_time),
        exit_code=job.exit_code if state not in (JobState.PENDING, JobState.RUNNING) else None,
        extra={"account": job.account, "user": job.user, "partition": job.partition},
    )


def gres_gpus_per_node(text: str) -> int:
    """22.05 squeue ``tres_per_node`` ``gres:gpu:4`` / ``gres:gpu:h100:2`` -> 4 / 2."""
    total = 0
    for item in (text or "").split(","):
        parts = item.strip().split(":")
        if len(parts) >= 3 and parts[0] == "gres" and parts[1] == "gpu" and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def live_gpus(job: SlurmJob, raw: Mapping[str, Any]) -> int:
    """GPUs of a squeue job, also for 22.05's ``gres:gpu:N`` spelling of pending jobs."""
    if job.gpus:
        return job.gpus
    per_node = gres_gpus_per_node(str(raw.get("tres_per_node") or ""))
    return per_node * (job.node_count or 1)


def status_fields(status: JobStatus) -> dict[str, Any]:
    """A JobStatus as keyword arguments (to build a copy with some fields changed)."""
    return {f: getattr(status, f) for f in JobStatus.__dataclass_fields__}

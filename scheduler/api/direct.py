"""A :class:`~scheduler.api.ports.JobService` straight over one scheduler backend.

``BackendJobService`` admits a spec against the tenant contract (GPU quota from
the backend's own count of the tenant's active jobs) and submits it; job ids
are the backend's. It keeps no job table: that is what the bridge's job
service adds (persistence, retries). Pending-job and CPU-node limits are checked
against the backend's own list of the tenant's active jobs. It serves the API in
tests, benchmarks and demos with :class:`~scheduler.backends.recording.RecordingBackend`,
and is the fallback of ``dcops serve --service direct``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from dcops.jobstate import JobState
from scheduler.api.ports import JobView, SubmittedJob
from scheduler.backends.base import JobStatus, SchedulerBackend
from scheduler.guards import Resolver, realpath_resolver
from scheduler.spec import JobSpec
from scheduler.tenants.contract import TenantContract, admit, check_job_limits

#: Admission reads the backend's counts, then submits: one submission at a time,
#: so concurrent requests cannot both fit in the last free slot.
_SUBMIT_LOCK = threading.Lock()


class BackendJobService:
    """Admission + one backend, nothing persisted."""

    def __init__(
        self, backend: SchedulerBackend, *, kind: str = "slurm", resolve: Resolver | None = None
    ) -> None:
        self.backend = backend
        self.kind = kind  # the tenancy backend kind (slurm|kubernetes) checked on admission
        self.resolve = resolve or realpath_resolver

    def submit(self, tenant: TenantContract, spec: JobSpec, *, spec_hash: str) -> SubmittedJob:
        with _SUBMIT_LOCK:
            active = self.backend.list(tenant, active_only=True)
            job = admit(
                spec,
                tenant,
                self.backend.gpus_in_use(tenant),
                backend=self.kind,
                resolve=self.resolve,
            )
            check_job_limits(
                tenant,
                spec,
                pending=sum(1 for j in active if j.state is JobState.PENDING),
                cpu_nodes_in_use=sum(_node_count(j) for j in active if not j.gpus),
            )
            sub = self.backend.submit(job)
        return SubmittedJob(
            job_id=sub.backend_job_id,
            backend=sub.backend,
            backend_job_id=sub.backend_job_id,
            rendering=sub.rendering,
            spec_hash=spec_hash,
        )

    def list_jobs(self, tenant: TenantContract, *, active_only: bool = False) -> Sequence[JobView]:
        return self.backend.list(tenant, active_only=active_only)

    def status(self, tenant: TenantContract, job_id: str) -> JobView:
        return self.backend.status(tenant, job_id)

    def logs(self, tenant: TenantContract, job_id: str, *, tail_bytes: int) -> str:
        return self.backend.logs(tenant, job_id, tail_bytes=tail_bytes)

    def cancel(self, tenant: TenantContract, job_id: str) -> None:
        self.backend.cancel(tenant, job_id)


def _node_count(job: JobStatus) -> int:
    """Nodes a job holds: its hostlist when placed, else what it asked for (else 1)."""
    if job.nodes:
        from dcops.hostlist import expand

        return len(expand(job.nodes))
    count = job.extra.get("node_count", 1)
    return count if isinstance(count, int) and count > 0 else 1

"""An in-memory scheduler backend that records every call (product code, like a mock transport).

:class:`RecordingBackend` implements :class:`~scheduler.backends.base.SchedulerBackend`
without any scheduler: a submission gets the next numeric job id, is rendered
exactly as the Slurm backend would render it (:func:`scheduler.slurm.render.render_slurm`)
and stays ``pending`` until :meth:`RecordingBackend.set_state` moves it. It keeps
the same tenant isolation as a real backend (another tenant's job id is "not
found") so the code above the port -- the job service, the tenant API, the CLI --
runs unchanged in tests, benchmarks and demos. ``fail_with`` makes every call
raise, to exercise backend-error paths.

Thread-safe: the tenant API calls it from several worker threads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from dcops.errors import DcopsError, UnknownNameError
from dcops.jobstate import JobState
from scheduler.backends.base import (
    BackendFeature,
    JobStatus,
    Submission,
    register_backend,
)
from scheduler.slurm.render import SlurmSite, render_slurm
from scheduler.tenants.contract import AdmittedJob, TenantContract

_ACTIVE = (JobState.PENDING, JobState.RUNNING)


@dataclass
class RecordedJob:
    """One job the backend holds: what was admitted, what was "submitted", where it is."""

    job: AdmittedJob
    submission: Submission
    state: JobState = JobState.PENDING
    submit_time_s: float = field(default_factory=time.time)
    logs: str = ""

    @property
    def tenant(self) -> str:
        return self.job.tenant.name

    def status(self) -> JobStatus:
        return JobStatus(
            backend=self.submission.backend,
            backend_job_id=self.submission.backend_job_id,
            tenant=self.tenant,
            name=self.job.spec.name,
            state=self.state,
            gpus=self.job.gpus_requested,
            submit_time_s=self.submit_time_s,
            extra={"node_count": self.job.spec.resources.nodes},
        )


class RecordingBackend:
    """A :class:`SchedulerBackend` held in memory; every call lands in :attr:`calls`."""

    name = "recording"
    features = frozenset(
        {
            BackendFeature.SUBMIT,
            BackendFeature.STATUS,
            BackendFeature.LIST,
            BackendFeature.LOGS,
            BackendFeature.CANCEL,
        }
    )

    def __init__(
        self,
        *,
        first_job_id: int = 1000,
        slurm_site: SlurmSite | None = None,
        fail_with: DcopsError | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._next_id = first_job_id
        self._site = slurm_site or SlurmSite()
        self.fail_with = fail_with
        self.jobs: dict[str, RecordedJob] = {}
        #: (method, tenant name, argument) for every call, in order.
        self.calls: list[tuple[str, str, str]] = []

    # -- inspection helpers (tests, demos) ---------------------------------------------

    @property
    def submissions(self) -> list[RecordedJob]:
        with self._lock:
            return list(self.jobs.values())

    def set_state(self, backend_job_id: str, state: JobState, *, logs: str | None = None) -> None:
        """Move a job (as a scheduler would); optionally give it output."""
        with self._lock:
            rec = self.jobs[backend_job_id]
            rec.state = state
            if logs is not None:
                rec.logs = logs

    # -- the SchedulerBackend port -----------------------------------------------------

    def _enter(self, method: str, tenant: str, arg: str) -> None:
        self.calls.append((method, tenant, arg))
        if self.fail_with is not None:
            raise self.fail_with

    def _own(self, tenant: TenantContract, backend_job_id: str) -> RecordedJob:
        rec = self.jobs.get(backend_job_id)
        if rec is None or rec.tenant != tenant.name:
            raise UnknownNameError("job", backend_job_id, [])
        return rec

    def submit(self, job: AdmittedJob) -> Submission:
        with self._lock:
            self._enter("submit", job.tenant.name, job.spec.name)
            job_id = str(self._next_id)
            self._next_id += 1
            rendering = render_slurm(job, self._site).script
            sub = Submission(backend=self.name, backend_job_id=job_id, rendering=rendering)
            self.jobs[job_id] = RecordedJob(job=job, submission=sub)
            return sub

    def status(self, tenant: TenantContract, backend_job_id: str) -> JobStatus:
        with self._lock:
            self._enter("status", tenant.name, backend_job_id)
            return self._own(tenant, backend_job_id).status()

    def list(self, tenant: TenantContract, *, active_only: bool = False) -> list[JobStatus]:
        with self._lock:
            self._enter("list", tenant.name, "active" if active_only else "all")
            return [
                rec.status()
                for rec in self.jobs.values()
                if rec.tenant == tenant.name and (not active_only or rec.state in _ACTIVE)
            ]

    def logs(self, tenant: TenantContract, backend_job_id: str, *, tail_bytes: int = 65536) -> str:
        with self._lock:
            self._enter("logs", tenant.name, backend_job_id)
            text = self._own(tenant, backend_job_id).logs
            data = text.encode("utf-8")[-tail_bytes:] if tail_bytes > 0 else b""
            return data.decode("utf-8", errors="replace")

    def cancel(self, tenant: TenantContract, backend_job_id: str) -> None:
        with self._lock:
            self._enter("cancel", tenant.name, backend_job_id)
            rec = self._own(tenant, backend_job_id)
            if rec.state in _ACTIVE:
                rec.state = JobState.CANCELLED

    def gpus_in_use(self, tenant: TenantContract) -> int:
        with self._lock:
            self._enter("gpus_in_use", tenant.name, "")
            return sum(
                rec.job.gpus_requested
                for rec in self.jobs.values()
                if rec.tenant == tenant.name and rec.state in _ACTIVE
            )


@register_backend("recording")
def _factory(**options: object) -> RecordingBackend:
    first = options.get("first_job_id", 1000)
    return RecordingBackend(first_job_id=first if isinstance(first, int) else 1000)

"""The scheduler-backend port: submit, status, list, logs, cancel — for one tenant at a time.

Every call takes the :class:`~scheduler.tenants.contract.TenantContract` of the caller;
backends act *as* that tenant (its Slurm user/account, its namespace) and never
return another tenant's jobs. A job id of another tenant gives
:class:`~dcops.errors.UnknownNameError` ("not found"), never "forbidden".

Backends declare what they can do (:class:`BackendFeature`) and are found by
name in a registry; an unknown name lists the valid ones; a backend whose
library is missing (pyslurm, kubernetes) is reported by :func:`availability`,
not raised at import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from dcops.jobstate import JobState
from dcops.registry import Registry
from scheduler.tenants.contract import AdmittedJob, TenantContract


class BackendFeature(StrEnum):
    SUBMIT = "submit"
    STATUS = "status"
    LIST = "list"
    LOGS = "logs"
    CANCEL = "cancel"
    QUOTA_ENFORCED = "quota-enforced"  # the scheduler itself enforces the GPU quota
    NODE_ACTIONS = "node-actions"  # drain/resume or cordon/uncordon
    DRY_RUN = "dry-run"  # server-side validation without creating anything


@dataclass(frozen=True)
class Submission:
    """What a backend submitted: its job id and the exact rendering."""

    backend: str
    backend_job_id: str
    rendering: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobStatus:
    backend: str
    backend_job_id: str
    tenant: str
    name: str
    state: JobState
    reason: str = ""
    gpus: int = 0
    nodes: str = ""  # hostlist
    submit_time_s: float | None = None
    start_time_s: float | None = None
    end_time_s: float | None = None
    exit_code: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state in (JobState.PENDING, JobState.RUNNING)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "backend_job_id": self.backend_job_id,
            "tenant": self.tenant,
            "name": self.name,
            "state": self.state.value,
            "reason": self.reason,
            "gpus": self.gpus,
            "nodes": self.nodes,
            "submit_time_s": self.submit_time_s,
            "start_time_s": self.start_time_s,
            "end_time_s": self.end_time_s,
            "exit_code": self.exit_code,
        }


@runtime_checkable
class SchedulerBackend(Protocol):
    name: str
    features: frozenset[BackendFeature]

    def submit(self, job: AdmittedJob) -> Submission:
        """Submit an admitted job as its tenant."""
        ...

    def status(self, tenant: TenantContract, backend_job_id: str) -> JobStatus:
        """One job of ``tenant``; another tenant's id -> UnknownNameError."""
        ...

    def list(self, tenant: TenantContract, *, active_only: bool = False) -> list[JobStatus]:
        """The tenant's jobs only."""
        ...

    def logs(self, tenant: TenantContract, backend_job_id: str, *, tail_bytes: int = 65536) -> str:
        """The job's output (stdout/stderr), bounded."""
        ...

    def cancel(self, tenant: TenantContract, backend_job_id: str) -> None:
        """Cancel the tenant's job; another tenant's id -> UnknownNameError."""
        ...

    def gpus_in_use(self, tenant: TenantContract) -> int:
        """GPUs held or requested by the tenant's active jobs (for admission)."""
        ...


#: The modules that register the backends shipped with dcops (imported on the first lookup).
BUILTIN_MODULES = (
    "scheduler.backends.slurm_cli",
    "scheduler.backends.slurm_rest",
    "scheduler.backends.pyslurm_backend",
    "scheduler.backends.recording",
)


def _load_builtin_backends() -> None:
    import contextlib
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    # The Kubernetes backend registers itself; its client library is imported lazily.
    with contextlib.suppress(ImportError):
        importlib.import_module("scheduler.kubernetes.backend")


#: Every scheduler backend by name (each backend module registers itself on import; the
#: built-in ones are imported on the first lookup).
BACKENDS: Registry[SchedulerBackend] = Registry("scheduler backend", load=_load_builtin_backends)

#: Class decorator: make a backend available to :func:`create_backend` as ``name``.
register_backend = BACKENDS.register


def backend_names() -> list[str]:
    return BACKENDS.names()


def create_backend(name: str, /, **options: Any) -> SchedulerBackend:
    """A backend by name, made with ``options``; UnknownNameError lists the known ones."""
    return BACKENDS.create(name, **options)


#: How each built-in backend is tested; a backend missing here is untested.
#: ``dcops jobs backends`` shows this next to each backend's availability.
TESTED_BY: Mapping[str, str] = {
    "slurm-cli": "live: the Slurm 22.05 (Debian) and 24.11 (built) test rigs",
    "slurm-rest": "live: slurmrestd v0.0.38 (Slurm 22.05), v0.0.40..v0.0.42 (Slurm 24.11)",
    "kubernetes": "the real client against a loopback API server; live with KUBECONFIG",
}
#: Why a built-in backend is untested (it is kept, and offered last, never as a peer).
UNTESTED_WHY: Mapping[str, str] = {
    "slurm-pyslurm": "pyslurm on PyPI matches only Slurm 25.11, which no test rig runs "
    "(pyslurm X.Y needs Slurm X.Y)",
}


def availability(checks: Mapping[str, Callable[[], str | None]]) -> dict[str, str]:
    """name -> "ok" or why it is unavailable (e.g. pyslurm not importable / version mismatch)."""
    return {name: (check() or "ok") for name, check in checks.items()}


def total_gpus(jobs: Sequence[JobStatus]) -> int:
    return sum(j.gpus for j in jobs if j.active)

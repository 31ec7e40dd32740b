"""What the tenant API needs from the rest of dcops: a job service, a token check, an audit sink.

The HTTP layer (:mod:`scheduler.api.app`) never touches a backend, the state
store or a tenant table directly. It is given a :data:`ContextFactory` that
builds one :class:`ApiContext` per worker thread (SQLite connections are
per-thread), holding:

* ``authenticate(token) -> TenantContract`` -- the *only* source of the
  caller's identity. It raises :class:`~dcops.errors.InputError` (any
  subclass) for a missing, unknown, revoked or expired token; anything else
  is an internal failure;
* a :class:`JobService` -- submit/list/status/logs/cancel *as* that tenant,
  quota admission included;
* an :class:`AuditSink` -- :class:`dcops.store.AuditLog` satisfies it.

Job ids are opaque strings chosen by the service; another tenant's id must be
reported as :class:`~dcops.errors.UnknownNameError` (HTTP 404), never as
"forbidden".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scheduler.spec import JobSpec
from scheduler.tenants.contract import TenantContract


class JobView(Protocol):
    """Anything the API can show as one job (``JobStatus`` is one)."""

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SubmittedJob:
    """What a submission produced: the id the tenant uses, and exactly what was submitted."""

    job_id: str
    backend: str
    backend_job_id: str
    rendering: str
    spec_hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "backend": self.backend,
            "backend_job_id": self.backend_job_id,
            "spec_hash": self.spec_hash,
            "rendering": self.rendering,
        }


class JobService(Protocol):
    """Tenant job operations; every method acts as ``tenant`` and sees only its jobs."""

    def submit(self, tenant: TenantContract, spec: JobSpec, *, spec_hash: str) -> SubmittedJob:
        """Admit (contract rules, GPU quota) and submit; InputError when refused."""
        ...

    def list_jobs(self, tenant: TenantContract, *, active_only: bool = False) -> Sequence[JobView]:
        """The tenant's jobs."""
        ...

    def status(self, tenant: TenantContract, job_id: str) -> JobView:
        """One of the tenant's jobs; another tenant's id -> UnknownNameError."""
        ...

    def logs(self, tenant: TenantContract, job_id: str, *, tail_bytes: int) -> str:
        """The job's output, at most ``tail_bytes`` from the end."""
        ...

    def cancel(self, tenant: TenantContract, job_id: str) -> None:
        """Cancel one of the tenant's jobs; another tenant's id -> UnknownNameError."""
        ...


class AuditSink(Protocol):
    """Where API calls are recorded (``dcops.store.AuditLog`` fits)."""

    def record(
        self,
        action: str,
        target: str,
        *,
        outcome: str,
        evidence: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> object: ...


Authenticator = Callable[[str], TenantContract]


@dataclass(frozen=True)
class ApiContext:
    """The per-thread collaborators of the API."""

    authenticate: Authenticator
    service: JobService
    audit: AuditSink
    close: Callable[[], None] = lambda: None


#: Called once in each worker thread to build that thread's context.
ContextFactory = Callable[[], ApiContext]

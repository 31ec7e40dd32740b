"""The API's job service over the scheduler bridge (:mod:`scheduler.bridge`).

One :class:`~scheduler.bridge.Bridge` per call, built on the worker thread's
store with an audit log whose actor is ``tenant:<name>``, so the bridge's own
``job.submit``/``job.cancel`` records name the tenant; the backend instance is
shared between calls (and threads). Job ids are the bridge's (``j-...``),
backed by the ``jobs`` table.
"""

from __future__ import annotations

from collections.abc import Sequence

from dcops.store import AuditLog, Store
from scheduler.api.ports import JobView, SubmittedJob
from scheduler.backends.base import SchedulerBackend
from scheduler.bridge import Bridge
from scheduler.guards import Resolver, realpath_resolver
from scheduler.spec import JobSpec
from scheduler.tenants.contract import TenantContract

_ACTIVE_STATES = frozenset({"submitting", "pending", "running"})


class BridgeJobService:
    """Tenant jobs through :class:`Bridge` with one named, shared backend."""

    def __init__(
        self,
        store: Store,
        backend_name: str,
        backend: SchedulerBackend,
        *,
        resolve: Resolver = realpath_resolver,
    ) -> None:
        self.store = store
        self.backend_name = backend_name
        self.backend = backend
        self.resolve = resolve

    def _bridge(self, tenant: TenantContract) -> Bridge:
        return Bridge(
            self.store,
            AuditLog(self.store, actor=f"tenant:{tenant.name}"),
            backends={self.backend_name: self.backend},
            resolve=self.resolve,
        )

    def submit(self, tenant: TenantContract, spec: JobSpec, *, spec_hash: str) -> SubmittedJob:
        record = self._bridge(tenant).submit(tenant, spec, backend=self.backend_name)
        return SubmittedJob(
            job_id=record.job_id,
            backend=record.backend,
            backend_job_id=record.backend_job_id or "",
            rendering=record.rendering,
            spec_hash=record.spec_hash,
        )

    def list_jobs(self, tenant: TenantContract, *, active_only: bool = False) -> Sequence[JobView]:
        records = self._bridge(tenant).list(tenant)
        if active_only:
            records = [r for r in records if r.state in _ACTIVE_STATES]
        return records

    def status(self, tenant: TenantContract, job_id: str) -> JobView:
        return self._bridge(tenant).status(tenant, job_id)

    def logs(self, tenant: TenantContract, job_id: str, *, tail_bytes: int) -> str:
        return self._bridge(tenant).logs(tenant, job_id, tail_bytes=tail_bytes)

    def cancel(self, tenant: TenantContract, job_id: str) -> None:
        self._bridge(tenant).cancel(tenant, job_id)

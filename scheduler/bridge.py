"""The scheduler bridge as one service: what the CLI and the tenant API server call.

:class:`Bridge` ties the tenant contract (from the store), admission, the
backends and the ``jobs`` table together. Each public method does the
cross-cutting work (quota, ownership, store row, audit) and calls the
backend's port for the rest:

* :meth:`Bridge.submit` -- ``admit`` -> ``backend.submit`` -> ``jobs`` row
  (rendering, spec hash) -> audit. Refusals are audited too and raise
  :class:`~dcops.errors.InputError` (quota, contract) before anything reaches
  the scheduler;
* :meth:`Bridge.status` / :meth:`logs` / :meth:`cancel` -- only for a job of
  *this* tenant: another tenant's id is :class:`~dcops.errors.UnknownNameError`
  ("not found"), never "forbidden";
* :meth:`Bridge.list` -- the tenant's jobs, states refreshed from the backends.

Quota admission: the GPUs of the tenant's active rows in ``jobs`` (all
backends; a row is reserved atomically with the check, so concurrent submits
cannot both take the last GPUs) plus the request must fit ``gpu_quota``. When
they do not, the rows are first refreshed from the schedulers (jobs that ended
free their GPUs) and the check is made again on live numbers, deduplicated per
scheduler family. Jobs a tenant submits outside the bridge are not counted
here; Slurm enforces the same quota (``GrpTRES``, pending ``AssocGrpGRES``).

For the API server: ``tenant = authenticate(store, token)`` then
``Bridge(store, AuditLog(store, actor=f"tenant:{tenant.name}"), backend_options=...)``
and the methods below with that tenant. Nothing here prints or logs secrets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcops.errors import DcopsError, InputError, QuotaExceededError, UnknownNameError
from dcops.jobstate import JobState
from dcops.store import AuditLog, Store, utc_now
from scheduler.backends.base import JobStatus, SchedulerBackend, create_backend
from scheduler.guards import Resolver, realpath_resolver
from scheduler.spec import JobSpec, load_spec
from scheduler.tenants.contract import AdmittedJob, TenantContract, admit, check_job_limits
from scheduler.tenants.store import get_tenant

#: Backend name -> scheduler family (the tenancy "backend" the contract allows).
FAMILIES: dict[str, str] = {
    "slurm-cli": "slurm",
    "slurm-rest": "slurm",
    "slurm-pyslurm": "slurm",
    "kubernetes": "kubernetes",
    "recording": "slurm",  # the in-memory backend (tests, demos): renders as Slurm
}
DEFAULT_BACKEND = "slurm-cli"
_ACTIVE = ("submitting", JobState.PENDING.value, JobState.RUNNING.value)
#: The state of a job the bridge admitted but the backend failed to take (sbatch or the
#: API server failed): not "rejected", which is what admission says of a refused spec.
SUBMIT_FAILED = "submit-failed"


_PENDING = ("submitting", JobState.PENDING.value)


def job_limit_problem(
    conn: sqlite3.Connection, tenant: TenantContract, spec: JobSpec
) -> str | None:
    """Why ``spec`` breaks the tenant's pending-job or CPU-node limit (store rows), or None."""
    marks = ",".join("?" * len(_PENDING))
    pending = conn.execute(
        f"SELECT COUNT(*) AS n FROM jobs WHERE tenant = ? AND state IN ({marks})",
        (tenant.name, *_PENDING),
    ).fetchone()["n"]
    nodes = conn.execute(
        "SELECT COALESCE(SUM(nodes), 0) AS n FROM jobs WHERE tenant = ? AND gpus = 0"
        f" AND state IN ({','.join('?' * len(_ACTIVE))})",
        (tenant.name, *_ACTIVE),
    ).fetchone()["n"]
    try:
        check_job_limits(tenant, spec, pending=int(pending), cpu_nodes_in_use=int(nodes))
    except QuotaExceededError as exc:
        return str(exc)
    return None


def spec_hash(spec: JobSpec) -> str:
    """sha256 of the spec's canonical JSON: the same for its YAML and JSON spellings."""
    body = json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class JobRecord:
    """A row of the ``jobs`` table, optionally with the live status."""

    job_id: str
    tenant: str
    backend: str
    backend_job_id: str | None
    spec_hash: str
    gpus: int
    state: str
    submitted_at: str
    updated_at: str
    rendering: str = ""
    live: JobStatus | None = None
    name: str = ""  # the spec's name, as stored at submission

    def to_dict(self, *, with_rendering: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "job_id": self.job_id,
            "tenant": self.tenant,
            "backend": self.backend,
            "backend_job_id": self.backend_job_id,
            "spec_hash": self.spec_hash,
            "gpus": self.gpus,
            "state": self.state,
            "submitted_at": self.submitted_at,
            "updated_at": self.updated_at,
            "name": self.name,  # always: `jobs list` shows it without a live status
        }
        if self.live is not None:
            data["name"] = self.live.name or self.name
            data["reason"] = self.live.reason
            data["nodes"] = self.live.nodes
            data["exit_code"] = self.live.exit_code
        if with_rendering:
            data["rendering"] = self.rendering
        return data


def _record(row: sqlite3.Row, live: JobStatus | None = None) -> JobRecord:
    return JobRecord(
        job_id=row["job_id"],
        tenant=row["tenant"],
        backend=row["backend"],
        backend_job_id=row["backend_job_id"],
        spec_hash=row["spec_hash"],
        gpus=row["gpus"],
        state=row["state"],
        submitted_at=row["submitted_at"],
        updated_at=row["updated_at"],
        rendering=row["rendering"],
        live=live,
        name=row["name"],
    )


class Bridge:
    """Tenant jobs through the scheduler backends, with quota, ownership, store and audit."""

    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        *,
        backends: Mapping[str, SchedulerBackend] | None = None,
        backend_options: Mapping[str, Mapping[str, Any]] | None = None,
        resolve: Resolver = realpath_resolver,
    ) -> None:
        self.store = store
        self.audit = audit
        self._backends: dict[str, SchedulerBackend] = dict(backends or {})
        self._options = {k: dict(v) for k, v in (backend_options or {}).items()}
        self.resolve = resolve

    def backend(self, name: str) -> SchedulerBackend:
        """The named backend, created on first use with its ``backend_options``."""
        if name not in self._backends:
            self._backends[name] = create_backend(name, **self._options.get(name, {}))
        return self._backends[name]

    # --- submit ------------------------------------------------------------------------

    def submit(
        self,
        tenant: TenantContract,
        spec: JobSpec | str | Path,
        backend: str = DEFAULT_BACKEND,
    ) -> JobRecord:
        """Admit ``spec`` for ``tenant``, submit it as the tenant, record and audit it."""
        if backend not in FAMILIES:
            raise UnknownNameError("scheduler backend", backend, sorted(FAMILIES))
        family = FAMILIES[backend]
        job_spec = spec if isinstance(spec, JobSpec) else load_spec(spec)
        digest = spec_hash(job_spec)
        target = f"tenant:{tenant.name}"
        try:
            job_id, admitted = self._reserve(tenant, job_spec, family, backend, digest)
        except DcopsError as exc:
            self.audit.record(
                "job.submit",
                target,
                outcome="refused",
                evidence={
                    "spec": job_spec.name,
                    "spec_hash": digest,
                    "backend": backend,
                    "error": str(exc),
                },
            )
            raise
        try:
            submission = self.backend(backend).submit(admitted)
        except DcopsError as exc:
            self._set_state(job_id, SUBMIT_FAILED)
            self.audit.record(
                "job.submit",
                f"job:{job_id}",
                outcome="failed",
                evidence={
                    "tenant": tenant.name,
                    "spec_hash": digest,
                    "backend": backend,
                    "error": str(exc),
                },
            )
            raise
        except BaseException:
            self._set_state(job_id, SUBMIT_FAILED)
            raise
        now = utc_now()
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET backend_job_id = ?, rendering = ?, state = ?, updated_at = ?"
                " WHERE job_id = ?",
                (
                    submission.backend_job_id,
                    submission.rendering,
                    JobState.PENDING.value,
                    now,
                    job_id,
                ),
            )
        self.audit.record(
            "job.submit",
            f"job:{job_id}",
            outcome="ok",
            evidence={
                "tenant": tenant.name,
                "backend": backend,
                "backend_job_id": submission.backend_job_id,
                "spec_hash": digest,
                "gpus": admitted.gpus_requested,
                "notes": list(submission.notes),
            },
        )
        return self.get(tenant, job_id)

    def _reserve(
        self, tenant: TenantContract, spec: JobSpec, family: str, backend: str, digest: str
    ) -> tuple[str, AdmittedJob]:
        """Admit against the quota and insert a 'submitting' row, atomically."""
        for refreshed in (False, True):
            if refreshed:
                self.refresh(tenant)
            with self.store.transaction() as conn:
                in_use = self._stored_gpus(conn, tenant.name)
                over = in_use + spec.resources.gpus_total > tenant.gpu_quota
                limit = job_limit_problem(conn, tenant, spec)
                if not refreshed and (over or limit is not None):
                    continue  # maybe stale: refresh from the schedulers, then decide
                admitted = admit(spec, tenant, in_use, backend=family, resolve=self.resolve)
                if limit is not None:
                    raise QuotaExceededError(limit)
                job_id = "j-" + secrets.token_hex(6)
                now = utc_now()
                conn.execute(
                    "INSERT INTO jobs (job_id, tenant, backend, backend_job_id, spec_hash,"
                    " rendering, gpus, nodes, state, submitted_at, updated_at, name)"
                    " VALUES (?, ?, ?, NULL, ?, '', ?, ?, 'submitting', ?, ?, ?)",
                    (
                        job_id,
                        tenant.name,
                        backend,
                        digest,
                        admitted.gpus_requested,
                        spec.resources.nodes,
                        now,
                        now,
                        spec.name,
                    ),
                )
                return job_id, admitted
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _stored_gpus(conn: sqlite3.Connection, tenant: str) -> int:
        row = conn.execute(
            f"SELECT COALESCE(SUM(gpus), 0) AS n FROM jobs WHERE tenant = ?"
            f" AND state IN ({','.join('?' * len(_ACTIVE))})",
            (tenant, *_ACTIVE),
        ).fetchone()
        return int(row["n"])

    def _set_state(self, job_id: str, state: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, updated_at = ? WHERE job_id = ?",
                (state, utc_now(), job_id),
            )

    # --- read --------------------------------------------------------------------------

    def get(self, tenant: TenantContract | None, job_id: str) -> JobRecord:
        """The stored job; with a tenant, only that tenant's (else 'not found')."""
        sql, args = "SELECT * FROM jobs WHERE job_id = ?", [job_id]
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant.name)
        row = self.store.conn.execute(sql, args).fetchone()
        if row is None:
            raise UnknownNameError("job", job_id, [])
        return _record(row)

    def tenant_of(self, job_id: str) -> TenantContract:
        """Operator use: the contract of the tenant owning ``job_id``."""
        return get_tenant(self.store, self.get(None, job_id).tenant)

    def status(self, tenant: TenantContract, job_id: str) -> JobRecord:
        record = self.get(tenant, job_id)
        if record.backend_job_id is None:
            return record
        live = self.backend(record.backend).status(tenant, record.backend_job_id)
        self._update_state(record.job_id, live.state.value)
        return dataclasses.replace(record, state=live.state.value, live=live)

    def list(
        self, tenant: TenantContract | None = None, *, refresh: bool = True, limit: int = 500
    ) -> list[JobRecord]:
        """Jobs of ``tenant`` (operator: of all tenants), newest first, refreshed when asked."""
        if refresh and tenant is not None:
            self.refresh(tenant)
        sql, args = "SELECT * FROM jobs", []
        if tenant is not None:
            sql += " WHERE tenant = ?"
            args.append(tenant.name)
        sql += " ORDER BY submitted_at DESC LIMIT ?"
        args.append(str(limit))
        return [_record(r) for r in self.store.conn.execute(sql, args)]

    def refresh(self, tenant: TenantContract) -> int:
        """Update the tenant's active rows from the schedulers; returns the live GPUs in use."""
        rows = self.store.conn.execute(
            f"SELECT job_id, backend, backend_job_id FROM jobs WHERE tenant = ?"
            f" AND state IN ({','.join('?' * len(_ACTIVE))})",
            (tenant.name, *_ACTIVE),
        ).fetchall()
        by_family: dict[str, list[sqlite3.Row]] = {}
        for row in rows:
            by_family.setdefault(FAMILIES.get(row["backend"], row["backend"]), []).append(row)
        live_gpus = 0
        for family_rows in by_family.values():
            backend = self.backend(family_rows[0]["backend"])
            live = {j.backend_job_id: j for j in backend.list(tenant, active_only=True)}
            live_gpus += sum(j.gpus for j in live.values())
            for row in family_rows:
                if row["backend_job_id"] is None:
                    continue  # a submission in flight keeps its reservation
                if row["backend_job_id"] not in live:
                    try:
                        state = backend.status(tenant, row["backend_job_id"]).state.value
                    except UnknownNameError:
                        state = JobState.UNKNOWN.value
                    self._update_state(row["job_id"], state)
                else:
                    self._update_state(row["job_id"], live[row["backend_job_id"]].state.value)
        return live_gpus

    def _update_state(self, job_id: str, state: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, updated_at = ? WHERE job_id = ? AND state != ?",
                (state, utc_now(), job_id, state),
            )

    def logs(self, tenant: TenantContract, job_id: str, *, tail_bytes: int = 65536) -> str:
        record = self.get(tenant, job_id)
        if record.backend_job_id is None:
            raise InputError(f"job {job_id} was not submitted ({record.state})")
        return self.backend(record.backend).logs(
            tenant, record.backend_job_id, tail_bytes=tail_bytes
        )

    def gpus_in_use(self, tenant: TenantContract) -> int:
        """GPUs of the tenant's active jobs, live from the schedulers."""
        return self.refresh(tenant)

    # --- cancel ------------------------------------------------------------------------

    def cancel(self, tenant: TenantContract, job_id: str) -> JobRecord:
        record = self.get(tenant, job_id)
        if record.backend_job_id is None:
            raise InputError(f"job {job_id} was not submitted ({record.state})")
        try:
            self.backend(record.backend).cancel(tenant, record.backend_job_id)
        except DcopsError as exc:
            self.audit.record(
                "job.cancel",
                f"job:{job_id}",
                outcome="failed",
                evidence={"tenant": tenant.name, "error": str(exc)},
            )
            raise
        self.audit.record(
            "job.cancel",
            f"job:{job_id}",
            outcome="ok",
            evidence={
                "tenant": tenant.name,
                "backend": record.backend,
                "backend_job_id": record.backend_job_id,
            },
        )
        self._update_state(job_id, JobState.CANCELLED.value)
        return self.get(tenant, job_id)

"""A job's log files: where Slurm writes them, and a bounded read confined to the tenant.

Logs are the job's ``--output``/``--error`` files, which the renderer puts in
the tenant's workdir; a path outside the tenant's output roots is never read,
and the read is bounded (``tail -c``), run as the job's Unix user by the backend.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Protocol

from dcops.errors import InputError, UnknownNameError
from scheduler.backends.base import JobStatus
from scheduler.guards import normalize_abs
from scheduler.tenants.contract import TenantContract


def expand_output_pattern(pattern: str, job_id: str, name: str, user: str) -> str:
    """Slurm's filename pattern: %j/%A job id, %x name, %u user, %% percent."""
    table = {"j": job_id, "A": job_id, "x": name, "u": user, "%": "%", "a": "4294967294"}
    return re.sub(r"%([jAxua%])", lambda m: table[m.group(1)], pattern)


def confined_log_path(tenant: TenantContract, path: str) -> str | None:
    """``path`` normalized if it lies under one of the tenant's output roots, else None."""
    if not path.startswith("/"):
        return None
    norm = normalize_abs(path)
    for root in tenant.output_roots:
        if PurePosixPath(norm).is_relative_to(root):
            return norm
    return None


class TailReader(Protocol):
    def read_tail(self, user: str, path: str, tail_bytes: int) -> str | None: ...


def log_paths(status: JobStatus, user: str) -> list[str]:
    """The stdout/stderr files of a job, from squeue or from the renderer's convention."""
    extra = status.extra
    patterns = [str(extra.get("stdout") or ""), str(extra.get("stderr") or "")]
    if not any(patterns):
        workdir = str(extra.get("workdir") or "")
        if not workdir:
            return []
        patterns = [f"{workdir}/%x-%j.out", f"{workdir}/%x-%j.err"]
    paths = []
    for pattern in patterns:
        if pattern:
            path = expand_output_pattern(pattern, status.backend_job_id, status.name, user)
            if path not in paths:
                paths.append(path)
    return paths


def read_job_logs(
    reader: TailReader, tenant: TenantContract, status: JobStatus, *, tail_bytes: int = 65536
) -> str:
    """Bounded stdout/stderr of an owned job, read as its user, confined to the output roots."""
    if not 1 <= tail_bytes <= 16 * 1024 * 1024:
        raise InputError("tail_bytes: must be 1..16 MiB")
    user = str(status.extra.get("user") or tenant.unix_user)
    if user not in tenant.unix_users:
        raise UnknownNameError("job", status.backend_job_id, [])
    parts = []
    for path in log_paths(status, user):
        confined = confined_log_path(tenant, path)
        if confined is None:
            parts.append(f"==> {path} <== (outside the tenant's output roots: not read)\n")
            continue
        text = reader.read_tail(user, confined, tail_bytes)
        parts.append(f"==> {confined} <==\n" + ("(not readable yet)\n" if text is None else text))
    if not parts:
        return "(no log files known for this job)\n"
    return "".join(parts)

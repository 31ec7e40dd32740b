"""``slurm-cli``: the scheduler port over Slurm's own commands, acting as the tenant.

Identity model:

* ``sbatch``, ``scancel`` and log reads run **as the tenant's Unix user**
  (``contract.unix_user``), so Slurm itself checks the account association and
  job ownership, and the kernel checks file permissions; how dcops becomes that
  user, with a clean environment, is :mod:`scheduler.slurm.users`.
* ``squeue``/``sacct --json`` run as dcops (read-only) and are filtered twice:
  by ``--account``/``--user`` on the command line and again here
  (:func:`scheduler.slurm.jobs.owns`); a job whose account is not the tenant's
  or whose user is not one of its Unix users does not exist for that tenant
  (:class:`~dcops.errors.UnknownNameError`).
* Logs are read bounded and confined to the tenant's output roots
  (:mod:`scheduler.slurm.logs`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from dcops.errors import SchedulerError, UnknownNameError
from dcops.measurements import CommandResult
from dcops.ports import RemoteRunner
from dcops.slurm.commands import DEFAULT_MAX_OUTPUT_BYTES, SlurmCommands, first_line
from dcops.slurm.parse import SlurmJob, parse_jobs
from scheduler.backends.base import (
    BackendFeature,
    JobStatus,
    Submission,
    register_backend,
    total_gpus,
)
from scheduler.slurm.jobs import (
    JOB_ID,
    SLURM_STATES,
    check_job_id,
    live_gpus,
    owns,
    status_fields,
    to_status,
)
from scheduler.slurm.logs import read_job_logs
from scheduler.slurm.render import SlurmSite, render_slurm
from scheduler.slurm.users import UserSwitch
from scheduler.tenants.contract import AdmittedJob, TenantContract

#: The state table under its old name, read by the pyslurm backend.
_STATES = SLURM_STATES

# UserSwitch, check_job_id and read_job_logs live in scheduler.slurm; they are
# exported here too because the pyslurm backend and bench_bridge import them from here.
__all__ = [
    "SlurmCliBackend",
    "UserSwitch",
    "check_available",
    "check_job_id",
    "read_job_logs",
    "site_from_sbatch_version",
]


@register_backend("slurm-cli")
class SlurmCliBackend:
    """Slurm through sbatch/squeue/sacct/scancel run on this host."""

    name = "slurm-cli"
    features = frozenset(
        {
            BackendFeature.SUBMIT,
            BackendFeature.STATUS,
            BackendFeature.LIST,
            BackendFeature.LOGS,
            BackendFeature.CANCEL,
            BackendFeature.QUOTA_ENFORCED,
        }
    )

    def __init__(
        self,
        *,
        slurm_conf: str | None = None,
        site: SlurmSite | None = None,
        runner: RemoteRunner | None = None,
        switch_user: str = "auto",
        timeout_s: float = 60.0,
        history_days: int = 7,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> None:
        """``runner``: what starts the commands (default: this machine's LocalRunner)."""
        self.slurm_conf = slurm_conf or os.environ.get("SLURM_CONF")
        self._site = site
        self.commands = SlurmCommands(
            slurm_conf=self.slurm_conf,
            runner=runner,
            timeout_s=timeout_s,
            max_output_bytes=max_output_bytes,
            drop_inherited_slurm=True,
        )
        self.switch = UserSwitch(switch_user, self.slurm_conf)
        self.timeout_s = timeout_s
        self.history_days = history_days

    # --- plumbing ----------------------------------------------------------------------

    def _as_tenant(
        self,
        tenant_user: str,
        argv: Sequence[str],
        *,
        input_text: str | None = None,
        cwd: str = "/",
    ) -> CommandResult:
        return self.commands.run(
            self.switch.argv(tenant_user, argv),
            stdin=input_text,
            env=self.switch.env(tenant_user),
            clean_env=True,
            cwd=cwd,
        )

    def _query(self, argv: Sequence[str]) -> tuple[list[SlurmJob], list[Mapping[str, Any]]]:
        result = self.commands.run(argv, cwd="/")
        if result.returncode != 0:
            if "Invalid job id" in result.stderr:
                return [], []
            raise SchedulerError(f"{argv[0]} failed: {first_line(result.stderr, result.stdout)}")
        try:
            doc = json.loads(result.stdout)
        except ValueError as exc:
            raise SchedulerError(f"{argv[0]} --json printed no JSON") from exc
        raw = doc.get("jobs") if isinstance(doc, dict) else None
        return parse_jobs(doc), [r for r in raw or [] if isinstance(r, Mapping)]

    def site(self) -> SlurmSite:
        if self._site is None:
            result = self.commands.run(["sbatch", "--version"])
            self._site = site_from_sbatch_version(result.stdout or result.stderr)
        return self._site

    def _filters(self, tenant: TenantContract) -> list[str]:
        return [f"--account={tenant.slurm_account}", f"--user={','.join(tenant.unix_users)}"]

    def _live(self, tenant: TenantContract, job_id: str | None = None) -> list[JobStatus]:
        argv = ["squeue", "--json", "--all", *self._filters(tenant)]
        if job_id is not None:
            argv.append(f"--jobs={job_id}")
        jobs, raw = self._query(argv)
        out = []
        for job, doc in zip(jobs, raw, strict=False):
            if owns(tenant, job) and (job_id is None or str(job.job_id) == job_id):
                status = to_status(self.name, tenant, job)
                gpus = live_gpus(job, doc)
                out.append(
                    JobStatus(
                        **{
                            **status_fields(status),
                            "gpus": gpus,
                            "extra": {
                                **status.extra,
                                "stdout": str(doc.get("standard_output") or ""),
                                "stderr": str(doc.get("standard_error") or ""),
                                "workdir": str(doc.get("current_working_directory") or ""),
                            },
                        }
                    )
                )
        return out

    def _history(self, tenant: TenantContract, job_id: str | None = None) -> list[JobStatus]:
        argv = ["sacct", "--json", *_sacct_filters(tenant)]
        if job_id is not None:
            argv.append(f"--jobs={job_id}")
        else:
            argv.append(f"--starttime=now-{self.history_days}days")
        jobs, raw = self._query(argv)
        out = []
        for job, doc in zip(jobs, raw, strict=False):
            if owns(tenant, job) and (job_id is None or str(job.job_id) == job_id):
                status = to_status(self.name, tenant, job)
                out.append(
                    JobStatus(
                        **{
                            **status_fields(status),
                            "extra": {
                                **status.extra,
                                "workdir": str(doc.get("working_directory") or ""),
                            },
                        }
                    )
                )
        return out

    # --- the port ----------------------------------------------------------------------

    def render(self, job: AdmittedJob) -> str:
        return render_slurm(job, self.site()).script

    def submit(self, job: AdmittedJob) -> Submission:
        sub = render_slurm(job, self.site())
        cwd = job.workdir if os.path.isdir(job.workdir) else "/"
        # The options go on the command line, where the script cannot override them.
        result = self._as_tenant(
            sub.user, ["sbatch", "--parsable", *sub.sbatch_args], input_text=sub.script, cwd=cwd
        )
        job_id = result.stdout.strip().split(";")[0]
        if result.returncode != 0 or not JOB_ID.fullmatch(job_id):
            raise SchedulerError(
                f"sbatch as {sub.user} refused the job: {first_line(result.stderr, result.stdout)}"
            )
        return Submission(self.name, job_id, sub.script, sub.notes)

    def status(self, tenant: TenantContract, backend_job_id: str) -> JobStatus:
        job_id = check_job_id(backend_job_id)
        found = self._live(tenant, job_id) or self._history(tenant, job_id)
        if not found:
            raise UnknownNameError("job", job_id, [])
        return found[0]

    def list(self, tenant: TenantContract, *, active_only: bool = False) -> list[JobStatus]:
        live = self._live(tenant)
        if active_only:
            return live
        seen = {j.backend_job_id for j in live}
        old = [j for j in self._history(tenant) if j.backend_job_id not in seen]
        return sorted([*live, *old], key=lambda j: int(j.backend_job_id))

    def cancel(self, tenant: TenantContract, backend_job_id: str) -> None:
        status = self.status(tenant, backend_job_id)  # not found for another tenant's id
        if not status.active:
            return
        user = str(status.extra.get("user") or tenant.unix_user)
        result = self._as_tenant(user, ["scancel", status.backend_job_id])
        if result.returncode != 0:
            raise SchedulerError(
                f"scancel {status.backend_job_id} failed: {first_line(result.stderr)}"
            )

    def logs(self, tenant: TenantContract, backend_job_id: str, *, tail_bytes: int = 65536) -> str:
        status = self.status(tenant, backend_job_id)
        return read_job_logs(self, tenant, status, tail_bytes=tail_bytes)

    def gpus_in_use(self, tenant: TenantContract) -> int:
        return total_gpus(self._live(tenant))

    def read_tail(self, user: str, path: str, tail_bytes: int) -> str | None:
        """The last ``tail_bytes`` of ``path`` read as ``user``; None if it cannot be read."""
        result = self._as_tenant(user, ["tail", "-c", str(tail_bytes), "--", path])
        if result.returncode != 0:
            return None
        return result.stdout


def site_from_sbatch_version(text: str) -> SlurmSite:
    """``slurm-wlm 22.05.8`` / ``slurm 24.11.1`` -> the site's capabilities."""
    match = re.search(r"(\d+)\.(\d+)", text)
    if match is None:
        raise SchedulerError(
            f"sbatch --version printed no version ({first_line(text)!r}): Slurm is not "
            "installed or not configured here; point SLURM_CONF or the config's "
            "[slurm] conf at its slurm.conf"
        )
    return SlurmSite.for_version(int(match.group(1)), int(match.group(2)))


def _sacct_filters(tenant: TenantContract) -> list[str]:
    return [f"--accounts={tenant.slurm_account}", f"--user={','.join(tenant.unix_users)}"]


def check_available() -> str | None:
    """None when the Slurm commands are on PATH, else why not."""
    missing = [c for c in ("sbatch", "squeue", "sacct", "scancel") if shutil.which(c) is None]
    return f"not on PATH: {', '.join(missing)}" if missing else None

"""``slurm-pyslurm``: the scheduler port through pyslurm, when it imports and matches Slurm.

pyslurm X.Y.Z is built against Slurm X.Y and only works with it, so this
backend is *selected*, never assumed: :func:`check_available` says why it
cannot be used (not installed, or built for another Slurm than ``sbatch
--version`` reports) and :func:`scheduler.backends.base.availability` reports
that; nothing is raised at import.

pyslurm talks to slurmctld as the calling process, so it cannot act as the
tenant's Unix user the way ``slurm-cli`` does. Submission therefore sets
``user_id``/``group_id`` of the job description to the tenant's user, which
slurmctld accepts only from root or SlurmUser; reads and cancels are checked
against the tenant contract here (account and user) before anything is done.
Logs are read as the tenant user like ``slurm-cli``.

UNTESTED: no test rig runs a Slurm that a pyslurm on PyPI matches (PyPI carries
25.11.x; the rigs run Debian's 22.05 and a built 24.11), so this backend is kept
for sites that have one, listed last and marked untested in ``--help``, the docs
and ``dcops jobs backends`` (:data:`scheduler.backends.base.UNTESTED_WHY`). The
reading side goes through :mod:`dcops.slurm.parse`-equivalent normalization of
pyslurm's ``to_dict()``.
"""

from __future__ import annotations

import importlib
import pwd
import re
from typing import Any

from dcops.errors import DcopsError, SchedulerError, UnknownNameError
from dcops.jobstate import JobState
from dcops.slurm.commands import SlurmCommands
from scheduler.backends.base import (
    BackendFeature,
    JobStatus,
    Submission,
    register_backend,
    total_gpus,
)
from scheduler.backends.slurm_cli import (
    SlurmCliBackend,
    check_job_id,
    read_job_logs,
)
from scheduler.slurm.render import SlurmSite, render_slurm
from scheduler.tenants.contract import AdmittedJob, TenantContract


def _pyslurm() -> Any:
    try:
        return importlib.import_module("pyslurm")
    except ImportError as exc:
        raise SchedulerError(f"pyslurm is not importable: {exc}") from exc


def installed_slurm_version(slurm: SlurmCommands | None = None) -> str | None:
    """MAJOR.MINOR of the Slurm client here (``sbatch --version``), None when there is none."""
    commands = slurm if slurm is not None else SlurmCommands(timeout_s=10.0)
    try:
        out = commands.output(["sbatch", "--version"])
    except DcopsError:
        return None
    match = re.search(r"(\d+)\.(\d+)", out)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def check_available() -> str | None:
    """None when pyslurm imports and matches the installed Slurm MAJOR.MINOR, else why not."""
    try:
        module = importlib.import_module("pyslurm")
    except ImportError:
        return "pyslurm is not installed (pip install 'dcops[pyslurm]' matching your Slurm)"
    version = str(getattr(module, "__version__", ""))
    slurm = installed_slurm_version()
    if slurm is None:
        return "no Slurm installation found (sbatch --version)"
    if not version.startswith(slurm + "."):
        return f"pyslurm {version or '?'} does not match Slurm {slurm}"
    return None


@register_backend("slurm-pyslurm")
class PyslurmBackend:
    """Slurm through pyslurm's ``JobSubmitDescription`` / ``Job`` / ``Jobs``."""

    name = "slurm-pyslurm"
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

    def __init__(self, *, site: SlurmSite | None = None, switch_user: str = "auto") -> None:
        why = check_available()
        if why is not None:
            raise SchedulerError(f"slurm-pyslurm is unavailable: {why}")
        self.pyslurm = _pyslurm()
        self.site = site or SlurmSite(supports_segment=False, pyxis=False)
        self._files = SlurmCliBackend(switch_user=switch_user)  # for reading logs as the tenant

    def submit(self, job: AdmittedJob) -> Submission:
        sub = render_slurm(job, self.site)
        entry = pwd.getpwnam(sub.user)
        desc = self.pyslurm.JobSubmitDescription(
            script=sub.script,
            user_id=entry.pw_uid,
            group_id=entry.pw_gid,
            environment={"PATH": "/usr/local/bin:/usr/bin:/bin", **sub.env},
        )
        # The header is the bridge's alone: render_slurm closes the directive zone with
        # an executable line before any tenant text, so no tenant line is read here.
        desc.load_sbatch_options()
        try:
            job_id = desc.submit()
        except self.pyslurm.RPCError as exc:
            raise SchedulerError(f"pyslurm refused the job: {exc}") from exc
        return Submission(self.name, str(job_id), sub.script, sub.notes)

    def _status(self, tenant: TenantContract, job: Any) -> JobStatus | None:
        data = job.to_dict()
        if data.get("account") != tenant.slurm_account:
            return None
        if data.get("user_name") not in tenant.unix_users:
            return None
        state = str(data.get("state") or "UNKNOWN").upper()
        from scheduler.backends.slurm_cli import _STATES

        return JobStatus(
            backend=self.name,
            backend_job_id=str(data.get("id")),
            tenant=tenant.name,
            name=str(data.get("name") or ""),
            state=_STATES.get(state, JobState.UNKNOWN),
            reason=str(data.get("state_reason") or ""),
            gpus=int((data.get("gpus_per_node") or 0) or 0) * int(data.get("num_nodes") or 1),
            nodes=str(data.get("nodes") or ""),
            extra={
                "account": data.get("account"),
                "user": data.get("user_name"),
                "stdout": str(data.get("standard_output") or ""),
                "stderr": str(data.get("standard_error") or ""),
                "workdir": str(data.get("working_directory") or ""),
            },
        )

    def status(self, tenant: TenantContract, backend_job_id: str) -> JobStatus:
        job_id = check_job_id(backend_job_id)
        try:
            job = self.pyslurm.Job.load(int(job_id))
        except self.pyslurm.RPCError as exc:
            raise UnknownNameError("job", job_id, []) from exc
        status = self._status(tenant, job)
        if status is None:
            raise UnknownNameError("job", job_id, [])
        return status

    def list(self, tenant: TenantContract, *, active_only: bool = False) -> list[JobStatus]:
        out = []
        for job in self.pyslurm.Jobs.load().values():
            status = self._status(tenant, job)
            if status is not None and (status.active or not active_only):
                out.append(status)
        return out

    def cancel(self, tenant: TenantContract, backend_job_id: str) -> None:
        status = self.status(tenant, backend_job_id)
        if status.active:
            self.pyslurm.Job(int(status.backend_job_id)).cancel()

    def logs(self, tenant: TenantContract, backend_job_id: str, *, tail_bytes: int = 65536) -> str:
        return read_job_logs(
            self._files, tenant, self.status(tenant, backend_job_id), tail_bytes=tail_bytes
        )

    def gpus_in_use(self, tenant: TenantContract) -> int:
        return total_gpus(self.list(tenant, active_only=True))

"""``slurm-cli``: the scheduler port over Slurm's own commands, acting as the tenant.

Identity model (documented in README "Scheduler bridge"):

* ``sbatch``, ``scancel`` and log reads run **as the tenant's Unix user**
  (``contract.unix_user``), so Slurm itself checks the account association and
  job ownership, and the kernel checks file permissions. How we become that user:

  - dcops runs as the tenant user already: the command runs directly;
  - dcops runs as root (the bridge host): ``runuser -u USER --`` (PAM limits
    apply, no password) or ``setpriv`` (no PAM, cheapest) -- ``switch_user``;
  - otherwise: ``sudo -n -u USER --`` (needs a sudoers rule for sbatch, scancel
    and tail; without it the command fails with a clear error).

  The child gets a clean environment (PATH, HOME, USER, LOGNAME, LANG and
  SLURM_CONF only): nothing of the operator's environment reaches a tenant job.
* ``squeue``/``sacct --json`` run as dcops (read-only) and are filtered twice:
  by ``--account``/``--user`` on the command line and again here; a job whose
  account is not the tenant's or whose user is not one of its Unix users does
  not exist for that tenant (:class:`~dcops.errors.UnknownNameError`).
* Logs are the job's ``--output``/``--error`` files, which the renderer puts in
  the tenant's workdir; a path outside the tenant's output roots is never read,
  and the read is bounded (``tail -c``).
"""

from __future__ import annotations

import getpass
import json
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol

from dcops.errors import InputError, SchedulerError, UnknownNameError
from dcops.jobstate import JobState
from dcops.slurm.parse import SlurmJob, parse_jobs
from scheduler.backends.base import (
    BackendFeature,
    JobStatus,
    Submission,
    register_backend,
    total_gpus,
)
from scheduler.guards import normalize_abs
from scheduler.slurm.render import SlurmSite, render_slurm
from scheduler.tenants.contract import AdmittedJob, TenantContract

_JOB_ID = re.compile(r"[0-9]{1,12}")
SWITCH_USER_METHODS = ("auto", "runuser", "setpriv", "sudo", "none")

_STATES: dict[str, JobState] = {
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


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    """Runs one argv (no shell) and returns its result; never raises for a non-zero exit."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        input_text: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout_s: float = 60.0,
    ) -> RunResult: ...


def subprocess_runner(
    argv: Sequence[str],
    *,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout_s: float = 60.0,
) -> RunResult:
    """The real runner: :func:`subprocess.run`, errors wrapped as SchedulerError."""
    try:
        proc = subprocess.run(
            list(argv),
            input=input_text,
            env=None if env is None else dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SchedulerError(f"{argv[0]}: command not found (is Slurm installed?)") from exc
    except subprocess.TimeoutExpired as exc:
        raise SchedulerError(f"{argv[0]}: no answer within {timeout_s:g} s") from exc
    except OSError as exc:
        raise SchedulerError(f"{argv[0]}: {exc.strerror or exc}") from exc
    return RunResult(proc.returncode, proc.stdout, proc.stderr)


def first_line(*texts: str) -> str:
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                return line.strip()[:300]
    return "no output"


# --- shared with the other Slurm backends ----------------------------------------------


def check_job_id(backend_job_id: str) -> str:
    """A Slurm job id as the bridge accepts it (digits only), else 'not found'."""
    text = str(backend_job_id).strip()
    if not _JOB_ID.fullmatch(text):
        raise UnknownNameError("job", str(backend_job_id)[:40], [])
    return text


def owns(tenant: TenantContract, job: SlurmJob) -> bool:
    """A Slurm job belongs to ``tenant``: its account and one of its Unix users."""
    return job.account == tenant.slurm_account and job.user in tenant.unix_users


def to_status(backend: str, tenant: TenantContract, job: SlurmJob) -> JobStatus:
    state = _STATES.get(job.state, JobState.UNKNOWN)
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


class UserSwitch:
    """How to run a command as another Unix user (see the module docstring)."""

    def __init__(self, method: str = "auto", slurm_conf: str | None = None) -> None:
        if method not in SWITCH_USER_METHODS:
            raise InputError(f"switch_user: {method!r} (known: {', '.join(SWITCH_USER_METHODS)})")
        self.method = method
        self.slurm_conf = slurm_conf

    def env(self, user: str) -> dict[str, str]:
        try:
            entry = pwd.getpwnam(user)
        except KeyError as exc:
            raise SchedulerError(f"unix user {user!r} does not exist on this host") from exc
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": entry.pw_dir,
            "USER": user,
            "LOGNAME": user,
            "LANG": "C.UTF-8",
        }
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return env

    def argv(self, user: str, argv: Sequence[str]) -> list[str]:
        method = self.method
        if method == "none" or user == _current_user():
            return list(argv)
        if method == "auto":
            method = "runuser" if os.geteuid() == 0 else "sudo"
        if method == "runuser":
            return [_tool("runuser"), "-u", user, "--", *argv]
        if method == "setpriv":
            entry = pwd.getpwnam(user)
            return [
                _tool("setpriv"),
                f"--reuid={entry.pw_uid}",
                f"--regid={entry.pw_gid}",
                "--init-groups",
                "--",
                *argv,
            ]
        # sudo resets the environment: pass SLURM_CONF explicitly.
        extra = [f"SLURM_CONF={self.slurm_conf}"] if self.slurm_conf else []
        return [_tool("sudo"), "-n", "-u", user, "--", "env", *extra, *argv]


def _tool(name: str) -> str:
    """Absolute path of a user-switch tool (the child's clean PATH lacks /usr/sbin)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin") or name


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


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
        runner: CommandRunner | None = None,
        switch_user: str = "auto",
        timeout_s: float = 60.0,
        history_days: int = 7,
    ) -> None:
        self.slurm_conf = slurm_conf or os.environ.get("SLURM_CONF")
        self._site = site
        self.run: CommandRunner = runner or subprocess_runner
        self.switch = UserSwitch(switch_user, self.slurm_conf)
        self.timeout_s = timeout_s
        self.history_days = history_days

    # --- plumbing ----------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return env

    def _as_tenant(
        self,
        tenant_user: str,
        argv: Sequence[str],
        *,
        input_text: str | None = None,
        cwd: str = "/",
    ) -> RunResult:
        return self.run(
            self.switch.argv(tenant_user, argv),
            input_text=input_text,
            env=self.switch.env(tenant_user),
            cwd=cwd,
            timeout_s=self.timeout_s,
        )

    def _query(self, argv: Sequence[str]) -> tuple[list[SlurmJob], list[Mapping[str, Any]]]:
        result = self.run(argv, env=self._env(), cwd="/", timeout_s=self.timeout_s)
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
            result = self.run(["sbatch", "--version"], env=self._env(), timeout_s=self.timeout_s)
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
                            **_fields(status),
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
                            **_fields(status),
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
        if result.returncode != 0 or not _JOB_ID.fullmatch(job_id):
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


def _fields(status: JobStatus) -> dict[str, Any]:
    return {f: getattr(status, f) for f in JobStatus.__dataclass_fields__}


def _sacct_filters(tenant: TenantContract) -> list[str]:
    return [f"--accounts={tenant.slurm_account}", f"--user={','.join(tenant.unix_users)}"]


def check_available() -> str | None:
    """None when the Slurm commands are on PATH, else why not."""
    missing = [c for c in ("sbatch", "squeue", "sacct", "scancel") if shutil.which(c) is None]
    return f"not on PATH: {', '.join(missing)}" if missing else None

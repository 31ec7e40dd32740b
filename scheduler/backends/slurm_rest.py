"""``slurm-rest``: the scheduler port over slurmrestd, each call with the tenant's own JWT.

Every request carries ``X-SLURM-USER-NAME: <tenant unix user>`` and
``X-SLURM-USER-TOKEN: <JWT minted for that user>``: slurmrestd then acts as
that user, so Slurm checks the account association and job ownership exactly
as for ``sbatch``. Tokens come from a :class:`TokenSource` (default:
``scontrol token username=U lifespan=S`` on the bridge host, cached until a
minute before expiry). Tokens never appear in errors or logs.

The API version is detected from the server (``GET /openapi/v3`` paths, else
``/slurm/vX/ping`` newest first) and the request/response shapes follow it:

* v0.0.38 (Slurm 22.05): ``environment`` a mapping, ``nodes`` ``[min, max]``,
  plain integers (minutes, MiB), ``script`` beside ``job``, GPUs as ``gres``;
* v0.0.39 .. v0.0.45 (data_parser): ``environment`` a ``K=V`` list,
  ``minimum_nodes``/``maximum_nodes``, ``{set, infinite, number}`` integers,
  ``tres_per_node`` ``gres/gpu:N``; from v0.0.41 the script goes in
  ``job.script`` and ``--segment`` is ``segment_size``; the submit answer may nest
  ``job_id`` in ``result``.

Job JSON of every version is normalized by :mod:`dcops.slurm.parse`.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dcops.errors import InputError, SchedulerError, UnknownNameError
from dcops.ports import RemoteRunner
from dcops.slurm.commands import SlurmCommands, first_line
from dcops.slurm.parse import parse_jobs, response_errors
from scheduler.backends.base import (
    BackendFeature,
    JobStatus,
    Submission,
    register_backend,
    total_gpus,
)
from scheduler.slurm.jobs import check_job_id, live_gpus, owns, to_status
from scheduler.slurm.logs import read_job_logs
from scheduler.slurm.render import SlurmSite, SlurmSubmission, render_slurm
from scheduler.slurm.users import UserSwitch
from scheduler.tenants.contract import AdmittedJob, TenantContract

#: data_parser / openapi versions this backend speaks, oldest first.
SUPPORTED_VERSIONS = (
    "0.0.38",
    "0.0.39",
    "0.0.40",
    "0.0.41",
    "0.0.42",
    "0.0.43",
    "0.0.44",
    "0.0.45",
)
#: The first version whose job description has ``segment_size`` (``--segment``): v0.0.41,
#: in every slurmrestd schema captured in tests/data (24.05, 24.11, 25.05, 25.11).
SEGMENT_SIZE_SINCE = (0, 0, 41)
_SUBMIT_PATH = re.compile(r"^/slurm/v(0\.0\.\d+)/job/submit/?$")


def _vtuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def versions_in_openapi(doc: object) -> list[str]:
    """Versions whose ``/slurm/vX/job/submit`` the server's OpenAPI document lists."""
    paths = doc.get("paths") if isinstance(doc, Mapping) else None
    if not isinstance(paths, Mapping):
        raise SchedulerError("slurmrestd /openapi/v3 answered without 'paths'")
    found = {m.group(1) for p in paths if (m := _SUBMIT_PATH.match(str(p)))}
    return sorted(found, key=_vtuple)


def pick_version(available: list[str]) -> str:
    """The newest version both sides speak."""
    usable = [v for v in available if v in SUPPORTED_VERSIONS]
    if not usable:
        raise SchedulerError(
            f"slurmrestd offers {', '.join(available) or 'no job API'}; this dcops speaks "
            f"{SUPPORTED_VERSIONS[0]}..{SUPPORTED_VERSIONS[-1]}"
        )
    return max(usable, key=_vtuple)


def _no_val(n: int) -> dict[str, Any]:
    return {"set": True, "infinite": False, "number": n}


def _minutes(time_text: str) -> int:
    """``D-HH:MM:SS`` -> minutes, rounded up (Slurm's time_limit unit)."""
    days, _, clock = time_text.partition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    seconds = ((int(days) * 24 + h) * 60 + m) * 60 + s
    return max(1, -(-seconds // 60))


def job_description(sub: SlurmSubmission, version: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The submit request body for ``sub`` in the shapes of ``version`` (pure)."""
    old = version == "0.0.38"
    new_int = (lambda n: n) if old else _no_val
    job: dict[str, Any] = {}
    environment = {**env, **sub.env}
    job["environment"] = (
        dict(environment) if old else [f"{k}={v}" for k, v in sorted(environment.items())]
    )
    for key, value in sub.options:
        if key == "job-name":
            job["name"] = value
        elif key in ("account", "qos", "partition"):
            job[key] = value
        elif key == "nodes":
            n = int(str(value))
            if old:
                job["nodes"] = [n, n]
            else:
                job["minimum_nodes"] = n
                job["maximum_nodes"] = n
        elif key == "ntasks-per-node":
            job["tasks_per_node"] = int(str(value))
        elif key == "cpus-per-task":
            job["cpus_per_task"] = int(str(value))
        elif key == "gres":
            per_node = str(value).rsplit(":", 1)[-1]
            if old:
                job["gres"] = f"gpu:{per_node}"
            else:
                job["tres_per_node"] = f"gres/gpu:{per_node}"
        elif key == "mem":
            job["memory_per_node"] = new_int(int(str(value).rstrip("M")))
        elif key == "time":
            job["time_limit"] = new_int(_minutes(str(value)))
        elif key == "chdir":
            job["current_working_directory"] = value
        elif key == "output":
            job["standard_output"] = value
        elif key == "error":
            job["standard_error"] = value
        elif key in ("requeue", "no-requeue"):
            job["requeue"] = key == "requeue"
        elif key == "constraint":
            job["constraints"] = value
        elif key == "segment" and _vtuple(version) >= SEGMENT_SIZE_SINCE:
            job["segment_size"] = int(str(value))
        else:
            raise InputError(
                f"the job needs --{key}, which slurmrestd v{version} cannot express; "
                "submit it with the slurm-cli backend"
            )
    if _vtuple(version) >= (0, 0, 41):
        job["script"] = sub.script
        return {"job": job}
    return {"script": sub.script, "job": job}


def submitted_job_id(doc: object) -> str:
    """The job id of a submit answer (``job_id``, or ``result.job_id`` in v0.0.41+)."""
    errors = response_errors(doc)
    data = doc if isinstance(doc, Mapping) else {}
    result = data.get("result")
    job_id = data.get("job_id")
    if job_id is None and isinstance(result, Mapping):
        job_id = result.get("job_id")
    if errors and not job_id:
        raise SchedulerError(f"slurmrestd refused the job: {errors[0]}")
    if not isinstance(job_id, int) or isinstance(job_id, bool) or job_id <= 0:
        raise SchedulerError("slurmrestd answered the submission without a job id")
    return str(job_id)


class TokenSource(Protocol):
    def token(self, user: str) -> str:
        """A JWT that slurmrestd accepts for ``user``."""
        ...


class ScontrolTokens:
    """Mints per-user JWTs with ``scontrol token`` (needs root or SlurmUser), cached."""

    def __init__(
        self,
        *,
        lifespan_s: int = 900,
        slurm_conf: str | None = None,
        runner: RemoteRunner | None = None,
    ) -> None:
        self.lifespan_s = lifespan_s
        self.slurm_conf = slurm_conf or os.environ.get("SLURM_CONF")
        self.commands = SlurmCommands(
            slurm_conf=self.slurm_conf, runner=runner, drop_inherited_slurm=True
        )
        self._cache: dict[str, tuple[str, float]] = {}

    def token(self, user: str) -> str:
        cached = self._cache.get(user)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        result = self.commands.run(
            ["scontrol", "token", f"username={user}", f"lifespan={self.lifespan_s}"]
        )
        for line in result.stdout.splitlines():
            if line.startswith("SLURM_JWT="):
                tok = line.split("=", 1)[1].strip()
                self._cache[user] = (tok, time.monotonic() + max(self.lifespan_s - 60, 1))
                return tok
        raise SchedulerError(
            f"scontrol token for {user} failed: "
            f"{first_line(result.stderr) if result.stderr else 'no token printed'}"
        )


class HttpTransport(Protocol):
    def __call__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> tuple[int, bytes]: ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would carry the tenant's JWT to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def urllib_transport(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout_s: float
) -> tuple[int, bytes]:
    """One HTTP call; a 3xx answer is returned as it is (an error), never followed."""
    # The scheme was checked (http/https) when the backend was built.
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read() or b"")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SchedulerError(f"slurmrestd at {_origin(url)} is unreachable: {reason}") from exc


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class _Answer:
    status: int
    doc: Any


@register_backend("slurm-rest")
class SlurmRestBackend:
    """Slurm through slurmrestd, as the tenant (per-user JWT)."""

    name = "slurm-rest"
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
        url: str | None = None,
        tokens: TokenSource | None = None,
        version: str | None = None,
        transport: HttpTransport | None = None,
        site: SlurmSite | None = None,
        timeout_s: float = 30.0,
        slurm_conf: str | None = None,
        runner: RemoteRunner | None = None,
        switch_user: str = "auto",
    ) -> None:
        url = url or os.environ.get("DCOPS_SLURMRESTD_URL") or os.environ.get("SLURMRESTD_URL")
        if not url:
            raise InputError(
                "slurm-rest: give the slurmrestd URL (url=... or DCOPS_SLURMRESTD_URL)"
            )
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise InputError(f"slurm-rest: URL must be http(s)://..., got {url!r}")
        self.url = url.rstrip("/")
        self.tokens: TokenSource = tokens or ScontrolTokens(slurm_conf=slurm_conf, runner=runner)
        if version is not None and version.lstrip("v") not in SUPPORTED_VERSIONS:
            raise InputError(
                f"slurm-rest: version {version!r} (known: {', '.join(SUPPORTED_VERSIONS)})"
            )
        self._version = None if version is None else version.lstrip("v")
        self.transport: HttpTransport = transport or urllib_transport
        self.timeout_s = timeout_s
        self._site = site or SlurmSite(supports_segment=False, pyxis=False)
        self._switch = UserSwitch(switch_user, slurm_conf or os.environ.get("SLURM_CONF"))
        self._commands = SlurmCommands(slurm_conf=self._switch.slurm_conf, runner=runner)

    # --- HTTP ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, user: str, body: object | None = None) -> _Answer:
        headers = {
            "X-SLURM-USER-NAME": user,
            "X-SLURM-USER-TOKEN": self.tokens.token(user),
            "Accept": "application/json",
        }
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        status, raw = self.transport(method, self.url + path, headers, data, self.timeout_s)
        if status in (401, 403):
            raise SchedulerError(f"slurmrestd refused the credentials of {user} (HTTP {status})")
        if 300 <= status < 400:
            raise SchedulerError(
                f"slurmrestd at {_origin(self.url)} answered a redirect (HTTP {status}); "
                "dcops never follows one with credentials: point the backend's url at the "
                "server itself"
            )
        try:
            doc = json.loads(raw) if raw.strip() else None
        except ValueError:
            doc = None
        return _Answer(status, doc)

    def version(self, user: str) -> str:
        """The API version to use, detected once from the server."""
        if self._version is None:
            answer = self._call("GET", "/openapi/v3", user)
            if answer.status == 200 and isinstance(answer.doc, Mapping):
                self._version = pick_version(versions_in_openapi(answer.doc))
            else:
                for candidate in reversed(SUPPORTED_VERSIONS):
                    if self._call("GET", f"/slurm/v{candidate}/ping", user).status == 200:
                        self._version = candidate
                        break
                else:
                    raise SchedulerError("slurmrestd answers no known API version")
        return self._version

    def _jobs(self, path: str, user: str) -> tuple[list[Any], list[Mapping[str, Any]]]:
        answer = self._call("GET", path, user)
        if answer.doc is not None and not isinstance(answer.doc, Mapping):
            raise SchedulerError(f"slurmrestd GET {path}: unexpected JSON")
        if answer.doc is None:
            if answer.status == 404:
                return [], []
            raise SchedulerError(f"slurmrestd GET {path}: HTTP {answer.status} without JSON")
        jobs = parse_jobs(answer.doc) if isinstance(answer.doc.get("jobs"), list) else []
        if not jobs and answer.status >= 400:
            errors = response_errors(answer.doc)
            if answer.status == 404 or any("Invalid job id" in e for e in errors):
                return [], []
            raise SchedulerError(
                f"slurmrestd GET {path}: {errors[0] if errors else f'HTTP {answer.status}'}"
            )
        raw = [j for j in answer.doc.get("jobs") or [] if isinstance(j, Mapping)]
        return jobs, raw

    def _owned(self, tenant: TenantContract, path: str) -> list[JobStatus]:
        jobs, raw = self._jobs(path, tenant.unix_user)
        out = []
        for job, doc in zip(jobs, raw, strict=False):
            if owns(tenant, job):
                status = to_status(self.name, tenant, job)
                fields = {f: getattr(status, f) for f in JobStatus.__dataclass_fields__}
                fields["gpus"] = live_gpus(job, doc)
                fields["extra"] = {
                    **status.extra,
                    "stdout": str(doc.get("standard_output") or ""),
                    "stderr": str(doc.get("standard_error") or ""),
                    "workdir": str(
                        doc.get("current_working_directory") or doc.get("working_directory") or ""
                    ),
                }
                out.append(JobStatus(**fields))
        return out

    # --- the port ----------------------------------------------------------------------

    def submit(self, job: AdmittedJob) -> Submission:
        sub = render_slurm(job, self._site)
        version = self.version(sub.user)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        body = job_description(sub, version, env)
        answer = self._call("POST", f"/slurm/v{version}/job/submit", sub.user, body)
        if answer.doc is None:
            raise SchedulerError(f"slurmrestd submit: HTTP {answer.status} without JSON")
        job_id = submitted_job_id(answer.doc)
        notes = (*sub.notes, f"submitted through slurmrestd v{version} as {sub.user}")
        return Submission(self.name, job_id, sub.script, notes)

    def status(self, tenant: TenantContract, backend_job_id: str) -> JobStatus:
        job_id = check_job_id(backend_job_id)
        version = self.version(tenant.unix_user)
        found = [
            j
            for j in self._owned(tenant, f"/slurm/v{version}/job/{job_id}")
            if j.backend_job_id == job_id
        ]
        if not found:
            found = [
                j
                for j in self._owned(tenant, f"/slurmdb/v{version}/job/{job_id}")
                if j.backend_job_id == job_id
            ]
        if not found:
            raise UnknownNameError("job", job_id, [])
        return found[0]

    def list(self, tenant: TenantContract, *, active_only: bool = False) -> list[JobStatus]:
        version = self.version(tenant.unix_user)
        jobs = self._owned(tenant, f"/slurm/v{version}/jobs")
        return [j for j in jobs if j.active] if active_only else jobs

    def cancel(self, tenant: TenantContract, backend_job_id: str) -> None:
        status = self.status(tenant, backend_job_id)
        if not status.active:
            return
        version = self.version(tenant.unix_user)
        user = str(status.extra.get("user") or tenant.unix_user)
        answer = self._call("DELETE", f"/slurm/v{version}/job/{status.backend_job_id}", user)
        if answer.status >= 400:
            errors = response_errors(answer.doc) if isinstance(answer.doc, Mapping) else []
            raise SchedulerError(
                f"slurmrestd cancel {status.backend_job_id}: "
                f"{errors[0] if errors else f'HTTP {answer.status}'}"
            )

    def logs(self, tenant: TenantContract, backend_job_id: str, *, tail_bytes: int = 65536) -> str:
        return read_job_logs(
            self, tenant, self.status(tenant, backend_job_id), tail_bytes=tail_bytes
        )

    def read_tail(self, user: str, path: str, tail_bytes: int) -> str | None:
        """Log files live on the shared filesystem the bridge host mounts: read as ``user``."""
        result = self._commands.run(
            self._switch.argv(user, ["tail", "-c", str(tail_bytes), "--", path]),
            env=self._switch.env(user),
            clean_env=True,
            cwd="/",
        )
        return result.stdout if result.returncode == 0 else None

    def gpus_in_use(self, tenant: TenantContract) -> int:
        return total_gpus(self.list(tenant, active_only=True))


def check_available() -> str | None:
    """slurm-rest needs only a URL; say so when none is configured."""
    if os.environ.get("DCOPS_SLURMRESTD_URL") or os.environ.get("SLURMRESTD_URL"):
        return None
    return "no slurmrestd URL (set DCOPS_SLURMRESTD_URL or pass url=)"

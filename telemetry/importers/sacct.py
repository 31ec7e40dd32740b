"""Importer for Slurm accounting JSON: ``sacct --json`` and slurmrestd ``/slurmdb/vX/job(s)``.

Any release's shape is accepted: :func:`dcops.slurm.parse.parse_jobs`
normalizes it (plain or ``{set, infinite, number}`` numbers, ``state`` as a
string or ``{current: [...], reason}``, exit codes as ints or objects).

Mapping to the job record:

- ``job_id``: Slurm's job id (``"1234"``). ``tenant``: the Slurm account (a
  dcops tenant is a Slurm account), else ``--tenant``. ``user``, ``gpus`` (the
  allocated, else requested ``gres/gpu`` TRES), ``num_nodes``
  (``allocation_nodes``), ``nodes`` (the hostlist expanded; null for
  ``None assigned``), submit/start/end (epoch seconds; 0 = not yet = null).
- ``state`` from the first word of the Slurm state: see :data:`STATES`;
  ``raw_state`` keeps Slurm's words (``CANCELLED+BY``...).
- **Restart chains**: a job requeued by Slurm keeps its id; ``sacct
  --duplicates`` lists every attempt. When one id appears several times, the
  attempts are ordered by start (then submit) time; the last keeps the plain
  id, earlier ones become ``<id>@<n>`` (n = 0, 1, ...), and each attempt's
  ``restart_of`` names the previous one.
- ``extra``: partition, name, cluster, reason, exit signal, array / het ids,
  ``failed_node`` and ``restart_cnt`` where Slurm gives them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcops.errors import HostlistError, InputError, LocatedInputError, SchedulerError
from dcops.hostlist import expand
from dcops.jobstate import JobState
from dcops.slurm.parse import SlurmJob, number, parse_jobs
from telemetry.importers.base import ImportOptions, register
from telemetry.jobs import JobRecord, jobs_frame

if TYPE_CHECKING:
    import pandas as pd

NAME = "sacct"

#: Slurm job states (first word) -> normalized state.
STATES: dict[str, str] = {
    "COMPLETED": JobState.COMPLETED.value,
    "FAILED": JobState.FAILED.value,
    "CANCELLED": JobState.CANCELLED.value,
    "TIMEOUT": JobState.TIMEOUT.value,
    "DEADLINE": JobState.TIMEOUT.value,
    "NODE_FAIL": JobState.NODE_FAIL.value,
    "BOOT_FAIL": JobState.NODE_FAIL.value,
    "PREEMPTED": JobState.PREEMPTED.value,
    "REQUEUED": JobState.PREEMPTED.value,
    "REQUEUE_FED": JobState.PREEMPTED.value,
    "REQUEUE_HOLD": JobState.PREEMPTED.value,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY.value,
    "SPECIAL_EXIT": JobState.FAILED.value,
    "REVOKED": JobState.CANCELLED.value,
    "RUNNING": JobState.RUNNING.value,
    "COMPLETING": JobState.RUNNING.value,
    "CONFIGURING": JobState.RUNNING.value,
    "SUSPENDED": JobState.RUNNING.value,
    "STOPPED": JobState.RUNNING.value,
    "SIGNALING": JobState.RUNNING.value,
    "STAGE_OUT": JobState.RUNNING.value,
    "RESIZING": JobState.RUNNING.value,
    "PENDING": JobState.PENDING.value,
}

_NO_NODES = {"", "none assigned", "(null)", "none"}


def _when(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _nodes(text: str, where: str, job_id: int) -> tuple[str, ...] | None:
    if text.strip().lower() in _NO_NODES:
        return None
    try:
        return tuple(expand(text))
    except HostlistError as exc:
        raise LocatedInputError(where, f"job {job_id}: bad node list ({exc})", key="nodes") from exc


def _extra(job: SlurmJob, raw: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {"partition": job.partition, "name": job.name}
    if raw.get("cluster"):
        extra["cluster"] = str(raw["cluster"])
    if job.reason and job.reason != "None":
        extra["reason"] = job.reason
    if job.exit_signal:
        extra["exit_signal"] = job.exit_signal
    if job.array_job_id:
        extra["array_job_id"] = job.array_job_id
        extra["array_task_id"] = job.array_task_id
    if job.het_job_id:
        extra["het_job_id"] = job.het_job_id
        extra["het_job_offset"] = job.het_job_offset
    failed = raw.get("failed_node")
    if isinstance(failed, str) and failed.strip():
        extra["failed_node"] = failed.strip()
    restarts = number(raw.get("restart_cnt"))
    if restarts is not None:
        extra["restart_cnt"] = restarts
    return extra


def records_from_doc(doc: object, where: str, options: ImportOptions) -> list[JobRecord]:
    """Job records of a parsed sacct/slurmdb JSON document (restart chains linked)."""
    try:
        parsed = parse_jobs(doc)
    except SchedulerError as exc:
        raise LocatedInputError(where, str(exc)) from exc
    raw_jobs = doc["jobs"] if isinstance(doc, dict) else []
    attempts: dict[int, list[tuple[SlurmJob, dict[str, Any]]]] = {}
    for job, raw in zip(parsed, raw_jobs, strict=True):
        if job.job_id <= 0:
            raise LocatedInputError(where, "a job has no job_id", key="job_id")
        attempts.setdefault(job.job_id, []).append((job, raw))
    records: list[JobRecord] = []
    for job_id, runs in attempts.items():
        runs.sort(key=lambda r: (r[0].start_time or 0, r[0].submit_time or 0))
        previous: str | None = None
        for n, (job, raw) in enumerate(runs):
            rid = str(job_id) if n == len(runs) - 1 else f"{job_id}@{n}"
            state = STATES.get(job.state)
            if state is None:
                raise LocatedInputError(
                    where,
                    f"job {job_id}: unknown Slurm state {job.state!r} "
                    f"(known: {', '.join(sorted(STATES))})",
                    key="state",
                )
            placed = state != JobState.PENDING.value  # pending jobs hold no nodes yet
            records.append(
                JobRecord(
                    job_id=rid,
                    source=NAME,
                    backend="slurm",
                    state=state,
                    raw_state="+".join((job.state, *job.state_flags)),
                    tenant=job.account or options.tenant,
                    user=job.user or None,
                    nodes=_nodes(job.nodes, where, job_id) if placed else None,
                    num_nodes=job.node_count if placed else None,
                    gpus=float(job.gpus),
                    submit_time=_when(job.submit_time),
                    start_time=_when(job.start_time),
                    end_time=_when(job.end_time),
                    exit_code=job.exit_code,
                    restart_of=previous,
                    extra=_extra(job, raw),
                )
            )
            previous = rid
    return records


@register(NAME)
class SacctImporter:
    """Slurm accounting: ``sacct --json`` output or a slurmrestd /slurmdb job(s) response."""

    name = NAME
    description = "Slurm accounting JSON (sacct --json, slurmrestd /slurmdb/vX/jobs), any version"

    def read(self, path: Path, options: ImportOptions) -> pd.DataFrame:
        return jobs_frame(self.records(path, options))

    def records(self, path: Path, options: ImportOptions) -> list[JobRecord]:
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{where}: no such file") from None
        except UnicodeDecodeError as exc:
            raise LocatedInputError(where, f"not UTF-8 text ({exc.reason})") from exc
        except OSError as exc:
            raise InputError(f"{where}: cannot read ({exc.strerror or exc})") from exc
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LocatedInputError(where, f"not JSON ({exc.msg})", line=exc.lineno) from exc
        except (ValueError, RecursionError) as exc:  # 4,300+ digit integers, deep nesting
            raise LocatedInputError(where, f"not usable JSON ({str(exc)[:120]})") from exc
        return records_from_doc(doc, where, options)

"""Normalize Slurm's JSON, whatever its release, into :class:`SlurmJob` / :class:`SlurmNode` (pure).

Shapes handled (see ``fixtures/slurm/SCHEMA_NOTES.md``):

* ``squeue``/``sinfo --json`` of 21.08 (v0.0.37): plain ints, ``job_state`` a
  string, node ``state`` a lowercase string plus ``state_flags``;
* ``sinfo --json`` of 23.02 (v0.0.39): top-level ``sinfo`` groups;
* slurmrestd ``/slurm/vX/jobs|job`` and ``/nodes|node`` v0.0.40..v0.0.45:
  ``job_state``/``state`` lists, numbers as ``{set, infinite, number}``,
  ``exit_code`` as ``{status, return_code, signal}``;
* slurmrestd ``/slurmdb/vX/job`` and ``sacct --json``: ``state.current``,
  ``time.{submission,start,end}``, ``tres.{allocated,requested}``;
* ``squeue --Format``/``sacct --parsable2`` text with known field names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dcops.errors import SchedulerError


@dataclass(frozen=True)
class SlurmJob:
    job_id: int
    name: str
    account: str
    user: str
    partition: str
    state: str
    state_flags: tuple[str, ...]
    reason: str
    nodes: str
    node_count: int | None
    gpus: int
    submit_time: int | None
    start_time: int | None
    end_time: int | None
    exit_code: int | None
    exit_signal: int | None
    array_job_id: int | None
    array_task_id: int | None
    het_job_id: int | None
    het_job_offset: int | None


@dataclass(frozen=True)
class SlurmNode:
    name: str
    state: str
    state_flags: tuple[str, ...]
    reason: str
    gres: str
    gpus: int
    gpus_used: int
    partitions: tuple[str, ...]


def number(value: object) -> int | None:
    """An int from ``5``, ``"5"`` or ``{set, infinite, number}``; None if unset/infinite."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        return int(value) if value.strip().lstrip("-").isdigit() else None
    if isinstance(value, Mapping):
        if not value.get("set", False) or value.get("infinite", False):
            return None
        return number(value.get("number"))
    return None


def _epoch(value: object) -> int | None:
    """Epoch seconds; 0 (Slurm's "not yet") becomes None."""
    n = number(value)
    return n if n else None


def _states(value: object) -> tuple[str, tuple[str, ...]]:
    if isinstance(value, str):
        parts = [p for p in re.split(r"[+,\s]+", value.upper()) if p]
    elif isinstance(value, Sequence):
        parts = [str(p).upper() for p in value]
    else:
        parts = []
    if not parts:
        return "UNKNOWN", ()
    return parts[0], tuple(parts[1:])


_GRES_GPU = re.compile(r"(?:^|,)\s*gpu(?::[^:(,=]+)?[:=](\d+)")
_TRES_GPU = re.compile(r"(?:^|,)\s*gres/gpu(?::[^:(,=]+)?[:=](\d+)")


def gpus_in_gres(text: str) -> int:
    """``gpu:h100:2(IDX:0-1),gpu:h200:4(IDX:2-5)`` -> 6; ``gpu:0`` -> 0."""
    return sum(int(n) for n in _GRES_GPU.findall(text or ""))


def gpus_in_tres(text: str) -> int:
    """``gres/gpu=4`` / ``gres/gpu:h100:1,gres/gpu:h200:1`` -> GPU count.

    Slurm lists both ``gres/gpu=N`` and typed ``gres/gpu:T=N``; the untyped
    total wins when present so typed entries are not counted twice.
    """
    text = text or ""
    untyped = re.findall(r"(?:^|,)\s*gres/gpu[:=](\d+)(?=,|$)", text)
    if untyped:
        return sum(int(n) for n in untyped)
    return sum(int(n) for n in _TRES_GPU.findall(text))


def _exit(value: object) -> tuple[int | None, int | None]:
    if isinstance(value, Mapping):
        code = number(value.get("return_code"))
        signal = value.get("signal")
        sig = number(signal.get("id")) if isinstance(signal, Mapping) else None
        return code, sig
    if isinstance(value, str) and ":" in value:  # sacct text "0:15"
        code_s, _, sig_s = value.partition(":")
        return number(code_s), number(sig_s) or None
    return number(value), None


def _gpus_of_live_job(job: Mapping[str, Any], node_count: int | None) -> int:
    detail = job.get("gres_detail") or []
    if isinstance(detail, list) and detail:
        return sum(gpus_in_gres(str(d)) for d in detail)
    alloc = gpus_in_tres(str(job.get("tres_alloc_str") or ""))
    if alloc:
        return alloc
    per_job = gpus_in_tres(str(job.get("tres_per_job") or ""))
    if per_job:
        return per_job
    per_node = gpus_in_tres(str(job.get("tres_per_node") or ""))
    if per_node:
        return per_node * (node_count or 1)
    per_task = gpus_in_tres(str(job.get("tres_per_task") or ""))
    if per_task:
        tasks = number(job.get("tasks")) or number(job.get("num_tasks")) or 1
        return per_task * tasks
    return gpus_in_tres(str(job.get("tres_req_str") or ""))


def _gpus_of_db_job(job: Mapping[str, Any]) -> int:
    tres = job.get("tres") or {}
    for kind in ("allocated", "requested"):
        entries = [
            t for t in tres.get(kind) or [] if t.get("type") == "gres" and t.get("name") == "gpu"
        ]
        if entries:
            return sum(int(t.get("count", 0)) for t in entries)
    return 0


def _job_from_live(job: Mapping[str, Any]) -> SlurmJob:
    state, flags = _states(job.get("job_state"))
    node_count = number(job.get("node_count"))
    code, signal = _exit(job.get("exit_code"))
    array_job = number(job.get("array_job_id"))
    het_job = number(job.get("het_job_id"))
    return SlurmJob(
        job_id=int(number(job.get("job_id")) or 0),
        name=str(job.get("name") or ""),
        account=str(job.get("account") or ""),
        user=str(job.get("user_name") or ""),
        partition=str(job.get("partition") or ""),
        state=state,
        state_flags=flags,
        reason=str(job.get("state_reason") or ""),
        nodes=str(job.get("nodes") or ""),
        node_count=node_count,
        gpus=_gpus_of_live_job(job, node_count),
        submit_time=_epoch(job.get("submit_time")),
        start_time=_epoch(job.get("start_time")),
        end_time=_epoch(job.get("end_time")),
        exit_code=code,
        exit_signal=signal,
        array_job_id=array_job or None,
        array_task_id=number(job.get("array_task_id")) if array_job else None,
        het_job_id=het_job or None,
        het_job_offset=number(job.get("het_job_offset")) if het_job else None,
    )


def _job_from_db(job: Mapping[str, Any]) -> SlurmJob:
    raw_state = job.get("state")
    if isinstance(raw_state, Mapping):
        state, flags = _states(raw_state.get("current"))
        reason = str(raw_state.get("reason") or "")
    else:
        state, flags = _states(raw_state)
        reason = ""
    time = job.get("time") or {}
    code, signal = _exit(job.get("exit_code"))
    array = job.get("array") or {}
    het = job.get("het") or {}
    array_job = number(array.get("job_id"))
    het_job = number(het.get("job_id"))
    return SlurmJob(
        job_id=int(number(job.get("job_id")) or 0),
        name=str(job.get("name") or ""),
        account=str(job.get("account") or ""),
        user=str(job.get("user") or ""),
        partition=str(job.get("partition") or ""),
        state=state,
        state_flags=flags,
        reason=reason,
        nodes=str(job.get("nodes") or ""),
        node_count=number(job.get("allocation_nodes")),
        gpus=_gpus_of_db_job(job),
        submit_time=_epoch(time.get("submission")),
        start_time=_epoch(time.get("start")),
        end_time=_epoch(time.get("end")),
        exit_code=code,
        exit_signal=signal,
        array_job_id=array_job or None,
        array_task_id=number(array.get("task_id")) if array_job else None,
        het_job_id=het_job or None,
        het_job_offset=number(het.get("job_offset")) if het_job else None,
    )


def _mapping(doc: object, what: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise SchedulerError(f"unrecognized Slurm {what} JSON: expected an object")
    return doc


def response_errors(doc: object) -> list[str]:
    """The ``errors`` a Slurm JSON document reports, as one-line strings."""
    errors = _mapping(doc, "response").get("errors") or []
    out = []
    for err in errors:
        if isinstance(err, Mapping):
            text = err.get("description") or err.get("error") or ""
            extra = err.get("error") if err.get("description") else ""
            out.append(f"{text}: {extra}" if extra else str(text))
        else:
            out.append(str(err))
    return out


def parse_jobs(doc: object) -> list[SlurmJob]:
    """Jobs from any squeue/sacct JSON or slurmrestd ``/slurm`` / ``/slurmdb`` response."""
    jobs = _mapping(doc, "jobs").get("jobs")
    if not isinstance(jobs, list):
        raise SchedulerError("unrecognized Slurm jobs JSON: no 'jobs' list")
    out = []
    for job in jobs:
        if not isinstance(job, Mapping):
            raise SchedulerError("unrecognized Slurm jobs JSON: a job is not an object")
        is_db = isinstance(job.get("state"), Mapping) or isinstance(job.get("time"), Mapping)
        out.append(_job_from_db(job) if is_db else _job_from_live(job))
    return out


def _node(entry: Mapping[str, Any]) -> SlurmNode:
    state, flags = _states(entry.get("state"))
    extra = entry.get("state_flags")
    if isinstance(extra, list):
        flags = flags + tuple(str(f).upper() for f in extra if str(f).upper() not in flags)
    reason = entry.get("reason")
    if isinstance(reason, Mapping):
        reason = reason.get("description")
    gres = str(entry.get("gres") or "")
    return SlurmNode(
        name=str(entry.get("name") or entry.get("hostname") or ""),
        state=state,
        state_flags=flags,
        reason=str(reason or ""),
        gres=gres,
        gpus=gpus_in_gres(gres),
        gpus_used=gpus_in_gres(str(entry.get("gres_used") or "")),
        partitions=tuple(str(p) for p in entry.get("partitions") or ()),
    )


def _nodes_from_sinfo(groups: list[Any]) -> list[SlurmNode]:
    merged: dict[str, SlurmNode] = {}
    for group in groups:
        if not isinstance(group, Mapping):
            raise SchedulerError("unrecognized sinfo JSON: a group is not an object")
        state, flags = _states((group.get("node") or {}).get("state"))
        gres = str((group.get("gres") or {}).get("total") or "")
        used = str((group.get("gres") or {}).get("used") or "")
        reason = (group.get("reason") or {}).get("description") or ""
        part = str((group.get("partition") or {}).get("name") or "")
        for name in (group.get("nodes") or {}).get("nodes") or []:
            prev = merged.get(name)
            parts = (prev.partitions if prev else ()) + ((part,) if part else ())
            merged[name] = SlurmNode(
                name=str(name),
                state=state,
                state_flags=flags,
                reason=str(reason),
                gres=gres,
                gpus=gpus_in_gres(gres),
                gpus_used=gpus_in_gres(used),
                partitions=tuple(dict.fromkeys(parts)),
            )
    return list(merged.values())


def parse_nodes(doc: object) -> list[SlurmNode]:
    """Nodes from ``sinfo --json`` (21.08 / 23.02+) or slurmrestd ``/nodes`` / ``/node``."""
    data = _mapping(doc, "nodes")
    if isinstance(data.get("sinfo"), list):
        return _nodes_from_sinfo(data["sinfo"])
    nodes = data.get("nodes")
    if not isinstance(nodes, list):
        raise SchedulerError("unrecognized Slurm nodes JSON: no 'nodes' or 'sinfo' list")
    return [_node(n) for n in nodes if isinstance(n, Mapping)]


_TEXT_FIELDS = {
    "jobid": "job_id",
    "name": "name",
    "jobname": "name",
    "account": "account",
    "user": "user_name",
    "username": "user_name",
    "partition": "partition",
    "state": "job_state",
    "reason": "state_reason",
    "nodelist": "nodes",
    "numnodes": "node_count",
    "allocnodes": "node_count",
    "submit": "submit_time",
    "submittime": "submit_time",
    "start": "start_time",
    "starttime": "start_time",
    "end": "end_time",
    "endtime": "end_time",
    "exitcode": "exit_code",
}


def parse_text_jobs(stdout: str, fields: Sequence[str]) -> list[SlurmJob]:
    """``squeue --Format=F:|,...`` / ``sacct --parsable2 --format=...`` output (epoch times).

    ``fields`` are the format's field names in order; unknown ones are ignored.
    """
    out = []
    keys = [_TEXT_FIELDS.get(f.strip().lower()) for f in fields]
    for line in stdout.splitlines():
        if not line.strip():
            continue
        values = line.split("|")
        if len(values) < len(keys):
            raise SchedulerError(
                f"Slurm text output has {len(values)} fields, the format names {len(keys)}"
            )
        job: dict[str, Any] = {k: v for k, v in zip(keys, values, strict=False) if k}
        out.append(_job_from_live(job))
    return out


def fields_of_format(spec: str) -> list[str]:
    """Column names of a ``squeue --Format``/``sacct --format`` spec, one per ``|`` column.

    ``"JobID:|,Cluster:||,Name:"`` -> ``["JobID", "Cluster", "", "Name"]``: a suffix
    of two pipes prints an extra (empty) column.
    """
    out: list[str] = []
    for item in spec.split(","):
        name, _, suffix = item.partition(":")
        out.append(name.strip())
        out += [""] * max(suffix.count("|") - 1, 0)
    return out

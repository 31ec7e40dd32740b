"""GPU allocations from Slurm: squeue/scontrol JSON, slurmrestd, ``scontrol show job -d`` text.

Where Slurm says which GPU (pure parsers; see ``docs/telemetry-collection.md``):

* ``squeue --json`` (22.05+), ``scontrol show job -d --json`` (23.02+) and
  slurmrestd ``/slurm/vX/jobs|job/{id}`` (v0.0.38..v0.0.44): ``gres_detail``,
  one string per allocated node, in the order of the job's nodes, e.g.
  ``gpu:h100:2(IDX:0-1),gpu:h200:4(IDX:2-5)``; the node names come from
  ``job_resources`` (``allocated_nodes[].nodename`` up to v0.0.40,
  ``nodes.allocation[].name`` from v0.0.41), else from the ``nodes`` hostlist.
* ``scontrol show job -d`` text (every release; 22.05 has no ``--json``):
  detail lines ``Nodes=sim-r01-t[01-02] CPU_IDs=0 Mem=0 GRES=gpu:3(IDX:0-2)``.
* ``squeue -o/-O`` text cannot print GPU indexes on 22.05 (``%b`` is the
  per-node request, ``tres-alloc`` the total), and ``sacct``/slurmdb jobs carry
  only counts: such jobs give node-level allocations (``gpu=None``).

Jobs that hold no GPU and jobs that never started give nothing. Jobs still
holding their resources (RUNNING, SUSPENDED, COMPLETING) get ``end_s=None``
(their ``end_time`` is only the time limit); finished ones keep their end.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from dcops.errors import HostlistError, SchedulerError
from dcops.hostlist import expand
from dcops.slurm.parse import gpus_in_gres, gpus_in_tres, parse_jobs
from telemetry.jobmap.model import Allocation, tenant_of

#: States in which a job holds its nodes' GPUs now.
HOLDING_STATES = frozenset({"RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "STOPPED"})
_NEVER_RAN = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})

_GRES_IDX = re.compile(r"gpu(?::[^:(,]*)*\(IDX:([^)]*)\)")


def gres_indexes(text: str) -> list[int] | None:
    """GPU indexes of a ``gres_detail`` / ``GRES=`` string; None when it names no index.

    ``gpu:h100:2(IDX:0-1),gpu:h200:4(IDX:2-5)`` -> ``[0..5]``;
    ``gpu:h100:1(IDX:0),gpu:h200:0(IDX:)`` -> ``[0]``; ``gpu:4`` -> None.
    """
    found = _GRES_IDX.findall(text or "")
    if not found:
        return None
    out: set[int] = set()
    for body in found:
        for raw in body.split(","):
            item = raw.strip()
            if not item:
                continue
            lo, _, hi = item.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()):
                return None  # IDX:N/A and the like: no index known
            out.update(range(int(lo), int(hi or lo) + 1))
    return sorted(out)


def _expand(nodes: str) -> list[str]:
    try:
        return expand(nodes) if nodes.strip() else []
    except HostlistError as exc:
        raise SchedulerError(f"Slurm job names a bad node list {nodes!r}: {exc}") from exc


def _job_nodes(job: Mapping[str, Any]) -> list[str]:
    """Allocated node names in allocation order (the order of ``gres_detail``)."""
    res = job.get("job_resources") or {}
    if isinstance(res, Mapping):
        alloc = res.get("allocated_nodes")
        if isinstance(alloc, list) and alloc and all(isinstance(n, Mapping) for n in alloc):
            names = [str(n.get("nodename") or "") for n in alloc]
            if all(names):
                return names
        nodes = res.get("nodes")
        if isinstance(nodes, Mapping) and isinstance(nodes.get("allocation"), list):
            names = [str(n.get("name") or "") for n in nodes["allocation"]]
            if names and all(names):
                return names
    return _expand(str(job.get("nodes") or ""))


def _per_node(
    *,
    job_id: str,
    nodes: Sequence[str],
    details: Sequence[str] | None,
    total_gpus: int,
    start_s: float,
    end_s: float | None,
    account: str | None,
    user: str | None,
    tenants: Mapping[str, str] | None,
) -> list[Allocation]:
    def make(node: str, gpu: int | None, gpus: int = 1) -> Allocation:
        return Allocation(
            node=node,
            gpu=gpu,
            gpus=gpus,
            job_id=job_id,
            start_s=start_s,
            end_s=end_s,
            account=account or None,
            user=user or None,
            tenant=tenant_of(account, tenants),
            source="slurm",
        )

    indexes = [gres_indexes(d) for d in details] if details else []
    if indexes and len(indexes) == len(nodes) and all(i is not None for i in indexes):
        return [
            make(node, gpu) for node, idx in zip(nodes, indexes, strict=True) for gpu in idx or ()
        ]
    if details and len(details) == len(nodes):
        counts = [gpus_in_gres(d) for d in details]
    elif total_gpus and nodes:
        counts = [max(1, total_gpus // len(nodes))] * len(nodes)
    else:
        counts = [0] * len(nodes)
    return [make(node, None, n) for node, n in zip(nodes, counts, strict=True) if n > 0]


def allocations_from_json(
    doc: object, tenants: Mapping[str, str] | None = None
) -> list[Allocation]:
    """Allocations from squeue/scontrol ``--json``, slurmrestd jobs, or sacct/slurmdb JSON."""
    jobs = parse_jobs(doc)
    raw = list(doc["jobs"]) if isinstance(doc, Mapping) else []
    out: list[Allocation] = []
    for job, data in zip(jobs, raw, strict=True):
        if job.state in _NEVER_RAN or job.start_time is None or not job.nodes:
            continue
        details = data.get("gres_detail")
        detail_list = [str(d) for d in details] if isinstance(details, list) else None
        if not job.gpus and not any(gres_indexes(d) for d in detail_list or ()):
            continue
        holding = job.state in HOLDING_STATES
        out += _per_node(
            job_id=str(job.job_id),
            nodes=_job_nodes(data),
            details=detail_list,
            total_gpus=job.gpus,
            start_s=float(job.start_time),
            end_s=None if holding or job.end_time is None else float(job.end_time),
            account=job.account,
            user=job.user,
            tenants=tenants,
        )
    return out


# -- scontrol show job -d (text) -------------------------------------------------------

_KV = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_/:]*)=(\S*)")


def _when(value: str, tz: tzinfo | None) -> float | None:
    value = value.strip()
    if not value or value in ("Unknown", "None", "N/A", "0"):
        return None
    if value.isdigit():
        return float(value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise SchedulerError(f"scontrol printed an unreadable time {value!r}") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz) if tz is not None else when.astimezone()
    return when.timestamp()


def allocations_from_scontrol(
    text: str, tenants: Mapping[str, str] | None = None, *, tz: tzinfo | None = None
) -> list[Allocation]:
    """Allocations from ``scontrol show job -d`` (``--oneliner`` too).

    Times may be epochs (``SLURM_TIME_FORMAT=%s``, what :func:`poll` sets) or
    Slurm's ISO local times, read in ``tz`` (default: this machine's zone).
    """
    records: list[list[str]] = []
    for line in text.splitlines():
        if line.lstrip().startswith("JobId="):
            records.append([])
        if records:
            records[-1].append(line)
    out: list[Allocation] = []
    for lines in records:
        fields: dict[str, str] = {}
        details: list[tuple[str, str]] = []
        for line in lines:
            pairs = _KV.findall(line)
            if pairs and pairs[0][0] == "Nodes" and line.startswith(" "):
                kv = dict(pairs)
                details.append((kv.get("Nodes", ""), kv.get("GRES", "")))
                continue
            for key, value in pairs:
                fields.setdefault(key, value)
        out += _scontrol_job(fields, details, tenants, tz)
    return out


def _scontrol_job(
    fields: Mapping[str, str],
    details: Sequence[tuple[str, str]],
    tenants: Mapping[str, str] | None,
    tz: tzinfo | None,
) -> list[Allocation]:
    state = fields.get("JobState", "").upper()
    start = _when(fields.get("StartTime", ""), tz)
    if state in _NEVER_RAN or start is None:
        return []
    nodes: list[str] = []
    gres: list[str] = []
    for expr, text in details:
        names = _expand(expr)
        nodes += names
        gres += [text] * len(names)
    if not nodes:
        node_list = fields.get("NodeList", "")
        nodes = _expand(node_list) if node_list not in ("", "(null)") else []
    total = gpus_in_tres(fields.get("TRES", "")) or gpus_in_gres(fields.get("JOB_GRES", ""))
    if not total and not any(gres_indexes(g) for g in gres):
        return []
    user = fields.get("UserId", "").split("(")[0]
    account = fields.get("Account", "")
    end = _when(fields.get("EndTime", ""), tz)
    return _per_node(
        job_id=fields.get("JobId", ""),
        nodes=nodes,
        details=gres or None,
        total_gpus=total,
        start_s=start,
        end_s=None if state in HOLDING_STATES else end,
        account=account if account != "(null)" else None,
        user=user or None,
        tenants=tenants,
    )


# -- polling a live cluster --------------------------------------------------------------


Runner = Callable[[Sequence[str], Mapping[str, str]], str]
"""Runs an argv with extra environment variables; returns stdout, raises SchedulerError."""


def poll(run: Runner, tenants: Mapping[str, str] | None = None) -> list[Allocation]:
    """Current allocations of a live cluster: ``squeue --json``, else ``scontrol show job -d``.

    ``squeue --json`` carries ``gres_detail`` from 21.08; the text fallback
    serves builds without the JSON plugin.
    """
    import json

    try:
        stdout = run(["squeue", "--json"], {})
    except SchedulerError:
        stdout = ""
    if stdout.strip():
        try:
            doc = json.loads(stdout)
        except ValueError:
            doc = None
        if doc is not None:
            return allocations_from_json(doc, tenants)
    text = run(["scontrol", "show", "job", "-d"], {"SLURM_TIME_FORMAT": "%s"})
    return allocations_from_scontrol(text, tenants)

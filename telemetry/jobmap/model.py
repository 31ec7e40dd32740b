"""GPU allocations: which job (and tenant) held which GPU, from when to when (pure).

An :class:`Allocation` is one job holding one GPU of one node (``gpu`` is the
index on the node) or, when the source cannot say which GPU (Kubernetes, Slurm
accounting), ``gpu=None`` and ``gpus`` GPUs of the node. ``end_s`` is None
while the job still runs. Times are epoch seconds.

Snapshots taken at different times (every poll of ``squeue``) repeat the same
running allocations; :func:`consolidate` merges them into one interval per
(source, job, node, gpu). :func:`holder` answers "who held this GPU at t".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

ALLOCATION_SCHEMA_VERSION = 1


@dataclass(frozen=True, order=True)
class Allocation:
    """One job holding a GPU (``gpu``) or some GPUs of a node (``gpu=None``, ``gpus`` of them)."""

    node: str
    gpu: int | None
    job_id: str
    start_s: float
    end_s: float | None = None  # None: still running when observed
    tenant: str | None = None
    account: str | None = None  # Slurm account / Kubernetes namespace
    user: str | None = None
    source: str = "slurm"  # "slurm" or "kubernetes"
    gpus: int = 1  # GPUs of the node this record stands for (1 when gpu is known)

    def running_at(self, t: float) -> bool:
        return self.start_s <= t and (self.end_s is None or t < self.end_s)


def tenant_of(account: str | None, tenants: Mapping[str, str] | None) -> str | None:
    """The tenant of a Slurm account (or namespace) by the given mapping; None if unmapped."""
    if not account or not tenants:
        return None
    return tenants.get(account)


def consolidate(allocations: Iterable[Allocation]) -> list[Allocation]:
    """One interval per (source, job, node, gpu): earliest start, and the end of the last one.

    A known end wins over None (a later snapshot saw the job finish); of two
    known ends the latest wins. Tenant, account and user keep the first known value.
    """
    merged: dict[tuple[str, str, str, int | None], Allocation] = {}
    for a in allocations:
        key = (a.source, a.job_id, a.node, a.gpu)
        prev = merged.get(key)
        if prev is None:
            merged[key] = a
            continue
        ends = [e for e in (prev.end_s, a.end_s) if e is not None]
        merged[key] = replace(
            prev,
            start_s=min(prev.start_s, a.start_s),
            end_s=max(ends) if ends else None,
            tenant=prev.tenant or a.tenant,
            account=prev.account or a.account,
            user=prev.user or a.user,
            gpus=max(prev.gpus, a.gpus),
        )
    return sorted(merged.values())


def close_missing(
    previous: Sequence[Allocation], current: Sequence[Allocation], observed_s: float
) -> list[Allocation]:
    """Running allocations of ``previous`` gone from ``current``, ended at ``observed_s``.

    A poller calls this between two snapshots: a job that vanished from
    ``squeue`` ended at some point before ``observed_s``; this bounds it.
    """
    still = {(a.source, a.job_id, a.node, a.gpu) for a in current}
    return [
        replace(a, end_s=observed_s)
        for a in previous
        if a.end_s is None and (a.source, a.job_id, a.node, a.gpu) not in still
    ]


def holder(allocations: Iterable[Allocation], node: str, gpu: int, t: float) -> Allocation | None:
    """The allocation holding ``node``'s GPU ``gpu`` at ``t``, if it can be told.

    An exact GPU match wins. Otherwise a node-level allocation (``gpu=None``)
    counts only when it is the only one running on that node at ``t``: with
    two jobs sharing a node and no GPU index, which GPU is whose is unknown.
    """
    node_level: list[Allocation] = []
    for a in allocations:
        if a.node != node or not a.running_at(t):
            continue
        if a.gpu == gpu:
            return a
        if a.gpu is None:
            node_level.append(a)
    jobs = {a.job_id for a in node_level}
    return node_level[0] if len(jobs) == 1 else None


def allocation_schema() -> pa.Schema:
    import pyarrow as pa

    ts = pa.timestamp("ms", tz="UTC")
    return pa.schema(
        [
            pa.field("time", ts, nullable=False),  # when this record was observed
            pa.field("source", pa.string(), nullable=False),
            pa.field("node", pa.string(), nullable=False),
            pa.field("gpu", pa.int16()),
            pa.field("gpus", pa.int16(), nullable=False),
            pa.field("job_id", pa.string(), nullable=False),
            pa.field("tenant", pa.string()),
            pa.field("account", pa.string()),
            pa.field("user", pa.string()),
            pa.field("start", ts, nullable=False),
            pa.field("end", ts),
        ],
        metadata={"dcops.telemetry.allocations.schema_version": str(ALLOCATION_SCHEMA_VERSION)},
    )


def _ms(t: float | None) -> int | None:
    return None if t is None else round(t * 1000)


def allocations_table(allocations: Sequence[Allocation], observed_s: float) -> pa.Table:
    """Allocations as an Arrow table with :func:`allocation_schema`, stamped ``observed_s``."""
    import pyarrow as pa

    data: dict[str, list[Any]] = {
        "time": [_ms(observed_s)] * len(allocations),
        "source": [a.source for a in allocations],
        "node": [a.node for a in allocations],
        "gpu": [a.gpu for a in allocations],
        "gpus": [a.gpus for a in allocations],
        "job_id": [a.job_id for a in allocations],
        "tenant": [a.tenant for a in allocations],
        "account": [a.account for a in allocations],
        "user": [a.user for a in allocations],
        "start": [_ms(a.start_s) for a in allocations],
        "end": [_ms(a.end_s) for a in allocations],
    }
    return pa.Table.from_pydict(data, schema=allocation_schema())


def allocations_from_table(table: pa.Table) -> list[Allocation]:
    """Rows of an allocation table back as records (not consolidated)."""
    out = []
    for row in table.to_pylist():
        out.append(
            Allocation(
                node=row["node"],
                gpu=row["gpu"],
                job_id=row["job_id"],
                start_s=row["start"].timestamp(),
                end_s=None if row["end"] is None else row["end"].timestamp(),
                tenant=row["tenant"],
                account=row["account"],
                user=row["user"],
                source=row["source"],
                gpus=row["gpus"],
            )
        )
    return out

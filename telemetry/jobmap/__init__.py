"""Which job (and tenant) held which GPU when: Slurm and Kubernetes allocation parsers.

Parsers are pure (documents in, :class:`Allocation` records out); the store
keeps allocation snapshots beside the samples, partitioned by the day they
were observed (``<data_dir>/telemetry/allocations/date=YYYY-MM-DD/``).
See ``docs/telemetry-collection.md``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from telemetry.collect.store import PartitionedStore, allocations_dir
from telemetry.jobmap.kubernetes import allocations_from_pods, pod_gpus
from telemetry.jobmap.model import (
    Allocation,
    allocation_schema,
    allocations_from_table,
    allocations_table,
    close_missing,
    consolidate,
    holder,
    tenant_of,
)
from telemetry.jobmap.slurm import (
    allocations_from_json,
    allocations_from_scontrol,
    gres_indexes,
    poll,
)


def allocation_store(data_dir: Path) -> PartitionedStore:
    """The allocation store of a dcops data dir (beside the samples)."""
    return PartitionedStore(allocations_dir(data_dir), allocation_schema)


def read_allocations(
    store: PartitionedStore, start: datetime | None = None, end: datetime | None = None
) -> list[Allocation]:
    """Allocations observed in ``[start, end)``, consolidated to one interval per job and GPU."""
    return consolidate(allocations_from_table(store.read(start, end)))


__all__ = [
    "Allocation",
    "allocation_schema",
    "allocation_store",
    "allocations_from_json",
    "allocations_from_pods",
    "allocations_from_scontrol",
    "allocations_from_table",
    "allocations_table",
    "close_missing",
    "consolidate",
    "gres_indexes",
    "holder",
    "pod_gpus",
    "poll",
    "read_allocations",
    "tenant_of",
]

"""The one normalized job record every importer produces and every analysis reads.

A job record is one scheduled unit of work (a Slurm job, a Kubernetes pod, a
trace's job) in dcops' words. It exists twice, with the same fields:

- :class:`JobRecord`, a dataclass, for code that builds or inspects one record;
- :data:`JOB_SCHEMA`, a pyarrow schema, for frames and the Parquet store.
  :func:`jobs_frame` turns records into a pandas frame with this schema's dtypes
  and :func:`conform` checks and coerces any frame to it.

The fields are documented in ``docs/telemetry.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dcops.jobstate import JobState

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 1


#: Every state, in report order.
STATES: tuple[str, ...] = tuple(s.value for s in JobState if s is not JobState.UNKNOWN)

#: States that end a job because something went wrong (the job's code, its
#: memory or its node). Cancelled, timeout and preempted are decisions, not failures.
FAILURE_STATES: frozenset[str] = frozenset(
    {JobState.FAILED.value, JobState.NODE_FAIL.value, JobState.OUT_OF_MEMORY.value}
)

_TS = pa.timestamp("us", tz="UTC")

#: The Parquet / Arrow schema of the job store; column order is field order.
JOB_SCHEMA = pa.schema(
    [
        pa.field("job_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("backend", pa.string(), nullable=False),
        pa.field("tenant", pa.string()),
        pa.field("user", pa.string()),
        pa.field("nodes", pa.list_(pa.string())),
        pa.field("num_nodes", pa.int32()),
        pa.field("gpus", pa.float64()),
        pa.field("submit_time", _TS),
        pa.field("start_time", _TS),
        pa.field("end_time", _TS),
        pa.field("state", pa.string(), nullable=False),
        pa.field("raw_state", pa.string()),
        pa.field("exit_code", pa.int32()),
        pa.field("restart_of", pa.string()),
        pa.field("extra", pa.string()),
    ],
    metadata={"dcops.telemetry.jobs.schema_version": str(SCHEMA_VERSION)},
)

COLUMNS: tuple[str, ...] = tuple(JOB_SCHEMA.names)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job, normalized. Times are timezone-aware UTC; ``None`` means unknown."""

    job_id: str
    source: str  # the importer that produced it, e.g. "alibaba-gpu-2023"
    backend: str  # "slurm", "kubernetes" or "trace:<name>"
    state: str  # one of STATES
    tenant: str | None = None
    user: str | None = None
    nodes: tuple[str, ...] | None = None  # None: the source does not say
    num_nodes: int | None = None
    gpus: float | None = None  # GPUs requested; fractional for shared GPUs
    submit_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    raw_state: str | None = None  # the source's own word for the state
    exit_code: int | None = None
    restart_of: str | None = None  # job_id of the job this one restarts
    extra: Mapping[str, Any] | None = None  # source-specific fields, stored as JSON

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown job state {self.state!r} (known: {', '.join(STATES)})")
        for name in ("submit_time", "start_time", "end_time"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware (UTC)")


_RECORD_FIELDS = tuple(f.name for f in fields(JobRecord))
assert set(_RECORD_FIELDS) == set(COLUMNS), "JobRecord and JOB_SCHEMA disagree"


def _types_mapper(arrow_type: pa.DataType) -> Any:
    import pandas as pd

    if arrow_type == pa.int32():
        return pd.Int32Dtype()
    return None


def table_to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table with :data:`JOB_SCHEMA` as a pandas frame (nullable ints kept)."""
    frame: pd.DataFrame = table.select(list(COLUMNS)).to_pandas(types_mapper=_types_mapper)
    return frame


def frame_to_table(jobs: pd.DataFrame) -> pa.Table:
    """A job frame as an Arrow table with exactly :data:`JOB_SCHEMA`."""
    try:
        return pa.Table.from_pandas(jobs[list(COLUMNS)], schema=JOB_SCHEMA, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"frame does not fit the job schema: {exc}") from exc


def empty_jobs_frame() -> pd.DataFrame:
    """A frame with no rows and the job schema's columns and dtypes."""
    return table_to_frame(JOB_SCHEMA.empty_table())


def jobs_frame(records: Iterable[JobRecord]) -> pd.DataFrame:
    """Records as a frame with the job schema's columns and dtypes."""
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for rec in records:
        for name in COLUMNS:
            value = getattr(rec, name)
            if name == "extra":
                value = None if value is None else json.dumps(dict(value), sort_keys=True)
            elif name == "nodes" and value is not None:
                value = list(value)
            columns[name].append(value)
    return table_to_frame(pa.Table.from_pydict(columns, schema=JOB_SCHEMA))


def conform(jobs: pd.DataFrame) -> pd.DataFrame:
    """Check ``jobs`` against the schema and return it with the schema's dtypes.

    Raises ``ValueError`` (a bug in the caller, not user input) for missing
    columns, wrong types, nulls in required columns or unknown states.
    """
    missing = [c for c in COLUMNS if c not in jobs.columns]
    if missing:
        raise ValueError(f"job frame lacks column(s): {', '.join(missing)}")
    table = frame_to_table(jobs)
    for name in ("job_id", "source", "backend", "state"):
        if table.column(name).null_count:
            raise ValueError(f"job frame has nulls in required column {name!r}")
    out = table_to_frame(table)
    unknown = sorted(set(out["state"].unique()) - set(STATES))
    if unknown:
        raise ValueError(f"job frame has unknown state(s): {', '.join(map(str, unknown))}")
    return out

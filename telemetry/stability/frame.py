"""The job frame's shared measures: runtime, GPU-hours, the filter, state checks.

Frames have the job schema of :mod:`telemetry.jobs`; nothing here does I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from telemetry.jobs import STATES

if TYPE_CHECKING:
    import pandas as pd

HOUR_S = 3600.0
DAY_S = 86400.0

#: Ended states that are not a completion: their GPU-hours are badput.
BADPUT_STATES: tuple[str, ...] = tuple(
    s for s in STATES if s not in ("completed", "running", "pending")
)


def runtime_hours(jobs: pd.DataFrame) -> pd.Series:
    """Per job, end minus start in hours; NaN where either is unknown."""
    return (jobs["end_time"] - jobs["start_time"]).dt.total_seconds() / HOUR_S


def gpu_hours(jobs: pd.DataFrame) -> pd.Series:
    """Per job, GPUs requested times runtime in hours; NaN where either is unknown."""
    return jobs["gpus"] * runtime_hours(jobs)


def filter_jobs(
    jobs: pd.DataFrame, *, since: datetime | None = None, tenant: str | None = None
) -> pd.DataFrame:
    """The jobs of ``tenant`` (if given) first seen at or after ``since`` (if given).

    A job is first seen at its submit time, else its start, else its end; with
    ``since`` given, jobs with no time at all are left out.
    """
    mask = jobs["job_id"].notna()
    if tenant is not None:
        mask &= jobs["tenant"] == tenant
    if since is not None:
        if since.utcoffset() is None:
            raise ValueError("since must be timezone-aware")
        seen = jobs["submit_time"].fillna(jobs["start_time"]).fillna(jobs["end_time"])
        mask &= seen.notna() & (seen >= since)
    return jobs[mask]


def check_states(jobs: pd.DataFrame) -> None:
    unknown = set(jobs["state"].unique()) - set(STATES)
    if unknown:
        raise ValueError(f"unknown job state(s): {', '.join(sorted(map(str, unknown)))}")


def is_missing(value: object) -> bool:
    """None, NaN or NaT."""
    import pandas as pd

    return value is None or bool(pd.isna(value))  # type: ignore[call-overload]

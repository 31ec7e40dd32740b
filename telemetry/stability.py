"""Job stability analytics: pure functions from a job frame to plain results.

Every function takes a frame with the job schema (:mod:`telemetry.jobs`) and
does no I/O. Definitions (also in ``docs/telemetry.md``):

- **runtime** of a job: ``end_time - start_time``, known only when both are.
- **GPU-hours** of a job: ``gpus * runtime`` in hours, known when gpus and
  runtime are.
- **shares**: a state's part of the total over all states; every share is 0
  when the total is 0 (never NaN), and otherwise the shares sum to 1.
- **failure**: a job whose state is in ``failure_states`` (default
  :data:`telemetry.jobs.FAILURE_STATES`: failed, node_fail, out_of_memory).
- **node-days** of a job: ``num_nodes * runtime`` in days, known when both are.
  Failures per 1,000 node-days counts failures and node-days over the same jobs:
  those whose node-days are known.
- **MTTF** of a job-size bucket: the runtime hours of the bucket's jobs with a
  known runtime (whatever their state, running ones included), divided by the
  number of those jobs that failed; ``None`` when none failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from telemetry.jobs import FAILURE_STATES, STATES

if TYPE_CHECKING:
    import pandas as pd

_HOUR_S = 3600.0
_DAY_S = 86400.0

#: Job-size buckets by GPUs requested, smallest first. 72 GPUs is one GB200
#: NVL72 NVLink domain; 576 is eight of them.
SIZE_BUCKETS: tuple[str, ...] = ("0", "(0,1)", "1", "(1,8]", "(8,72]", "(72,576]", ">576")
_BOUNDED = (("(1,8]", 8.0), ("(8,72]", 72.0), ("(72,576]", 576.0))


def outcome_shares(values: Mapping[str, float]) -> dict[str, float]:
    """Each key's share of the sum of ``values``; all 0 when the sum is not positive."""
    total = sum(values.values())
    if total <= 0:
        return dict.fromkeys(values, 0.0)
    return {key: value / total for key, value in values.items()}


def runtime_hours(jobs: pd.DataFrame) -> pd.Series:
    """Per job, end minus start in hours; NaN where either is unknown."""
    return (jobs["end_time"] - jobs["start_time"]).dt.total_seconds() / _HOUR_S


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


@dataclass(frozen=True)
class StateOutcome:
    """One state's jobs, GPUs requested and GPU-hours, with shares of the totals."""

    state: str
    jobs: int
    share: float
    gpus_requested: float
    gpus_requested_share: float
    gpu_hours: float
    gpu_hours_share: float


@dataclass(frozen=True)
class OutcomeSummary:
    """Jobs by normalized state, by count, GPUs requested and GPU-hours."""

    jobs: int
    gpus_requested: float
    gpu_hours: float
    jobs_with_gpu_hours: int  # jobs whose GPU-hours are known
    by_state: tuple[StateOutcome, ...]  # every state of STATES, in that order

    def state(self, name: str) -> StateOutcome:
        for row in self.by_state:
            if row.state == name:
                return row
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["by_state"] = {row.state: _drop_state(asdict(row)) for row in self.by_state}
        return out


def _drop_state(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("state")
    return row


def _check_states(jobs: pd.DataFrame) -> None:
    unknown = set(jobs["state"].unique()) - set(STATES)
    if unknown:
        raise ValueError(f"unknown job state(s): {', '.join(sorted(map(str, unknown)))}")


def _sum_by_state(values: pd.Series, states: pd.Series) -> dict[str, float]:
    sums = values.groupby(states).sum()
    return {s: float(sums.get(s, 0.0)) for s in STATES}


def outcome_summary(jobs: pd.DataFrame) -> OutcomeSummary:
    """Counts and shares of every state, by jobs, GPUs requested and GPU-hours."""
    _check_states(jobs)
    states = jobs["state"]
    counts_series = states.value_counts()
    counts = {s: int(counts_series.get(s, 0)) for s in STATES}
    gpus = _sum_by_state(jobs["gpus"].fillna(0.0), states)
    hours = gpu_hours(jobs)
    gpu_h = _sum_by_state(hours.fillna(0.0), states)
    count_share = outcome_shares({s: float(n) for s, n in counts.items()})
    gpus_share = outcome_shares(gpus)
    hours_share = outcome_shares(gpu_h)
    return OutcomeSummary(
        jobs=len(jobs),
        gpus_requested=sum(gpus.values()),
        gpu_hours=sum(gpu_h.values()),
        jobs_with_gpu_hours=int(hours.notna().sum()),
        by_state=tuple(
            StateOutcome(
                state=s,
                jobs=counts[s],
                share=count_share[s],
                gpus_requested=gpus[s],
                gpus_requested_share=gpus_share[s],
                gpu_hours=gpu_h[s],
                gpu_hours_share=hours_share[s],
            )
            for s in STATES
        ),
    )


@dataclass(frozen=True)
class FailureRate:
    """Failures per 1,000 node-days over the jobs whose node-days are known."""

    jobs: int  # jobs with known node-days
    failures: int
    node_days: float
    per_1000_node_days: float | None  # None when node_days is 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def failure_rate(jobs: pd.DataFrame, failure_states: Iterable[str] = FAILURE_STATES) -> FailureRate:
    """Failures per 1,000 node-days (see the module docstring for the definition)."""
    _check_states(jobs)
    node_days = jobs["num_nodes"].astype("float64") * runtime_hours(jobs) * _HOUR_S / _DAY_S
    known = node_days.notna()
    failed = jobs["state"].isin(list(failure_states)) & known
    total = float(node_days[known].sum())
    n_failed = int(failed.sum())
    return FailureRate(
        jobs=int(known.sum()),
        failures=n_failed,
        node_days=total,
        per_1000_node_days=1000.0 * n_failed / total if total > 0 else None,
    )


@dataclass(frozen=True)
class SizeBucketMttf:
    """MTTF of one job-size bucket (GPUs requested)."""

    bucket: str
    jobs: int  # jobs in the bucket with a known runtime
    runtime_hours: float
    failures: int
    mttf_hours: float | None  # None when no job of the bucket failed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def size_bucket(gpus: float) -> str:
    """The :data:`SIZE_BUCKETS` label of a job asking for ``gpus`` GPUs."""
    if gpus <= 0:
        return "0"
    if gpus < 1:
        return "(0,1)"
    if gpus == 1:
        return "1"
    for label, upper in _BOUNDED:
        if gpus <= upper:
            return label
    return ">576"


def mttf_by_size(
    jobs: pd.DataFrame, failure_states: Iterable[str] = FAILURE_STATES
) -> list[SizeBucketMttf]:
    """MTTF per job-size bucket, every bucket listed (empty ones with zeros)."""
    _check_states(jobs)
    hours = runtime_hours(jobs)
    known = hours.notna() & jobs["gpus"].notna()
    sized = jobs[known]
    buckets = sized["gpus"].map(size_bucket)
    failed = sized["state"].isin(list(failure_states))
    out: list[SizeBucketMttf] = []
    for label in SIZE_BUCKETS:
        in_bucket = buckets == label
        total = float(hours[known][in_bucket].sum())
        n_failed = int((failed & in_bucket).sum())
        out.append(
            SizeBucketMttf(
                bucket=label,
                jobs=int(in_bucket.sum()),
                runtime_hours=total,
                failures=n_failed,
                mttf_hours=total / n_failed if n_failed else None,
            )
        )
    return out


@dataclass(frozen=True)
class StabilityReport:
    """Everything ``dcops telemetry report stability`` shows."""

    sources: tuple[str, ...]
    since: datetime | None
    tenant: str | None
    failure_states: tuple[str, ...]
    outcomes: OutcomeSummary
    failures: FailureRate
    mttf: tuple[SizeBucketMttf, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "since": self.since.isoformat() if self.since else None,
            "tenant": self.tenant,
            "failure_states": list(self.failure_states),
            **self.outcomes.as_dict(),
            "failure_rate": self.failures.as_dict(),
            "mttf_by_size": [b.as_dict() for b in self.mttf],
        }


def stability_report(
    jobs: pd.DataFrame,
    *,
    since: datetime | None = None,
    tenant: str | None = None,
    failure_states: Iterable[str] = FAILURE_STATES,
) -> StabilityReport:
    """Filter ``jobs`` and compute outcomes, failure rate and MTTF by size."""
    chosen = filter_jobs(jobs, since=since, tenant=tenant)
    fstates = tuple(s for s in STATES if s in set(failure_states))
    return StabilityReport(
        sources=tuple(sorted(str(s) for s in chosen["source"].unique())),
        since=since,
        tenant=tenant,
        failure_states=fstates,
        outcomes=outcome_summary(chosen),
        failures=failure_rate(chosen, fstates),
        mttf=tuple(mttf_by_size(chosen, fstates)),
    )

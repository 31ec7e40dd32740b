"""Jobs by normalized state: counts, GPUs requested and GPU-hours, with their shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from telemetry.jobs import STATES
from telemetry.stability.frame import check_states, gpu_hours

if TYPE_CHECKING:
    import pandas as pd


def outcome_shares(values: Mapping[str, float]) -> dict[str, float]:
    """Each key's share of the sum of ``values``; all 0 when the sum is not positive."""
    total = sum(values.values())
    if total <= 0:
        return dict.fromkeys(values, 0.0)
    return {key: value / total for key, value in values.items()}


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


def _sum_by_state(values: pd.Series, states: pd.Series) -> dict[str, float]:
    sums = values.groupby(states).sum()
    return {s: float(sums.get(s, 0.0)) for s in STATES}


def outcome_summary(jobs: pd.DataFrame) -> OutcomeSummary:
    """Counts and shares of every state, by jobs, GPUs requested and GPU-hours."""
    check_states(jobs)
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

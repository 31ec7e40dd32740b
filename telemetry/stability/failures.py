"""Failures per 1,000 node-days."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from telemetry.jobs import FAILURE_STATES
from telemetry.stability.frame import DAY_S, HOUR_S, check_states, runtime_hours

if TYPE_CHECKING:
    import pandas as pd


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
    """Failures per 1,000 node-days (definition: :mod:`telemetry.stability`)."""
    check_states(jobs)
    node_days = jobs["num_nodes"].astype("float64") * runtime_hours(jobs) * HOUR_S / DAY_S
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

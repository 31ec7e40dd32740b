"""The stability report: filter, then outcomes, failure rate and MTTF by size."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from telemetry.jobs import FAILURE_STATES, STATES
from telemetry.stability.failures import FailureRate, failure_rate
from telemetry.stability.frame import filter_jobs
from telemetry.stability.mttf import SizeBucketMttf, mttf_by_size
from telemetry.stability.outcomes import OutcomeSummary, outcome_summary

if TYPE_CHECKING:
    import pandas as pd


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

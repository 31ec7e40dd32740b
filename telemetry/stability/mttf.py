"""Mean time to failure by job size (GPUs requested)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from telemetry.jobs import FAILURE_STATES
from telemetry.stability.frame import check_states, runtime_hours

if TYPE_CHECKING:
    import pandas as pd

#: Job-size buckets by GPUs requested, smallest first. 72 GPUs is one GB200
#: NVL72 NVLink domain; 576 is eight of them.
SIZE_BUCKETS: tuple[str, ...] = ("0", "(0,1)", "1", "(1,8]", "(8,72]", "(72,576]", ">576")
_BOUNDED = (("(1,8]", 8.0), ("(8,72]", 72.0), ("(72,576]", 576.0))


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
    check_states(jobs)
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

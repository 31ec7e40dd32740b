"""Restart chains and their effective training time ratio (ETTR)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from telemetry.stability.frame import BADPUT_STATES, check_states, is_missing

if TYPE_CHECKING:
    import pandas as pd


def chain_roots(jobs: pd.DataFrame) -> pd.Series:
    """Per job, the ``job_id`` of the first attempt of its restart chain.

    Chains follow ``restart_of`` within one source; a ``restart_of`` naming a job
    not in the frame starts the chain at this job. Cycles raise ``ValueError``.
    """
    ids = list(zip(jobs["source"], jobs["job_id"], strict=True))
    parent = {
        (src, jid): (src, prev)
        for src, jid, prev in zip(jobs["source"], jobs["job_id"], jobs["restart_of"], strict=True)
        if isinstance(prev, str) and prev
    }
    known = set(ids)
    roots: dict[tuple[str, str], str] = {}
    for key in ids:
        path = [key]
        seen = {key}
        cur = key
        while cur in parent and parent[cur] in known and cur not in roots:
            cur = parent[cur]
            if cur in seen:
                raise ValueError(f"restart_of forms a cycle through job {cur[1]!r}")
            seen.add(cur)
            path.append(cur)
        root = roots.get(cur, cur[1])
        for k in path:
            roots[k] = root
    import pandas as pd

    return pd.Series([roots[k] for k in ids], index=jobs.index, dtype=object)


@dataclass(frozen=True)
class ChainEttr:
    """ETTR of one restart chain (see :func:`ettr`)."""

    source: str
    first_job_id: str
    last_job_id: str
    attempts: int
    interruptions: int  # attempts that ended without completing
    state: str  # state of the last attempt
    wall_clock_s: float
    productive_s: float
    ettr: float | None  # None when wall-clock is 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EttrSummary:
    """ETTR of every chain, and of all of them together (sum over sum)."""

    chains: tuple[ChainEttr, ...]
    wall_clock_s: float
    productive_s: float
    ettr: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "chains": len(self.chains),
            "wall_clock_s": self.wall_clock_s,
            "productive_s": self.productive_s,
            "ettr": self.ettr,
            "by_chain": [c.as_dict() for c in self.chains],
        }


def ettr(
    jobs: pd.DataFrame,
    *,
    checkpoint_interval_s: float | None = None,
    startup_s: float = 0.0,
    now: datetime | None = None,
) -> EttrSummary:
    """Effective training time ratio of each restart chain.

    Meta RSC (Kokolis et al., "Revisiting Reliability in Large-Scale Machine
    Learning Research Clusters", arXiv 2410.21680) defines ETTR as productive
    training time over the wall-clock time the job needed. Here, precisely, for
    a chain of attempts linked by ``restart_of``:

    - **wall-clock** = end of the last attempt minus the first submission (the
      first attempt's submit time, else its start): queueing and restart waits
      count against the job. A chain whose last attempt has no end is measured
      up to ``now`` when given, else left out.
    - **productive** = the sum over attempts of ``runtime - startup_s - lost``,
      floored at 0, where ``runtime`` = end - start (or ``now`` - start for a
      running last attempt) and ``lost`` is the work redone after an
      interruption: ``checkpoint_interval_s / 2`` (the expected loss for a
      failure at a uniformly random time) for every attempt that ended without
      completing, 0 without a checkpoint interval. Attempts that never started
      add nothing.
    - **ETTR** = productive / wall-clock (None when wall-clock is 0); the
      summary's ETTR is the sum of productive over the sum of wall-clock.
    """
    check_states(jobs)
    if not len(jobs):
        return EttrSummary((), 0.0, 0.0, None)
    roots = chain_roots(jobs)
    frame = jobs.assign(_root=roots.to_numpy())
    lost_each = 0.0 if checkpoint_interval_s is None else checkpoint_interval_s / 2.0
    chains: list[ChainEttr] = []
    for (source, root), chain in frame.groupby(["source", "_root"], sort=True):
        group = chain.sort_values(["start_time", "submit_time"], na_position="first")
        first_seen = group["submit_time"].fillna(group["start_time"]).min()
        last = group.iloc[-1]
        end = now if is_missing(last["end_time"]) else group["end_time"].max()
        if end is None or is_missing(first_seen):
            continue
        productive = 0.0
        interruptions = 0
        for start, ended, state in zip(
            group["start_time"], group["end_time"], group["state"], strict=True
        ):
            if is_missing(start):
                continue
            stop = now if is_missing(ended) else ended
            if stop is None:
                continue
            interrupted = state in BADPUT_STATES
            interruptions += int(interrupted)
            run = max((stop - start).total_seconds(), 0.0)
            productive += max(run - startup_s - (lost_each if interrupted else 0.0), 0.0)
        wall = max((end - first_seen).total_seconds(), 0.0)
        chains.append(
            ChainEttr(
                source=str(source),
                first_job_id=str(root),
                last_job_id=str(last["job_id"]),
                attempts=len(group),
                interruptions=interruptions,
                state=str(last["state"]),
                wall_clock_s=wall,
                productive_s=productive,
                ettr=productive / wall if wall > 0 else None,
            )
        )
    wall_sum = sum(c.wall_clock_s for c in chains)
    prod_sum = sum(c.productive_s for c in chains)
    return EttrSummary(tuple(chains), wall_sum, prod_sum, prod_sum / wall_sum if wall_sum else None)

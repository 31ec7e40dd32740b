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


# -- restart chains, ETTR, interruptions per node, lemon nodes, badput ----------------

#: Ended states that are not a completion: their GPU-hours are badput.
BADPUT_STATES: tuple[str, ...] = tuple(
    s for s in STATES if s not in ("completed", "running", "pending")
)


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
    _check_states(jobs)
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
        end = now if _missing(last["end_time"]) else group["end_time"].max()
        if end is None or _missing(first_seen):
            continue
        productive = 0.0
        interruptions = 0
        for start, ended, state in zip(
            group["start_time"], group["end_time"], group["state"], strict=True
        ):
            if _missing(start):
                continue
            stop = now if _missing(ended) else ended
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


def _missing(value: object) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))  # type: ignore[call-overload]


#: Columns of an XID table (one row per XID event): node, time, XID code.
XID_COLUMNS: tuple[str, ...] = ("node", "time", "xid")


def _job_nodes(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per (job, node) for jobs that name their nodes."""
    import pandas as pd

    rows = jobs[jobs["nodes"].notna()][
        ["source", "job_id", "nodes", "state", "start_time", "end_time", "extra"]
    ]
    exploded = rows.explode("nodes").rename(columns={"nodes": "node"})
    exploded = exploded[exploded["node"].notna()]
    return pd.DataFrame(exploded).reset_index(drop=True)


def _failed_node(extra: object) -> str | None:
    if not isinstance(extra, str) or "failed_node" not in extra:
        return None
    import json

    try:
        value = json.loads(extra).get("failed_node")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def node_interruptions(
    jobs: pd.DataFrame,
    xids: pd.DataFrame | None = None,
    *,
    failure_states: Iterable[str] = FAILURE_STATES,
) -> pd.DataFrame:
    """Interruptions attributed to nodes, with each node's exposure.

    A job's interruption is charged to a node when the job ended ``node_fail``
    (to the node Slurm names in ``extra.failed_node`` when it does, else to
    every node of the job), or when it ended in another failure state and the
    XID table has an event on one of its nodes between its start and end. One
    job charges a node at most once. **Exposure** = node-days of every job that
    ran on the node (runtime known). Columns: ``node, interruptions, node_fail,
    xid, jobs, exposure_node_days, per_1000_node_days, last_time``.
    """
    import pandas as pd

    _check_states(jobs)
    fstates = set(failure_states)
    per = _job_nodes(jobs)
    per["days"] = (per["end_time"] - per["start_time"]).dt.total_seconds() / _DAY_S
    exposure = per.groupby("node")["days"].sum(min_count=1).fillna(0.0)
    hits: list[pd.DataFrame] = []
    nf = per[per["state"] == "node_fail"].copy()
    if len(nf):
        named = nf["extra"].map(_failed_node)
        charged = named.isna() | (named == nf["node"])
        nf = nf[charged]
        hits.append(nf.assign(cause="node_fail", when=nf["end_time"]))
    if xids is not None and len(xids):
        missing = [c for c in XID_COLUMNS if c not in xids.columns]
        if missing:
            raise ValueError(f"XID table lacks column(s): {', '.join(missing)}")
        failed = per[per["state"].isin(fstates - {"node_fail"})]
        x = xids[list(XID_COLUMNS)].copy()
        x["time"] = pd.to_datetime(x["time"], utc=True)
        m = failed.merge(x, on="node")
        m = m[(m["time"] >= m["start_time"]) & (m["time"] <= m["end_time"])]
        m = m.sort_values("time").drop_duplicates(["source", "job_id", "node"])
        hits.append(m.assign(cause="xid", when=m["time"]))
    cols = [
        "node",
        "interruptions",
        "node_fail",
        "xid",
        "jobs",
        "exposure_node_days",
        "per_1000_node_days",
        "last_time",
    ]
    if not hits:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    allhits = pd.concat([h[["source", "job_id", "node", "cause", "when"]] for h in hits])
    allhits = allhits.drop_duplicates(["source", "job_id", "node"])
    g = allhits.groupby("node")
    out = pd.DataFrame(
        {
            "interruptions": g.size(),
            "node_fail": g["cause"].apply(lambda c: int((c == "node_fail").sum())),
            "xid": g["cause"].apply(lambda c: int((c == "xid").sum())),
            "jobs": g["job_id"].nunique(),
            "last_time": g["when"].max(),
        }
    )
    out["exposure_node_days"] = exposure.reindex(out.index).fillna(0.0)
    out["per_1000_node_days"] = [
        1000.0 * n / d if d > 0 else None
        for n, d in zip(out["interruptions"], out["exposure_node_days"], strict=True)
    ]
    out = out.reset_index().rename(columns={"index": "node"})
    return (
        out[cols]
        .sort_values(["interruptions", "node"], ascending=[False, True])
        .reset_index(drop=True)
    )


@dataclass(frozen=True)
class LemonNode:
    """A node that keeps interrupting jobs."""

    rank: int
    node: str
    interruptions: int
    node_fail: int
    xid: int
    jobs: int
    exposure_node_days: float
    per_1000_node_days: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def lemon_nodes(
    interruptions: pd.DataFrame, *, min_interruptions: int = 2, top: int | None = None
) -> list[LemonNode]:
    """Repeat offenders: nodes with at least ``min_interruptions``, worst first.

    Ranked by interruptions, then by interruptions per 1,000 node-days of
    exposure (a node that failed as often with less work is worse), then name.
    """
    rows = interruptions[interruptions["interruptions"] >= min_interruptions].copy()
    rows["_rate"] = rows["per_1000_node_days"].astype("float64").fillna(float("inf"))
    rows = rows.sort_values(["interruptions", "_rate", "node"], ascending=[False, False, True])
    if top is not None:
        rows = rows.head(top)
    return [
        LemonNode(
            rank=i + 1,
            node=str(r["node"]),
            interruptions=int(r["interruptions"]),
            node_fail=int(r["node_fail"]),
            xid=int(r["xid"]),
            jobs=int(r["jobs"]),
            exposure_node_days=float(r["exposure_node_days"]),
            per_1000_node_days=None
            if r["per_1000_node_days"] is None or r["per_1000_node_days"] != r["per_1000_node_days"]
            else float(r["per_1000_node_days"]),
        )
        for i, (_, r) in enumerate(rows.iterrows())
    ]


@dataclass(frozen=True)
class Badput:
    """GPU-hours and energy of ended jobs that did not complete."""

    gpu_hours: float  # all ended jobs with known GPU-hours
    badput_gpu_hours: float
    gpu_hours_share: float
    energy_mj: int | None  # all ended jobs with known energy; None without energy
    badput_energy_mj: int | None
    energy_share: float | None
    by_state: dict[str, dict[str, float | int | None]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def badput(jobs: pd.DataFrame, job_energy: pd.DataFrame | None = None) -> Badput:
    """Badput: the GPU-hours (and energy) of jobs that ended without completing.

    Ended jobs are those in ``completed`` or :data:`BADPUT_STATES` (failed,
    cancelled, timeout, node_fail, preempted, out_of_memory); their badput is
    the part in :data:`BADPUT_STATES`. ``job_energy`` (columns ``job_id``,
    ``energy_mj``, e.g. :attr:`telemetry.energy.EnergyAccount.jobs`) adds energy.
    """
    _check_states(jobs)
    ended = jobs[jobs["state"].isin(("completed", *BADPUT_STATES))]
    hours = gpu_hours(ended).fillna(0.0)
    bad = ended["state"].isin(BADPUT_STATES)
    total_h = float(hours.sum())
    bad_h = float(hours[bad].sum())
    energy = None
    if job_energy is not None:
        e = job_energy.groupby("job_id")["energy_mj"].sum()
        energy = ended["job_id"].map(e).fillna(0).astype("int64")
    by_state: dict[str, dict[str, float | int | None]] = {}
    for s in BADPUT_STATES:
        mask = ended["state"] == s
        by_state[s] = {
            "jobs": int(mask.sum()),
            "gpu_hours": float(hours[mask].sum()),
            "energy_mj": None if energy is None else int(energy[mask].sum()),
        }
    e_total = None if energy is None else int(energy.sum())
    e_bad = None if energy is None else int(energy[bad].sum())
    return Badput(
        gpu_hours=total_h,
        badput_gpu_hours=bad_h,
        gpu_hours_share=bad_h / total_h if total_h > 0 else 0.0,
        energy_mj=e_total,
        badput_energy_mj=e_bad,
        energy_share=None if not e_total else (e_bad or 0) / e_total,
        by_state=by_state,
    )

"""Attribute GPU interval energy to jobs, tenants, billing periods and idle, exactly.

An **allocation** frame has one row per GPU a job held (the jobmap's columns):

============  ==================  ===========================================
column        type                meaning
============  ==================  ===========================================
``node``      string              node name
``gpu``       int                 GPU index on the node
``job_id``    string              the job (same ids as the job store)
``tenant``    string, nullable    the tenant billed for it
``start_s``   float               allocation start, Unix epoch seconds
``end_s``     float, nullable     allocation end (null: still allocated)
============  ==================  ===========================================

**Exact reconciliation.** For each GPU the interval energies (integer mJ) define
a cumulative energy function ``F(t)``: the energy of the intervals ended by
``t`` plus ``floor(E * (t - t0) / (t1 - t0))`` of the interval holding ``t``.
``F`` is integer-valued and non-decreasing even in floating point (each step of
it is monotone, and the fraction is exactly 1 at ``t1``). The energy of any
window is ``F(end) - F(start)``: an integer, never negative, and the windows
of a GPU that do not overlap never sum past the GPU's total. A window at the
edge of an interval gets that interval's energy in proportion to time. So
``allocated + idle == metered`` holds to the millijoule, for every GPU and
period, with idle computed as the difference (never negative).

Overlapping allocations on one GPU (clock skew, bad data) would bill the same
energy twice: the later one is trimmed to start where the earlier ended, and
the report counts the trimmed seconds.
"""

from __future__ import annotations

import math
from calendar import monthrange
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from dcops.errors import InputError
from telemetry.energy.intervals import (
    DEFAULT_MAX_POWER_W,
    GpuSamples,
    Intervals,
    arrow_to_gpu_samples,
    concat_samples,
    intervals_from_samples,
    to_gpu_samples,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from telemetry.energy.account import EnergyAccount

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

ALLOCATION_COLUMNS: tuple[str, ...] = ("node", "gpu", "job_id", "tenant", "start_s", "end_s")

Period = Literal["day", "month", "all"]
PERIODS: tuple[str, ...] = ("day", "month", "all")


def period_windows(lo: float, hi: float, period: str) -> list[tuple[str, float, float]]:
    """Calendar (UTC) billing periods overlapping ``[lo, hi]``, clipped to it."""
    if hi < lo:
        return []
    if period == "all":
        return [("all", lo, hi)]
    out: list[tuple[str, float, float]] = []
    if period == "day":
        first = math.floor(lo / 86400.0)
        last = math.floor(hi / 86400.0)
        for d in range(first, last + 1):
            ps, pe = d * 86400.0, (d + 1) * 86400.0
            label = datetime.fromtimestamp(ps, UTC).strftime("%Y-%m-%d")
            out.append((label, max(ps, lo), min(pe, hi)))
    elif period == "month":
        day = datetime.fromtimestamp(lo, UTC)
        y, m = day.year, day.month
        while True:
            ps = datetime(y, m, 1, tzinfo=UTC).timestamp()
            pe = ps + monthrange(y, m)[1] * 86400.0
            if ps > hi:
                break
            out.append((f"{y:04d}-{m:02d}", max(ps, lo), min(pe, hi)))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    else:
        raise InputError(f"unknown billing period {period!r} (known: {', '.join(PERIODS)})")
    # A window reduced to its end instant belongs to the next period only.
    return [w for w in out if w[2] > w[1] or len(out) == 1]


@dataclass(frozen=True)
class Allocations:
    """Allocations checked, overlap-trimmed and flattened to arrays."""

    node: npt.NDArray[np.object_]
    gpu: I64
    job_id: npt.NDArray[np.object_]
    tenant: npt.NDArray[np.object_]
    start: F64
    end: F64  # +inf: still allocated
    trimmed_s: float

    def __len__(self) -> int:
        return len(self.start)


def normalize_allocations(allocations: pd.DataFrame) -> Allocations:
    """Check an allocation frame and trim overlaps per GPU (see the module docstring)."""
    import pandas as pd

    missing = [c for c in ALLOCATION_COLUMNS if c not in allocations.columns]
    if missing:
        raise InputError(
            f"allocations lack column(s) {', '.join(missing)} "
            f"(need {', '.join(ALLOCATION_COLUMNS)})"
        )
    a = allocations[list(ALLOCATION_COLUMNS)]
    if a[["node", "gpu", "job_id", "start_s"]].isna().any().any():
        raise InputError("allocations have rows without node, gpu, job_id or start_s")
    try:
        start = pd.to_numeric(a["start_s"]).to_numpy(np.float64)
        end = pd.to_numeric(a["end_s"]).to_numpy(np.float64, na_value=np.nan)
        gpu = pd.to_numeric(a["gpu"]).to_numpy(np.int64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"allocations: gpu, start_s and end_s must be numbers ({exc})") from exc
    end = np.where(np.isnan(end), np.inf, end)
    node = a["node"].astype(str).to_numpy(object)
    job = a["job_id"].astype(str).to_numpy(object)
    tenant = a["tenant"].astype(object).where(a["tenant"].notna(), None).to_numpy(object)
    keep = end > start
    node, gpu, job, tenant, start, end = (
        node[keep],
        gpu[keep],
        job[keep],
        tenant[keep],
        start[keep],
        end[keep],
    )
    if not len(start):
        return Allocations(node, gpu, job, tenant, start, end, 0.0)
    codes, _ = pd.factorize(node)
    order = np.lexsort((job, start, gpu, codes))
    node, gpu, job, tenant, start, end, codes = (
        x[order] for x in (node, gpu, job, tenant, start, end, codes)
    )
    group = np.concatenate(([True], (codes[1:] != codes[:-1]) | (gpu[1:] != gpu[:-1])))
    # Latest end among the earlier allocations of the same GPU.
    prev_end = pd.Series(end).groupby(np.cumsum(group)).cummax().shift(1).to_numpy()
    prev_end = np.where(group, -np.inf, prev_end)
    new_start = np.maximum(start, prev_end)
    trimmed = float(np.sum(np.minimum(new_start, end) - start))
    ok = end > new_start
    return Allocations(node[ok], gpu[ok], job[ok], tenant[ok], new_start[ok], end[ok], trimmed)


def cumulative_energy(iv: Intervals, qkey: I64, qt: F64) -> tuple[I64, I64]:
    """``F(t)`` of each query (GPU key, time), measured and estimated parts (mJ).

    Only keys present in ``iv`` may be queried.
    """
    n = len(iv)
    em = np.where(iv.measured, iv.energy_mj, 0)
    ee = np.where(iv.measured, 0, iv.energy_mj)
    cm = np.concatenate(([0], np.cumsum(em)))
    ce = np.concatenate(([0], np.cumsum(ee)))
    if not len(qt):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    tref = float(iv.t0.min())
    tmax = float(iv.t1.max())
    stride = math.ceil((tmax - tref) * 1e6) + 2
    qclip = np.clip(qt, tref, tmax)
    if (int(iv.key.max()) + 1) * stride < 2**62:
        ckey = iv.key * stride + np.floor((iv.t1 - tref) * 1e6).astype(np.int64)
        qc = qkey * stride + np.floor((qclip - tref) * 1e6).astype(np.int64)
        idx = np.searchsorted(ckey, qc, side="left")
        # Microsecond keys can only land before the exact interval (when several
        # intervals end within one microsecond): step forward to it.
        while True:
            safe = np.minimum(idx, n - 1)
            ahead = (idx < n) & (iv.key[safe] == qkey) & (iv.t1[safe] < qclip)
            if not ahead.any():
                break
            idx = idx + ahead
    else:  # very long spans on very many GPUs: search GPU by GPU
        idx = np.empty(len(qt), np.int64)
        starts = np.searchsorted(iv.key, qkey, side="left")
        ends = np.searchsorted(iv.key, qkey, side="right")
        for i in range(len(qt)):
            lo, hi = int(starts[i]), int(ends[i])
            idx[i] = lo + int(np.searchsorted(iv.t1[lo:hi], qclip[i], side="left"))
    inside = idx < n
    safe = np.where(inside, idx, 0)
    inside &= iv.key[safe] == qkey
    dt = iv.t1[safe] - iv.t0[safe]
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        frac = np.nan_to_num(np.clip((qclip - iv.t0[safe]) / dt, 0.0, 1.0), nan=0.0)
    part_m = np.where(inside, np.floor(em[safe].astype(np.float64) * frac), 0.0)
    part_e = np.where(inside, np.floor(ee[safe].astype(np.float64) * frac), 0.0)
    return cm[idx] + part_m.astype(np.int64), ce[idx] + part_e.astype(np.int64)


@dataclass
class _Partial:
    jobs: list[pd.DataFrame]
    gpus: list[pd.DataFrame]


class EnergyLedger:
    """Accumulates chunks of samples (in time order) into an :class:`EnergyAccount`.

    ``since``/``until`` (epoch seconds) bound the accounted time; ``period`` is
    the billing period (``day``, ``month`` or ``all``). Chunks may be any split
    of the samples (by hour, by day partition) as long as every GPU's readings
    come in time order across chunks: the last reading of each GPU is carried
    into the next chunk, so results do not depend on the split.
    """

    def __init__(
        self,
        allocations: pd.DataFrame,
        *,
        since: float | None = None,
        until: float | None = None,
        period: str = "day",
        max_power_w: float = DEFAULT_MAX_POWER_W,
    ) -> None:
        if period not in PERIODS:
            raise InputError(f"unknown billing period {period!r} (known: {', '.join(PERIODS)})")
        self.allocations = normalize_allocations(allocations)
        self.since = -math.inf if since is None else float(since)
        self.until = math.inf if until is None else float(until)
        if self.until <= self.since:
            raise InputError("until must be after since")
        self.period = period
        self.max_power_w = max_power_w
        self._carry: GpuSamples | None = None
        self._parts = _Partial([], [])
        self.resets = 0
        self.wraps = 0
        self.unmetered_intervals = 0
        self.samples = 0
        self.estimated_gpus: set[tuple[str, int]] = set()

    def add(self, samples: pd.DataFrame | pa.Table) -> None:
        """Account one chunk of samples (a pandas frame or an Arrow table)."""
        import pyarrow as pa

        if isinstance(samples, pa.Table):
            self.add_gpu_samples(arrow_to_gpu_samples(samples))
        else:
            self.add_gpu_samples(to_gpu_samples(samples))

    def add_gpu_samples(self, chunk: GpuSamples) -> None:
        self.samples += len(chunk)
        if self._carry is not None and len(chunk):
            _check_after_carry(self._carry, chunk)
            chunk = concat_samples(self._carry, chunk)
        elif self._carry is not None:
            chunk = self._carry
        iv, self._carry = intervals_from_samples(chunk, max_power_w=self.max_power_w)
        if len(iv):
            self._account(iv)

    def _count(self, iv: Intervals) -> None:
        self.resets += iv.resets
        self.wraps += iv.wraps
        self.unmetered_intervals += iv.unmetered
        for k in iv.estimated_keys:
            self.estimated_gpus.add((iv.nodes[k // iv.width], k % iv.width))

    def _account(self, iv: Intervals) -> None:
        import pandas as pd

        self._count(iv)
        lo = max(float(iv.t0.min()), self.since)
        hi = min(float(iv.t1.max()), self.until)
        windows = period_windows(lo, hi, self.period)
        if not windows:
            return
        keys = iv.key[np.concatenate(([True], iv.key[1:] != iv.key[:-1]))]  # sorted runs
        # GPU x period totals.
        nk, nw = len(keys), len(windows)
        gk = np.repeat(keys, nw)
        ps = np.tile(np.array([w[1] for w in windows]), nk)
        pe = np.tile(np.array([w[2] for w in windows]), nk)
        labels = np.tile(np.array([w[0] for w in windows], dtype=object), nk)
        # Allocation pieces: each allocation on a GPU of this chunk, cut by period.
        a = self.allocations
        codes = pd.Index(iv.nodes).get_indexer(pd.Index(a.node))
        ok = (codes >= 0) & (a.gpu < iv.width)
        akey = np.where(ok, codes * iv.width + a.gpu, -1)
        ok &= np.isin(akey, keys) & (a.end > lo) & (a.start < hi)
        sel = np.flatnonzero(ok)
        p_idx, p_lab, p_s, p_e = _pieces(a, sel, windows)
        pi = np.concatenate(p_idx) if p_idx else np.zeros(0, np.int64)
        pk = akey[pi]
        qs = np.concatenate([ps, pe, *p_s, *p_e])
        qk = np.concatenate([gk, gk, pk, pk])
        fm, fe = cumulative_energy(iv, qk, qs)
        ng = len(gk)
        npc = len(pi)
        g_m = fm[ng : 2 * ng] - fm[:ng]
        g_e = fe[ng : 2 * ng] - fe[:ng]
        j_m = fm[2 * ng + npc :] - fm[2 * ng : 2 * ng + npc]
        j_e = fe[2 * ng + npc :] - fe[2 * ng : 2 * ng + npc]
        # GPU-seconds of a piece: only the part this chunk's readings of the GPU cover.
        first = np.flatnonzero(np.concatenate(([True], iv.key[1:] != iv.key[:-1])))
        last = np.concatenate((first[1:] - 1, [len(iv) - 1]))
        pos = np.searchsorted(keys, pk)
        cov_lo = iv.t0[first][pos]
        cov_hi = iv.t1[last][pos]
        if npc:
            piece_s = np.maximum(
                np.minimum(np.concatenate(p_e), cov_hi) - np.maximum(np.concatenate(p_s), cov_lo),
                0.0,
            )
        else:
            piece_s = np.zeros(0)
        jobs = pd.DataFrame(
            {
                "job_id": a.job_id[pi],
                "tenant": a.tenant[pi],
                "period": np.concatenate(p_lab) if npc else np.zeros(0, object),
                "key": pk,
                "gpu_s": piece_s,
                "measured_mj": j_m,
                "estimated_mj": j_e,
            }
        )
        alloc = jobs.groupby(["key", "period"], sort=False)[["measured_mj", "estimated_mj"]].sum()
        gpus = pd.DataFrame(
            {"key": gk, "period": labels, "metered_m": g_m, "metered_e": g_e}
        ).set_index(["key", "period"])
        gpus = gpus.join(
            alloc.rename(columns={"measured_mj": "alloc_m", "estimated_mj": "alloc_e"})
        )
        gpus = gpus.fillna(0).astype(np.int64).reset_index()
        for frame in (jobs, gpus):
            k = frame.pop("key").to_numpy(np.int64)
            frame["node"] = np.array(iv.nodes, dtype=object)[k // iv.width]
            frame["gpu"] = k % iv.width
        self._parts.jobs.append(jobs)
        self._parts.gpus.append(gpus)

    def finish(self) -> EnergyAccount:
        """The account of everything added so far."""
        from telemetry.energy.account import build_account

        return build_account(self, self._parts.jobs, self._parts.gpus)


def _pieces(
    a: Allocations, sel: I64, windows: list[tuple[str, float, float]]
) -> tuple[list[I64], list[npt.NDArray[np.object_]], list[F64], list[F64]]:
    """The selected allocations cut by period windows: (index, label, start, end) lists."""
    p_idx: list[I64] = []
    p_lab: list[npt.NDArray[np.object_]] = []
    p_s: list[F64] = []
    p_e: list[F64] = []
    for label, ws, we in windows:
        s = np.maximum(a.start[sel], ws)
        e = np.minimum(a.end[sel], we)
        hit = e > s
        p_idx.append(sel[hit])
        p_s.append(s[hit])
        p_e.append(e[hit])
        p_lab.append(np.full(int(hit.sum()), label, dtype=object))
    return p_idx, p_lab, p_s, p_e


def _check_after_carry(carry: GpuSamples, chunk: GpuSamples) -> None:
    """InputError if a GPU's first reading in ``chunk`` is not after its carried one."""
    import pandas as pd

    width = max(int(chunk.gpu.max()), 0) + 1 if len(chunk) else 1
    key = chunk.node * width + chunk.gpu  # chunk is sorted by this key, then time
    first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    if carry.nodes == chunk.nodes and len(carry) and int(carry.gpu.max()) < width:
        # Same node codes (chunks of one store): compare in numpy by GPU key.
        ckey = carry.node * width + carry.gpu  # the carry is sorted by key, one per GPU
        fkey = key[first]
        pos = np.minimum(np.searchsorted(ckey, fkey), len(ckey) - 1)
        hit = ckey[pos] == fkey
        bad = np.flatnonzero(hit & (chunk.ts[first] <= carry.ts[pos]))
        if len(bad):
            i = int(bad[0])
            raise InputError(
                f"samples out of order: {chunk.nodes[chunk.node[first[i]]]} GPU "
                f"{chunk.gpu[first[i]]} has a reading at {chunk.ts[first[i]]} in a later "
                f"chunk, after one at {carry.ts[pos[i]]}"
            )
        return
    firsts = pd.DataFrame(
        {
            "node": np.asarray(chunk.nodes, dtype=object)[chunk.node[first]],
            "gpu": chunk.gpu[first],
            "t": chunk.ts[first],
        }
    )
    last = pd.DataFrame(
        {"node": np.asarray(carry.nodes, dtype=object)[carry.node], "gpu": carry.gpu, "t": carry.ts}
    )
    both = firsts.merge(last, on=["node", "gpu"], suffixes=("", "_prev"))
    late = both[both["t"] <= both["t_prev"]]
    if len(late):
        row = late.iloc[0]
        raise InputError(
            f"samples out of order: {row['node']} GPU {row['gpu']} has a reading at "
            f"{row['t']} in a later chunk, after one at {row['t_prev']}"
        )


def account_energy(
    samples: pd.DataFrame | pa.Table | Iterable[pd.DataFrame | pa.Table],
    allocations: pd.DataFrame,
    *,
    since: float | None = None,
    until: float | None = None,
    period: str = "day",
    max_power_w: float = DEFAULT_MAX_POWER_W,
) -> EnergyAccount:
    """Energy per GPU, job, tenant and period from samples (a frame or chunks of one)."""
    import pandas as pd
    import pyarrow as pa

    ledger = EnergyLedger(
        allocations, since=since, until=until, period=period, max_power_w=max_power_w
    )
    chunks = [samples] if isinstance(samples, pd.DataFrame | pa.Table) else samples
    for chunk in chunks:
        ledger.add(chunk)
    return ledger.finish()

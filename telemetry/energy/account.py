"""The energy account: integer-mJ figures with provenance, and the facility view.

Every figure is an :class:`EnergyFigure`: measured mJ (energy-counter deltas)
plus estimated mJ (power integrated where there was no usable counter), both
integers. Its ``provenance`` is ``measured``, ``estimated`` or ``mixed``.

The facility view turns IT energy into what a site pays and emits:
``facility_kwh = it_kwh * pue``, ``co2_kg = facility_kwh * carbon_g_per_kwh /
1000``, ``cost = facility_kwh * price_per_kwh``. Defaults: PUE 1.0 (IT energy
only; the average data center is about 1.55-1.58, Uptime Institute 2022-23,
give your site's own figure), 56 gCO2/kWh (France 2023, codecarbon data), no price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from telemetry.energy.attribute import EnergyLedger

MJ_PER_KWH = 3_600_000_000  # 1 kWh = 3.6e6 J = 3.6e9 mJ

#: Default facility figures (see the module docstring).
DEFAULT_PUE = 1.0
TYPICAL_PUE = 1.57
DEFAULT_CARBON_G_PER_KWH = 56.0  # France 2023


def kwh(mj: int) -> float:
    return mj / MJ_PER_KWH


@dataclass(frozen=True)
class EnergyFigure:
    """Energy in whole millijoules, split by how it was obtained."""

    measured_mj: int
    estimated_mj: int

    @property
    def total_mj(self) -> int:
        return self.measured_mj + self.estimated_mj

    @property
    def kwh(self) -> float:
        return kwh(self.total_mj)

    @property
    def provenance(self) -> str:
        if self.estimated_mj and self.measured_mj:
            return "mixed"
        return "estimated" if self.estimated_mj else "measured"

    def __add__(self, other: EnergyFigure) -> EnergyFigure:
        return EnergyFigure(
            self.measured_mj + other.measured_mj, self.estimated_mj + other.estimated_mj
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "energy_mj": self.total_mj,
            "energy_kwh": self.kwh,
            "measured_mj": self.measured_mj,
            "estimated_mj": self.estimated_mj,
            "provenance": self.provenance,
        }


@dataclass(frozen=True)
class FacilityRates:
    """How IT energy becomes facility energy, carbon and money."""

    pue: float = DEFAULT_PUE
    carbon_g_per_kwh: float = DEFAULT_CARBON_G_PER_KWH
    price_per_kwh: float | None = None
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.pue) and self.pue >= 1.0):
            raise ValueError("PUE must be a number >= 1.0")
        if not (math.isfinite(self.carbon_g_per_kwh) and self.carbon_g_per_kwh >= 0):
            raise ValueError("carbon intensity must be a number >= 0")
        if self.price_per_kwh is not None and not (
            math.isfinite(self.price_per_kwh) and self.price_per_kwh >= 0
        ):
            raise ValueError("price per kWh must be a number >= 0")

    def view(self, figure: EnergyFigure) -> dict[str, Any]:
        """IT kWh, facility kWh (x PUE), kg CO2 and cost (None without a price)."""
        it = figure.kwh
        fac = it * self.pue
        return {
            "it_kwh": it,
            "facility_kwh": fac,
            "co2_kg": fac * self.carbon_g_per_kwh / 1000.0,
            "cost": None if self.price_per_kwh is None else fac * self.price_per_kwh,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "pue": self.pue,
            "carbon_g_per_kwh": self.carbon_g_per_kwh,
            "price_per_kwh": self.price_per_kwh,
            "currency": self.currency,
        }


def _fig(row: Any, m: str = "measured_mj", e: str = "estimated_mj") -> EnergyFigure:
    return EnergyFigure(int(row[m]), int(row[e]))


@dataclass(frozen=True)
class EnergyAccount:
    """Energy of a time range, by job, tenant, period and GPU; reconciles exactly.

    Frames (integer mJ columns ``measured_mj``, ``estimated_mj``, ``energy_mj``):

    - ``jobs``: ``job_id, tenant, gpus, gpu_hours`` (allocated GPU-hours with readings)
    - ``tenants``: ``tenant, period, jobs, gpu_hours``
    - ``gpus``: ``node, gpu, metered_mj, allocated_mj, idle_mj, estimated`` (bool)
    - ``periods``: ``period, metered_mj, allocated_mj, idle_mj``
    """

    since_s: float | None
    until_s: float | None
    period: str
    metered: EnergyFigure
    allocated: EnergyFigure
    idle: EnergyFigure  # GPU powered, allocated to no job
    jobs: pd.DataFrame
    tenants: pd.DataFrame
    gpus: pd.DataFrame
    periods: pd.DataFrame
    samples: int
    resets: int
    wraps: int
    unmetered_intervals: int
    trimmed_overlap_s: float

    @property
    def reconciles(self) -> bool:
        """``allocated + idle == metered`` to the millijoule (true by construction)."""
        return (self.allocated + self.idle) == self.metered

    def estimated_gpus(self) -> list[str]:
        est = self.gpus[self.gpus["estimated"]]
        return [f"{n}/{g}" for n, g in zip(est["node"], est["gpu"], strict=True)]

    def as_dict(self, rates: FacilityRates | None = None) -> dict[str, Any]:
        rates = rates or FacilityRates()

        def with_view(fig: EnergyFigure) -> dict[str, Any]:
            return {**fig.as_dict(), **rates.view(fig)}

        jobs = []
        for row in self.jobs.to_dict("records"):
            fig = EnergyFigure(int(row["measured_mj"]), int(row["estimated_mj"]))
            jobs.append(
                {
                    "job_id": row["job_id"],
                    "tenant": row["tenant"],
                    "gpus": int(row["gpus"]),
                    "gpu_hours": float(row["gpu_hours"]),
                    **with_view(fig),
                }
            )
        tenants = []
        for row in self.tenants.to_dict("records"):
            fig = EnergyFigure(int(row["measured_mj"]), int(row["estimated_mj"]))
            tenants.append(
                {
                    "tenant": row["tenant"],
                    "period": row["period"],
                    "jobs": int(row["jobs"]),
                    "gpu_hours": float(row["gpu_hours"]),
                    **with_view(fig),
                }
            )
        periods = [
            {
                "period": row["period"],
                "metered_mj": int(row["metered_mj"]),
                "allocated_mj": int(row["allocated_mj"]),
                "idle_mj": int(row["idle_mj"]),
            }
            for row in self.periods.to_dict("records")
        ]
        return {
            "since_s": self.since_s,
            "until_s": self.until_s,
            "period": self.period,
            "rates": rates.as_dict(),
            "metered": with_view(self.metered),
            "allocated": with_view(self.allocated),
            "idle": with_view(self.idle),
            "reconciliation": {
                "allocated_mj": self.allocated.total_mj,
                "idle_mj": self.idle.total_mj,
                "metered_mj": self.metered.total_mj,
                "exact": self.reconciles,
            },
            "samples": self.samples,
            "counter_resets": self.resets,
            "counter_wraps": self.wraps,
            "unmetered_intervals": self.unmetered_intervals,
            "trimmed_overlap_s": self.trimmed_overlap_s,
            "estimated_gpus": self.estimated_gpus(),
            "periods": periods,
            "tenants": tenants,
            "jobs": jobs,
        }


_JOB_COLS = ["job_id", "tenant", "gpus", "gpu_hours", "measured_mj", "estimated_mj", "energy_mj"]
_TENANT_COLS = ["tenant", "period", "jobs", "gpu_hours", "measured_mj", "estimated_mj", "energy_mj"]
_GPU_COLS = ["node", "gpu", "metered_mj", "allocated_mj", "idle_mj", "estimated"]
_PERIOD_COLS = ["period", "metered_mj", "allocated_mj", "idle_mj"]


def build_account(
    ledger: EnergyLedger, job_parts: list[pd.DataFrame], gpu_parts: list[pd.DataFrame]
) -> EnergyAccount:
    """Reduce the ledger's per-chunk pieces into the account's frames."""
    import pandas as pd

    if job_parts:
        pieces = pd.concat(job_parts, ignore_index=True)
        gpu = pd.concat(gpu_parts, ignore_index=True)
    else:
        pieces = pd.DataFrame(
            {
                c: pd.Series(
                    dtype=object if c in ("job_id", "tenant", "period", "node") else "int64"
                )
                for c in (
                    "job_id",
                    "tenant",
                    "period",
                    "node",
                    "gpu",
                    "measured_mj",
                    "estimated_mj",
                )
            }
        )
        pieces["gpu_s"] = pd.Series(dtype="float64")
        gpu = pd.DataFrame(
            {
                c: pd.Series(dtype=object if c in ("period", "node") else "int64")
                for c in ("node", "gpu", "period", "metered_m", "metered_e", "alloc_m", "alloc_e")
            }
        )
    pieces["tenant"] = pieces["tenant"].astype(object)
    pieces["slot"] = pieces["node"].astype(str) + "/" + pieces["gpu"].astype(str)
    by_job = pieces.groupby(["job_id", "tenant"], dropna=False, sort=True).agg(
        gpus=("slot", "nunique"),
        gpu_s=("gpu_s", "sum"),
        measured_mj=("measured_mj", "sum"),
        estimated_mj=("estimated_mj", "sum"),
    )
    jobs = by_job.reset_index()
    jobs["gpu_hours"] = jobs.pop("gpu_s") / 3600.0
    by_tenant = pieces.groupby(["tenant", "period"], dropna=False, sort=True).agg(
        jobs=("job_id", "nunique"),
        gpu_s=("gpu_s", "sum"),
        measured_mj=("measured_mj", "sum"),
        estimated_mj=("estimated_mj", "sum"),
    )
    tenants = by_tenant.reset_index()
    tenants["gpu_hours"] = tenants.pop("gpu_s") / 3600.0
    for frame in (jobs, tenants):
        frame["energy_mj"] = frame["measured_mj"] + frame["estimated_mj"]
        frame["tenant"] = frame["tenant"].astype(object).where(frame["tenant"].notna(), None)
    sums = ["metered_m", "metered_e", "alloc_m", "alloc_e"]
    per_gpu = gpu.groupby(["node", "gpu"], sort=True)[sums].sum().reset_index()
    per_gpu["metered_mj"] = per_gpu["metered_m"] + per_gpu["metered_e"]
    per_gpu["allocated_mj"] = per_gpu["alloc_m"] + per_gpu["alloc_e"]
    per_gpu["idle_mj"] = per_gpu["metered_mj"] - per_gpu["allocated_mj"]
    est = ledger.estimated_gpus
    per_gpu["estimated"] = np.array(
        [(str(n), int(g)) in est for n, g in zip(per_gpu["node"], per_gpu["gpu"], strict=True)],
        dtype=bool,
    )
    per_period = gpu.groupby("period", sort=True)[sums].sum().reset_index()
    per_period["metered_mj"] = per_period["metered_m"] + per_period["metered_e"]
    per_period["allocated_mj"] = per_period["alloc_m"] + per_period["alloc_e"]
    per_period["idle_mj"] = per_period["metered_mj"] - per_period["allocated_mj"]
    tot = {c: int(gpu[c].sum()) for c in sums}
    metered = EnergyFigure(tot["metered_m"], tot["metered_e"])
    allocated = EnergyFigure(tot["alloc_m"], tot["alloc_e"])
    idle = EnergyFigure(
        metered.measured_mj - allocated.measured_mj, metered.estimated_mj - allocated.estimated_mj
    )
    return EnergyAccount(
        since_s=None if math.isinf(ledger.since) else ledger.since,
        until_s=None if math.isinf(ledger.until) else ledger.until,
        period=ledger.period,
        metered=metered,
        allocated=allocated,
        idle=idle,
        jobs=jobs[_JOB_COLS],
        tenants=tenants[_TENANT_COLS],
        gpus=per_gpu[_GPU_COLS],
        periods=per_period[_PERIOD_COLS],
        samples=ledger.samples,
        resets=ledger.resets,
        wraps=ledger.wraps,
        unmetered_intervals=ledger.unmetered_intervals,
        trimmed_overlap_s=ledger.allocations.trimmed_s,
    )

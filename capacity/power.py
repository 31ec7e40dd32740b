"""Rack power: budget keeping PSU redundancy, draw (measured or modelled), headroom, caps (pure).

Budget: the site's ``power_capacity_kw`` for the rack, else the SKU's rack
profile: ``shelves x psus_per_shelf x psu_kw`` nameplate, of which only
``1 / redundancy`` may be drawn (N+N: half) so a failed feed or shelf half
still carries the rack. GB200 NVL72: 8 x 6 x 5.5 kW = 264 kW nameplate,
132 kW budget (the 120-132 kW rack envelope).

Draw, per rack:

* measured, from telemetry samples: GPU power summed per minute over the
  rack's GPUs, plus the modelled non-GPU part (tray overhead and switch
  trays); p50 / p95 / max over the window;
* else modelled by tray state: a busy tray draws ``gpus x gpu_w +
  tray_busy_w``, an idle or out (powered, drained) tray ``gpus x gpu_idle_w +
  tray_idle_w``; ``peak`` assumes every in-service tray busy (the planning
  figure).

Headroom = budget - planning draw (measured p95 when samples exist, else the
modelled peak).

Capping what-if (``--cap-w``): each GPU held at ``min(cap, gpu_w)``; its
throughput follows the DVFS cube law on the dynamic part,
``((cap - idle) / (gpu_w - idle)) ** (1/3)`` (dynamic power ~ f^3; a model, not a
measurement: compute-bound work loses about this, memory-bound work less).
With a row budget, how many racks of that draw it holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RackPowerProfile:
    shelves: int
    psus_per_shelf: int
    psu_kw: float
    redundancy: float  # nameplate / usable: 2.0 for N+N
    gpu_w: float
    gpu_idle_w: float
    tray_busy_w: float  # CPUs, memory, NICs, fans of a compute tray at load
    tray_idle_w: float
    switch_trays: int
    switch_tray_w: float

    @property
    def nameplate_kw(self) -> float:
        return self.shelves * self.psus_per_shelf * self.psu_kw

    @property
    def budget_kw(self) -> float:
        return self.nameplate_kw / self.redundancy


#: SKU -> rack power profile. GB200 NVL72 from ../shared/FACTS.md (8 shelves x 6 x 5.5 kW;
#: 1.2 kW per GPU, 180 W idle); tray and switch-tray figures are modelled so that a full
#: rack lands in the published 120-132 kW envelope (72 x 1.2 + 18 x 1.5 + 9 x 1.0 = 122.4 kW).
PROFILES: dict[str, RackPowerProfile] = {
    "gb200-nvl72": RackPowerProfile(
        shelves=8,
        psus_per_shelf=6,
        psu_kw=5.5,
        redundancy=2.0,
        gpu_w=1200.0,
        gpu_idle_w=180.0,
        tray_busy_w=1500.0,
        tray_idle_w=600.0,
        switch_trays=9,
        switch_tray_w=1000.0,
    ),
}


@dataclass(frozen=True)
class TrayLoad:
    gpus: int
    busy: bool
    in_service: bool


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default), ``q`` in [0, 1]."""
    data = sorted(values)
    if not data:
        raise ValueError("no values")
    pos = (len(data) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def model_draw_kw(trays: Sequence[TrayLoad], p: RackPowerProfile, *, peak: bool) -> float:
    total = p.switch_trays * p.switch_tray_w
    for t in trays:
        busy = t.in_service and (peak or t.busy)
        if busy:
            total += t.gpus * p.gpu_w + p.tray_busy_w
        else:
            total += t.gpus * p.gpu_idle_w + p.tray_idle_w
    return total / 1000.0


def measured_draw_kw(
    gpu_w_per_minute: Mapping[int, float], trays: int, p: RackPowerProfile
) -> dict[str, float]:
    """p50/p95/max of rack draw from per-minute GPU power sums, plus the modelled rest."""
    rest_w = trays * p.tray_busy_w + p.switch_trays * p.switch_tray_w
    series = [(w + rest_w) / 1000.0 for w in gpu_w_per_minute.values()]
    return {
        "p50_kw": quantile(series, 0.5),
        "p95_kw": quantile(series, 0.95),
        "max_kw": max(series),
        "minutes": float(len(series)),
    }


def cap_effect(cap_w: float, p: RackPowerProfile) -> dict[str, float]:
    """Per-GPU draw and relative throughput under a power cap (cube-law model)."""
    if cap_w <= p.gpu_idle_w:
        raise ValueError(f"a cap of {cap_w:g} W is at or below the GPU's idle draw")
    held = min(cap_w, p.gpu_w)
    ratio = (held - p.gpu_idle_w) / (p.gpu_w - p.gpu_idle_w)
    return {"gpu_w": held, "throughput": ratio ** (1.0 / 3.0)}


def rack_power(
    rack: str,
    trays: Sequence[TrayLoad],
    p: RackPowerProfile,
    *,
    budget_kw: float,
    budget_source: str,
    measured: dict[str, float] | None,
    cap_w: float | None,
) -> dict[str, Any]:
    model_now = model_draw_kw(trays, p, peak=False)
    model_peak = model_draw_kw(trays, p, peak=True)
    planning = measured["p95_kw"] if measured else model_peak
    row: dict[str, Any] = {
        "rack": rack,
        "budget_kw": budget_kw,
        "budget_source": budget_source,
        "nameplate_kw": p.nameplate_kw,
        "draw": {
            "source": "telemetry" if measured else "model",
            "model_now_kw": model_now,
            "model_peak_kw": model_peak,
            **(measured or {}),
        },
        "planning_draw_kw": planning,
        "headroom_kw": budget_kw - planning,
    }
    if cap_w is not None:
        effect = cap_effect(cap_w, p)
        gpus_in_service = sum(t.gpus for t in trays if t.in_service)
        saved = gpus_in_service * (p.gpu_w - effect["gpu_w"]) / 1000.0
        capped = max(0.0, planning - saved)
        row["cap"] = {
            "cap_w": cap_w,
            "gpu_w": effect["gpu_w"],
            "throughput": effect["throughput"],
            "throughput_loss": 1.0 - effect["throughput"],
            "draw_kw": capped,
            "headroom_kw": budget_kw - capped,
        }
    return row


def row_fit(
    racks: Sequence[Mapping[str, Any]], row_budget_kw: float | None
) -> dict[str, Any] | None:
    """How many racks like these a row budget holds, uncapped and capped."""
    if row_budget_kw is None or not racks:
        return None
    per_rack = sum(r["planning_draw_kw"] for r in racks) / len(racks)
    out: dict[str, Any] = {
        "row_budget_kw": row_budget_kw,
        "racks_now": len(racks),
        "draw_per_rack_kw": per_rack,
        "racks_fit": math.floor(row_budget_kw / per_rack) if per_rack > 0 else None,
    }
    if all("cap" in r for r in racks):
        capped = sum(r["cap"]["draw_kw"] for r in racks) / len(racks)
        out["capped_draw_per_rack_kw"] = capped
        out["racks_fit_capped"] = math.floor(row_budget_kw / capped) if capped > 0 else None
    if out["racks_fit"] is not None:
        out["more_racks"] = out["racks_fit"] - len(racks)
        if out.get("racks_fit_capped") is not None:
            out["more_racks_capped"] = out["racks_fit_capped"] - len(racks)
    return out

"""GPU energy accounting: per GPU, job, tenant and billing period, reconciled to the mJ.

Pure functions over pandas frames (no I/O); see ``docs/energy.md``.

>>> account = account_energy(samples, allocations, period="day")
>>> account.reconciles                    # allocated + idle == metered, exactly
>>> account.as_dict(FacilityRates(pue=1.3, price_per_kwh=0.12))

Inputs are documented in :mod:`telemetry.energy.intervals` (samples) and
:mod:`telemetry.energy.attribute` (allocations).
"""

from __future__ import annotations

from telemetry.energy.account import (
    DEFAULT_CARBON_G_PER_KWH,
    DEFAULT_PUE,
    MJ_PER_KWH,
    TYPICAL_PUE,
    EnergyAccount,
    EnergyFigure,
    FacilityRates,
)
from telemetry.energy.attribute import (
    ALLOCATION_COLUMNS,
    PERIODS,
    EnergyLedger,
    account_energy,
    cumulative_energy,
    normalize_allocations,
    period_windows,
)
from telemetry.energy.intervals import (
    DEFAULT_MAX_POWER_W,
    SAMPLE_COLUMNS,
    GpuSamples,
    Intervals,
    arrow_to_gpu_samples,
    intervals_from_samples,
    to_gpu_samples,
)
from telemetry.energy.parquet import read_sample_tables

__all__ = [
    "ALLOCATION_COLUMNS",
    "DEFAULT_CARBON_G_PER_KWH",
    "DEFAULT_MAX_POWER_W",
    "DEFAULT_PUE",
    "MJ_PER_KWH",
    "PERIODS",
    "SAMPLE_COLUMNS",
    "TYPICAL_PUE",
    "EnergyAccount",
    "EnergyFigure",
    "EnergyLedger",
    "FacilityRates",
    "GpuSamples",
    "Intervals",
    "account_energy",
    "arrow_to_gpu_samples",
    "cumulative_energy",
    "intervals_from_samples",
    "normalize_allocations",
    "period_windows",
    "read_sample_tables",
    "to_gpu_samples",
]

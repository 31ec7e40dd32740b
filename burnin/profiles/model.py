"""Burn-in thresholds as plain frozen dataclasses (what the judges read; no I/O here).

Built by :func:`burnin.profiles.load_thresholds` from a packaged per-SKU YAML
profile, merged with a site override file, with GEMM floors made absolute from
the SKU's nominal TFLOPS. Tests build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Collective scopes, smallest first: one node, one NVLink domain, several domains.
SCOPES = ("node", "domain", "inter_domain")


@dataclass(frozen=True)
class PeerRule:
    """Fleet-relative outlier rule: warn and fail deficits share one z cut."""

    z_cut: float = 3.5
    warn_deficit: float = 0.03
    fail_deficit: float = 0.05
    min_peers: int = 8
    min_scale_fraction: float = 0.002


@dataclass(frozen=True)
class RemeasureRule:
    """Adaptive GEMM re-measurement after the fixed rounds (``burnin.verdicts.remeasure``).

    A GPU not flagged whose robust z is at least ``z_low`` and whose deficit is
    at least ``min_deficit`` burns again, one round at a time, until its z
    (over all its rounds) is below ``z_low`` or at least ``z_high``, or
    ``max_rounds`` more rounds ran. ``max_rounds = 0``: no re-measurement.
    """

    z_low: float = 2.0
    z_high: float = 5.0
    max_rounds: int = 0
    min_deficit: float = 0.015


@dataclass(frozen=True)
class GemmThresholds:
    dtype: str = "bf16"
    rounds: int = 3
    duration_s: float = 60.0
    floor_warn_tflops: dict[str, float] = field(default_factory=dict)  # absolute, per dtype
    floor_fail_tflops: dict[str, float] = field(default_factory=dict)
    rel_error_max: dict[str, float] = field(
        default_factory=lambda: {
            "fp32": 1e-4,
            "tf32": 1e-3,
            "fp16": 5e-3,
            "bf16": 2e-2,
            "fp8": 4e-2,
        }
    )
    peers: PeerRule = PeerRule()
    remeasure: RemeasureRule = RemeasureRule()


@dataclass(frozen=True)
class BusbwFloor:
    """Expected, warn-below and fail-below busbw (GB/s) for one scope."""

    expected: float
    warn: float
    fail: float


@dataclass(frozen=True)
class CollectiveThresholds:
    op: str = "all_reduce"
    sizes_bytes: tuple[int, ...] = (4 << 30, 8 << 30)
    min_size_bytes: int = 4 << 30
    busbw_gbps: dict[str, BusbwFloor] = field(default_factory=dict)  # by scope
    peers: PeerRule = PeerRule(warn_deficit=0.05, fail_deficit=0.10, min_peers=5)


@dataclass(frozen=True)
class HealthThresholds:
    temperature_warn_c: float = 87.0
    temperature_fail_c: float | None = None
    ecc_correctable_warn: int = 10_000
    nvlink_errors_warn: int = 100


@dataclass(frozen=True)
class LocalizeThresholds:
    pass_deficit: float = 0.04
    fail_deficit: float = 0.08
    max_remeasure: int = 2


@dataclass(frozen=True)
class Thresholds:
    """Everything the judges compare against, for one SKU."""

    sku: str
    version: int = 1
    gemm: GemmThresholds = GemmThresholds()
    collectives: CollectiveThresholds = CollectiveThresholds()
    health: HealthThresholds = HealthThresholds()
    localize: LocalizeThresholds = LocalizeThresholds()
    sources: tuple[str, ...] = ()  # the files merged, packaged profile first

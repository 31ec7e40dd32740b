"""SimGemmEngine: seeded GEMM burns on simulated GPUs (the GemmEngine port).

A GPU's TFLOPS is its SKU's figure for the dtype x its GEMM factor
(``slow_gemm``, ``slow_node``) x its clock factor (``thermal_throttle``,
``power_brake``) x (1 + noise x N(0, 1)). The iteration count is what that speed
fits in ``duration_s`` on an ``size`` x ``size`` x ``size`` problem; the reported
duration is what those iterations took. The engine does not sleep.

Correctness: every healthy GPU returns the same checksum for the same
``seed``/dtype/shape (a digest of those) and a ``rel_error`` typical of the
dtype (:data:`HEALTHY_REL_ERROR`, well inside the bounds in FACTS.md). A GPU
with ``sdc`` returns a checksum of its own and a ``rel_error`` of 0.05 to 0.5
(NaN with ``has_nan`` when the fault says ``nan: true``).

Absent GPUs: a GPU that fell off the bus (XID 79) or is missing runs nothing,
so it has no result: ``run`` returns results only for the GPUs that ran, in
the order asked. The probe shows why (``lost=True`` or the GPU absent).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from dcops.errors import CommandTimeout, UnknownNameError
from dcops.measurements import GemmResult, GpuRef
from dcops.sim.model import FleetModel
from dcops.sim.noise import Stream, normals, uniforms

DEFAULT_SIZE = 8192
#: ||out - ref|| / ||ref|| of a healthy GPU, by dtype (FACTS.md: fp32 << 1e-3, tf32 ~3e-4,
#: bf16 1e-3..1e-2).
HEALTHY_REL_ERROR = {"fp32": 2e-6, "tf32": 1.5e-4, "fp16": 4e-4, "bf16": 2.5e-3, "fp8": 1.5e-2}
SDC_REL_ERROR = (0.05, 0.5)


class SimGemmEngine:
    """GemmEngine over a :class:`~dcops.sim.model.FleetModel`."""

    def __init__(self, model: FleetModel, *, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("GEMM size must be positive")
        self.model = model
        self.size = size

    def run(
        self,
        gpus: Sequence[GpuRef],
        *,
        dtype: str,
        duration_s: float,
        seed: int,
        timeout_s: float | None = None,
    ) -> list[GemmResult]:
        model = self.model
        model.refresh()
        if dtype not in model.nominal.tflops or dtype not in HEALTHY_REL_ERROR:
            raise UnknownNameError("dtype", dtype, sorted(HEALTHY_REL_ERROR))
        if duration_s <= 0:
            raise ValueError("duration_s must be positive")
        all_idx = model.gpu_indexes(gpus)
        model.check_nodes((g.node for g in gpus), timeout_s)
        if timeout_s is not None and duration_s > timeout_s:
            node = gpus[0].node if gpus else "-"
            raise CommandTimeout(
                node, f"GEMM burn of {duration_s:g} s cannot finish within {timeout_s:g} s"
            )
        state = model.state
        ran = ~state.absent[all_idx]
        idx = all_idx[ran]
        refs = [g for g, ok in zip(gpus, ran.tolist(), strict=True) if ok]
        if not refs:
            return []
        counters = model.counters.take(Stream.GEMM, idx)
        keys = idx.astype(np.uint64)
        z = normals(model.seed, Stream.GEMM, keys, counters, 2)
        u = uniforms(model.seed ^ 0x5DC, Stream.GEMM, keys, counters, 1)[:, 0]
        nominal = model.nominal.tflops[dtype][idx]
        speed = nominal * state.gemm_factor[idx] * state.clock_factor[idx]
        tflops = np.maximum(speed * 1e-3, speed * (1.0 + model.noise * z[:, 0]))
        m = n = k = self.size
        flops = 2.0 * m * n * k
        iterations = np.maximum(1, np.round(tflops * 1e12 * duration_s / flops)).astype(np.int64)
        durations = iterations * flops / (tflops * 1e12)
        healthy_error = HEALTHY_REL_ERROR[dtype] * np.exp(0.1 * z[:, 1])
        lo, hi = SDC_REL_ERROR
        sdc = state.sdc[idx]
        sdc_nan = state.sdc_nan[idx]
        rel_error = np.where(sdc, lo * (hi / lo) ** u, healthy_error)
        rel_error = np.where(sdc_nan, np.nan, rel_error)
        good_sum = healthy_checksum(seed, dtype, m, n, k)
        device = "sim"
        out: list[GemmResult] = []
        for j, ref in enumerate(refs):
            bad = bool(sdc[j])
            out.append(
                GemmResult(
                    gpu=ref,
                    dtype=dtype,
                    m=m,
                    n=n,
                    k=k,
                    iterations=int(iterations[j]),
                    duration_s=float(durations[j]),
                    tflops=float(tflops[j]),
                    checksum=_corrupt(good_sum, ref, int(counters[j])) if bad else good_sum,
                    rel_error=float(rel_error[j]),
                    has_nan=bool(sdc_nan[j]),
                    device=device,
                )
            )
        return out


def healthy_checksum(seed: int, dtype: str, m: int, n: int, k: int) -> str:
    """The checksum every healthy GPU gives for this seeded problem."""
    text = f"gemm/{seed}/{dtype}/{m}x{n}x{k}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _corrupt(good: str, ref: GpuRef, counter: int) -> str:
    text = f"{good}/{ref}/{counter}"
    bad = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    return bad if bad != good else bad[::-1]

"""Fleet simulator throughput at 100 racks (7,200 GPUs), beside a naive baseline.

Prints GPU-measurements per second for probe readings and GEMM results, each
next to a baseline measured in the same run: a per-GPU Python loop drawing the
same kind of numbers with ``random.gauss`` and building the same records. The
ratio is simulator / baseline. Run: ``python bench/bench_sim.py`` (~20 s).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import numpy as np

from dcops.measurements import ClocksEventReason, GemmResult, GpuReading, GpuRef, NodeReading
from dcops.sim import SimFleet
from dcops.sim.noise import Stream, normals

RACKS = 100
REPEATS = 3


def best_rate(count: int, fn: Callable[[], object]) -> float:
    """Measurements per second of the fastest of REPEATS runs."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return count / best


def naive_probe(nodes: list[str], gpn: int, rng: random.Random, noise: float) -> list[NodeReading]:
    out = []
    for node in nodes:
        gpus = []
        for i in range(gpn):
            gpus.append(
                GpuReading(
                    gpu=GpuRef(node, i),
                    uuid=f"GPU-{node}-{i}",
                    name="NVIDIA GB200",
                    power_w=round(180.0 * (1 + noise * rng.gauss(0, 1)), 3),
                    energy_mj=int(1e11),
                    temperature_c=round(40.0 * (1 + noise * rng.gauss(0, 1))),
                    sm_clock_mhz=round(min(2062.0, 2062.0 * (1 + noise * rng.gauss(0, 1)))),
                    max_sm_clock_mhz=2062.0,
                    clocks_event_reasons=ClocksEventReason.GPU_IDLE,
                    utilization_pct=0.0,
                    memory_used_mib=round(600.0 * (1 + noise * rng.gauss(0, 1))),
                    memory_total_mib=190464.0,
                    nvlink_links_active=18,
                    nvlink_links_total=18,
                )
            )
        out.append(NodeReading(node, time.time(), tuple(gpus), "570.133.20", "12.8"))
    return out


def naive_gemm(gpus: list[GpuRef], rng: random.Random, noise: float) -> list[GemmResult]:
    out = []
    flops = 2.0 * 8192**3
    for gpu in gpus:
        tflops = 2500.0 * (1 + noise * rng.gauss(0, 1))
        iterations = max(1, round(tflops * 1e12 / flops))
        out.append(
            GemmResult(
                gpu=gpu,
                dtype="bf16",
                m=8192,
                n=8192,
                k=8192,
                iterations=iterations,
                duration_s=iterations * flops / (tflops * 1e12),
                tflops=tflops,
                checksum="0" * 16,
                rel_error=2.5e-3 * (1 + 0.1 * rng.gauss(0, 1)),
            )
        )
    return out


def main() -> None:
    start = time.perf_counter()
    fleet = SimFleet.from_dict({"sku": "gb200-nvl72", "racks": RACKS, "seed": 1, "noise": 0.02})
    build_s = time.perf_counter() - start
    nodes = fleet.site.nodes()
    gpus = fleet.gpus()
    n = len(gpus)
    rng = random.Random(1)

    rows = [
        (
            "probe: read_many(all nodes)",
            best_rate(n, lambda: fleet.probe.read_many(nodes)),
            best_rate(n, lambda: naive_probe(nodes, 4, rng, 0.02)),
        ),
        (
            "probe: read(node) per node",
            best_rate(n, lambda: [fleet.probe.read(node) for node in nodes]),
            best_rate(n, lambda: naive_probe(nodes, 4, rng, 0.02)),
        ),
        (
            "gemm: run(all GPUs)",
            best_rate(n, lambda: fleet.gemm.run(gpus, dtype="bf16", duration_s=1, seed=1)),
            best_rate(n, lambda: naive_gemm(gpus, rng, 0.02)),
        ),
    ]
    keys = np.arange(n, dtype=np.uint64)

    def sim_numbers() -> object:
        counters = fleet.model.counters.take(Stream.PROBE, keys.astype(np.int64))
        return normals(1, Stream.PROBE, keys, counters, 5)

    def naive_numbers() -> object:
        return [[rng.gauss(0, 1) for _ in range(5)] for _ in range(n)]

    rows.append(
        (
            "noise only: 5 normals per GPU",
            best_rate(n, sim_numbers),
            best_rate(n, naive_numbers),
        )
    )
    print(f"fleet: {RACKS} racks, {len(nodes)} nodes, {n} GPUs; built in {build_s:.2f} s")
    print(f"best of {REPEATS}; GPU-measurements per second (one GPU reading or GEMM result each)")
    print(f"{'measurement':32} {'simulator':>12} {'naive loop':>12} {'ratio':>7}")
    for name, sim, base in rows:
        print(f"{name:32} {sim:12,.0f} {base:12,.0f} {sim / base:6.2f}x")


if __name__ == "__main__":
    main()

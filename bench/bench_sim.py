"""Fleet simulator throughput at 100 racks (7,200 GPUs), beside a naive baseline.

Prints GPU-measurements per second for probe readings and GEMM results, each
next to a baseline measured in the same run: vectorised numpy -- every number of
the fleet drawn in one ``Generator.standard_normal`` call and computed as arrays
-- then the same records built from those arrays. The ratio is simulator /
baseline. Run: ``python bench/bench_sim.py`` (~20 s); ``--quick`` for 10 racks.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from _result import result

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


def numpy_probe(
    nodes: list[str], gpn: int, rng: np.random.Generator, noise: float
) -> list[NodeReading]:
    n = len(nodes) * gpn
    z = 1.0 + noise * rng.standard_normal((4, n))
    power = np.round(180.0 * z[0], 3).tolist()
    temp = np.round(40.0 * z[1]).tolist()
    clock = np.round(np.minimum(2062.0, 2062.0 * z[2])).tolist()
    mem = np.round(600.0 * z[3]).tolist()
    out = []
    now = time.time()
    for j, node in enumerate(nodes):
        gpus = []
        for i in range(gpn):
            k = j * gpn + i
            gpus.append(
                GpuReading(
                    gpu=GpuRef(node, i),
                    uuid=f"GPU-{node}-{i}",
                    name="NVIDIA GB200",
                    power_w=power[k],
                    energy_mj=int(1e11),
                    temperature_c=temp[k],
                    sm_clock_mhz=clock[k],
                    max_sm_clock_mhz=2062.0,
                    clocks_event_reasons=ClocksEventReason.GPU_IDLE,
                    utilization_pct=0.0,
                    memory_used_mib=mem[k],
                    memory_total_mib=190464.0,
                    nvlink_links_active=18,
                    nvlink_links_total=18,
                )
            )
        out.append(NodeReading(node, now, tuple(gpus), "570.133.20", "12.8"))
    return out


def numpy_gemm(gpus: list[GpuRef], rng: np.random.Generator, noise: float) -> list[GemmResult]:
    flops = 2.0 * 8192**3
    z = rng.standard_normal((2, len(gpus)))
    tflops = 2500.0 * (1 + noise * z[0])
    iterations = np.maximum(1, np.round(tflops * 1e12 / flops)).astype(np.int64)
    duration = iterations * flops / (tflops * 1e12)
    rel = 2.5e-3 * (1 + 0.1 * z[1])
    return [
        GemmResult(
            gpu=gpu,
            dtype="bf16",
            m=8192,
            n=8192,
            k=8192,
            iterations=it,
            duration_s=d,
            tflops=tf,
            checksum="0" * 16,
            rel_error=r,
        )
        for gpu, it, d, tf, r in zip(
            gpus,
            iterations.tolist(),
            duration.tolist(),
            tflops.tolist(),
            rel.tolist(),
            strict=True,
        )
    ]


def main() -> None:
    global REPEATS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--racks", type=int, default=RACKS)
    ap.add_argument("--quick", action="store_true", help="10 racks, best of 1")
    args = ap.parse_args()
    racks = args.racks
    if args.quick:
        racks, REPEATS = 10, 1
    start = time.perf_counter()
    fleet = SimFleet.from_dict({"sku": "gb200-nvl72", "racks": racks, "seed": 1, "noise": 0.02})
    build_s = time.perf_counter() - start
    nodes = fleet.site.nodes()
    gpus = fleet.gpus()
    n = len(gpus)
    rng = np.random.default_rng(1)

    rows = [
        (
            "probe: read_many(all nodes)",
            best_rate(n, lambda: fleet.probe.read_many(nodes)),
            best_rate(n, lambda: numpy_probe(nodes, 4, rng, 0.02)),
        ),
        (
            "probe: read(node) per node",
            best_rate(n, lambda: [fleet.probe.read(node) for node in nodes]),
            best_rate(n, lambda: numpy_probe(nodes, 4, rng, 0.02)),
        ),
        (
            "gemm: run(all GPUs)",
            best_rate(n, lambda: fleet.gemm.run(gpus, dtype="bf16", duration_s=1, seed=1)),
            best_rate(n, lambda: numpy_gemm(gpus, rng, 0.02)),
        ),
    ]
    keys = np.arange(n, dtype=np.uint64)

    def sim_numbers() -> object:
        counters = fleet.model.counters.take(Stream.PROBE, keys.astype(np.int64))
        return normals(1, Stream.PROBE, keys, counters, 5)

    def numpy_numbers() -> object:
        return rng.standard_normal((n, 5))

    rows.append(
        (
            "noise only: 5 normals per GPU",
            best_rate(n, sim_numbers),
            best_rate(n, numpy_numbers),
        )
    )
    print(f"fleet: {racks} racks, {len(nodes)} nodes, {n} GPUs; built in {build_s:.2f} s")
    print(f"best of {REPEATS}; GPU-measurements per second (one GPU reading or GEMM result each)")
    print(f"{'measurement':32} {'simulator':>12} {'numpy':>12} {'ratio':>7}")
    for name, sim, base in rows:
        print(f"{name:32} {sim:12,.0f} {base:12,.0f} {sim / base:6.2f}x")
    for name, sim, base in rows:
        key = name.split(" ")[0].rstrip(":") + "_" + name.split(": ")[-1].split("(")[0]
        key = "".join(c if c.isalnum() else "_" for c in key).strip("_")
        result(f"sim_{key}", sim, base, "measurements/s", "higher")


if __name__ == "__main__":
    main()

"""Benchmark: engine overhead, side by side with bare torch loops in the same run.

    python bench/bench_engines.py [--rounds N] [--gemm-size S] [--gemm-s T] [--ranks R]

GEMM: TorchGemmEngine's TFLOPS on one device (CUDA GPU 0, else the CPU) against
a bare ``torch.matmul(a, b, out=out)`` loop of the same shape, dtype and duration.
all_reduce: TorchCollectiveEngine's busbw (R ranks; NCCL on GPUs, gloo on CPU)
against a bare ``dist.all_reduce`` loop on the same ranks, sizes and iteration
counts, timed the same way (max over ranks). Both sides synchronise the same way:
GEMM batches of ~0.1 s with one device synchronisation after each (the engine's
timed burn), all_reduce one first call + 2 warm-up calls, a synchronisation and
a barrier before the timed loop and a synchronisation after it (the engine's
worker). Both sides alternate over N rounds
and the best of each is compared (noise on shared machines only ever slows a
side down). Target: both ratios >= 0.95.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
import torch.distributed as dist
from _result import result
from torch.multiprocessing.spawn import spawn

from burnin.engines.collectives import TorchCollectiveEngine
from burnin.engines.gemm import TorchGemmEngine
from dcops.measurements import GpuRef, bus_factor

HOST = socket.gethostname()
CUDA = torch.cuda.is_available()
TARGET = 0.95


def bare_gemm_tflops(size: int, duration_s: float) -> float:
    dev = torch.device("cuda", 0) if CUDA else torch.device("cpu")
    dt = torch.bfloat16 if CUDA else torch.float32
    gen = torch.Generator().manual_seed(1)
    a = torch.randn((size, size), generator=gen).to(dt).to(dev)
    b = torch.randn((size, size), generator=gen).to(dt).to(dev)
    out = torch.empty((size, size), dtype=dt, device=dev)

    # Synchronised exactly as TorchGemmEngine times its burn: one synchronised warm-up
    # GEMM sizes the batches (~0.1 s, or a fifth of the burn), then batches of GEMMs
    # with one synchronisation after each, the batch re-sized from the last one.
    def sync() -> None:
        if CUDA:
            torch.cuda.synchronize(dev)

    t0 = time.perf_counter()
    torch.matmul(a, b, out=out)
    sync()
    first_s = time.perf_counter() - t0
    target_s = min(0.1, duration_s / 5)
    batch = max(1, int(target_s / max(first_s, 1e-9)))
    iters, busy = 0, 0.0
    while busy < duration_s:
        t0 = time.perf_counter()
        for _ in range(batch):
            torch.matmul(a, b, out=out)
        sync()
        took = time.perf_counter() - t0
        busy += took
        iters += batch
        per_s = max(took / batch, 1e-9)
        left = math.ceil((duration_s - busy) / per_s)
        batch = max(1, min(batch * 4, int(target_s / per_s), left))
    return 2.0 * size**3 * iters / busy / 1e12


def ours_gemm_tflops(size: int, duration_s: float) -> float:
    eng = TorchGemmEngine(device="cuda" if CUDA else "cpu", size=size)
    dtype = "bf16" if CUDA else "fp32"
    (r,) = eng.run([GpuRef(HOST, 0)], dtype=dtype, duration_s=duration_s, seed=1)
    return r.tflops


def _bare_worker(rank: int, ranks: int, port: int, sizes: list[int], iters: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dev = torch.device("cuda", rank) if CUDA else torch.device("cpu")
    if CUDA:
        torch.cuda.set_device(dev)
    dist.init_process_group(
        "nccl" if CUDA else "gloo", rank=rank, world_size=ranks, timeout=timedelta(seconds=60)
    )
    lines = []
    for size in sizes:
        buf = torch.ones(size // 4, dtype=torch.float32, device=dev)
        # As the engine's worker: one first call, then its default warm-up of 2.
        for _ in range(1 + 2):
            dist.all_reduce(buf)
        if CUDA:
            torch.cuda.synchronize(dev)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            dist.all_reduce(buf)
        if CUDA:
            torch.cuda.synchronize(dev)
        t = torch.tensor([(time.perf_counter() - t0) / iters], dtype=torch.float64, device=dev)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        algbw = size / float(t.item()) / 1e9
        lines.append(f"{size} {algbw * bus_factor('all_reduce', ranks)}")
    dist.destroy_process_group()
    if rank == 0:
        Path(out).write_text("\n".join(lines), encoding="utf-8")


def bare_allreduce_busbw(ranks: int, sizes: list[int], iters: int) -> dict[int, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bare.txt")
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // ranks)))
        spawn(_bare_worker, args=(ranks, port, sizes, iters, out), nprocs=ranks)
        text = Path(out).read_text(encoding="utf-8")
    return {int(a): float(b) for a, b in (ln.split() for ln in text.splitlines())}


def ours_allreduce_busbw(ranks: int, sizes: list[int], iters: int) -> dict[int, float]:
    eng = TorchCollectiveEngine(device="cuda" if CUDA else "cpu")
    members = [GpuRef(HOST, i) for i in range(ranks)]
    res = eng.run("all_reduce", members, sizes_bytes=sizes, iterations=iters, timeout_s=120)
    assert all(r.out_of_place.wrong == 0 for r in res.rows)
    return {r.size_bytes: r.out_of_place.busbw_gbps for r in res.rows}


def _best(samples: list[dict[int, float]]) -> dict[int, float]:
    return {k: max(s[k] for s in samples) for k in samples[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--gemm-size", type=int, default=8192 if CUDA else 768)
    parser.add_argument("--gemm-s", type=float, default=5.0 if CUDA else 1.5)
    parser.add_argument("--ranks", type=int, default=max(2, torch.cuda.device_count()))
    parser.add_argument("--iterations", type=int, default=20 if CUDA else 10)
    parser.add_argument("--quick", action="store_true", help="1 round, small sizes (seconds)")
    args = parser.parse_args()
    sizes = [1 << 26, 1 << 28, 1 << 30] if CUDA else [1 << 20, 1 << 22, 1 << 24]
    if args.quick:
        args.rounds, args.gemm_s, args.iterations = 1, 0.3, 3
        args.gemm_size = min(args.gemm_size, 256)
        sizes = sizes[:1]
    where = torch.cuda.get_device_name(0) if CUDA else f"CPU ({os.cpu_count()} cores)"
    print(f"engine overhead on {where}, torch {torch.__version__}, best of {args.rounds} rounds")

    ours_g, bare_g = [], []
    for i in range(args.rounds):  # alternate which side goes first
        if i % 2:
            ours_g.append(ours_gemm_tflops(args.gemm_size, args.gemm_s))
        bare_g.append(bare_gemm_tflops(args.gemm_size, args.gemm_s))
        if not i % 2:
            ours_g.append(ours_gemm_tflops(args.gemm_size, args.gemm_s))
    og, bg = max(ours_g), max(bare_g)
    dtype = "bf16" if CUDA else "fp32"
    print(f"\nGEMM {args.gemm_size}^3 {dtype}, {args.gemm_s:g} s per side")
    print(f"{'':24} {'TFLOPS':>10}")
    print(f"{'bare torch.matmul loop':24} {bg:10.4f}")
    print(f"{'TorchGemmEngine':24} {og:10.4f}")
    ratio_g = og / bg
    print(f"ratio {ratio_g:.3f} (target >= {TARGET}: {'met' if ratio_g >= TARGET else 'MISSED'})")

    ours_c, bare_c = [], []
    for i in range(args.rounds):  # alternate which side goes first
        if i % 2:
            ours_c.append(ours_allreduce_busbw(args.ranks, sizes, args.iterations))
        bare_c.append(bare_allreduce_busbw(args.ranks, sizes, args.iterations))
        if not i % 2:
            ours_c.append(ours_allreduce_busbw(args.ranks, sizes, args.iterations))
    oc, bc = _best(ours_c), _best(bare_c)
    backend = "nccl" if CUDA else "gloo"
    print(f"\nall_reduce, {args.ranks} ranks ({backend}), {args.iterations} iterations per size")
    print(f"{'size':>12} {'bare busbw GB/s':>16} {'engine busbw GB/s':>18} {'ratio':>7}")
    ratios: list[float] = []
    for size in sizes:
        ratios.append(oc[size] / bc[size])
        print(f"{size:12d} {bc[size]:16.3f} {oc[size]:18.3f} {ratios[-1]:7.3f}")
    peak = max(oc.values()) / max(bc.values())
    print(
        f"peak busbw ratio {peak:.3f} (target >= {TARGET}: {'met' if peak >= TARGET else 'MISSED'})"
    )
    result("engine_gemm", og, bg, "TFLOPS", "higher")
    result("engine_all_reduce_peak_busbw", max(oc.values()), max(bc.values()), "GB/s", "higher")


if __name__ == "__main__":
    main()

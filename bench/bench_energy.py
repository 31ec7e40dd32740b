"""Energy attribution over one day of 1 Hz samples for 1,152 GPUs (16 NVL72 racks).

Generates ~100 M samples (GPUs x 86,400 s) with numpy straight from the
simulator's power model -- ``power = idle_w + (max_w - idle_w) * load`` with
the GB200 SKU profile's figures (``dcops.skus.get_sku``), the same formula as
``dcops.sim.model.FleetModel._true_power`` -- with load 0.9 while a GPU is
allocated to a job and 0 otherwise, 1 % multiplicative noise, and energy
counters that are the running sum of that power (uint64 mJ). One node (4 GPUs)
reports no counter (power only, estimated). Samples are written hour by hour
to Parquet (``day=YYYY-MM-DD/hour=HH.parquet``, node dictionary-encoded, rows
in time order as a collector writes them).

Then ``telemetry.energy`` attributes them, one hour file at a time
(``EnergyLedger``), to jobs, tenants and idle. Beside it, in the same run, a
straightforward pandas baseline: read the hour(s) into one frame, merge with
the allocations on (node, gpu), keep samples inside job windows, integrate
power per job with a groupby. The baseline runs on ``--baseline-hours`` (1 by
default: the whole day would not fit in memory that way) and the ratio
compares throughput in samples per second.

Each phase runs in a forked child so its peak RSS (``ru_maxrss``) is its own.
Run: ``python bench/bench_energy.py`` (about 3-5 min on 2 cores);
``--gpus 288 --hours 2`` for a quick run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dcops.skus import get_sku

DAY0 = 1_735_689_600  # 2025-01-01T00:00Z
GPUS_PER_NODE = 4
TENANTS = ("acme", "globex", "initech", "umbrella")


def schedule(gpus: int, hours: int, seed: int = 1) -> pd.DataFrame:
    """Whole-node jobs back to back with idle gaps: one allocation row per GPU."""
    rng = np.random.default_rng(seed)
    nodes = gpus // GPUS_PER_NODE
    end_s = DAY0 + hours * 3600
    rows: list[tuple[str, int, str, str, float, float]] = []
    for n in range(nodes):
        node = f"gb200-r{n // 18 + 1:02d}-t{n % 18 + 1:02d}"
        t = DAY0 + float(rng.integers(0, 1800))
        j = 0
        while t < end_s:
            length = float(rng.integers(1800, 6 * 3600))
            stop = t + length
            tenant = TENANTS[int(rng.integers(0, len(TENANTS)))]
            for g in range(GPUS_PER_NODE):
                rows.append((node, g, f"{n}-{j}", tenant, t, stop))
            j += 1
            t = stop + float(rng.integers(0, 3600))
    return pd.DataFrame(rows, columns=["node", "gpu", "job_id", "tenant", "start_s", "end_s"])


def generate(out: Path, gpus: int, hours: int, alloc: pd.DataFrame) -> dict[str, float]:
    sku = get_sku("gb200-nvl72").gpu
    rng = np.random.default_rng(2)
    nodes = gpus // GPUS_PER_NODE
    names = [f"gb200-r{n // 18 + 1:02d}-t{n % 18 + 1:02d}" for n in range(nodes)]
    node_idx = {name: i for i, name in enumerate(names)}
    counter = rng.integers(10**9, 10**12, size=gpus).astype(np.uint64)
    jobs = alloc[alloc["gpu"] == 0]
    j_node = jobs["node"].map(node_idx).to_numpy()
    j_start = jobs["start_s"].to_numpy()
    j_end = jobs["end_s"].to_numpy()
    node_codes = np.repeat(np.arange(nodes, dtype=np.int32), GPUS_PER_NODE)
    gpu_col = np.tile(np.arange(GPUS_PER_NODE, dtype=np.int16), nodes)
    t_gen = t_write = 0.0
    rows = 0
    for h in range(hours):
        t0 = time.perf_counter()
        ts = DAY0 + h * 3600 + np.arange(3600, dtype=np.float64)
        busy_node = np.zeros((nodes, 3600), dtype=bool)
        live = (j_end > ts[0]) & (j_start < ts[-1] + 1)
        for n, s, e in zip(j_node[live], j_start[live], j_end[live], strict=True):
            a = max(int(np.ceil(s - ts[0])), 0)
            b = min(int(np.ceil(e - ts[0])), 3600)
            busy_node[n, a:b] = True
        load = np.repeat(busy_node, GPUS_PER_NODE, axis=0) * 0.9
        power = sku.idle_power_w + (sku.power_w - sku.idle_power_w) * load
        power *= 1.0 + 0.01 * rng.standard_normal(power.shape)
        energy = counter[:, None] + np.cumsum(np.rint(power * 1000.0), axis=1).astype(np.uint64)
        counter = energy[:, -1].copy()
        # time-major rows, as a collector writes a batch per timestamp
        table = pa.table(
            {
                "node": pa.DictionaryArray.from_arrays(
                    pa.array(np.tile(node_codes, 3600)), pa.array(names)
                ),
                "gpu": np.tile(gpu_col, 3600),
                "ts_s": np.repeat(ts, gpus),
                "power_w": power.T.ravel().astype(np.float32),
                "energy_mj": pa.array(
                    energy.T.ravel(), mask=np.tile(node_codes == 0, 3600), type=pa.uint64()
                ),
            }
        )
        del busy_node, load, power, energy
        t1 = time.perf_counter()
        day = time.strftime("%Y-%m-%d", time.gmtime(DAY0 + h * 3600))
        folder = out / f"day={day}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"hour={h:02d}.parquet", compression="snappy")
        rows += table.num_rows
        del table
        t_write += time.perf_counter() - t1
        t_gen += t1 - t0
    return {"samples": float(rows), "generate_s": t_gen, "ingest_s": t_write}


def attribute(out: Path, alloc: pd.DataFrame) -> dict[str, float]:
    from telemetry.energy import EnergyLedger

    t0 = time.perf_counter()
    ledger = EnergyLedger(alloc, period="day")
    for f in sorted(out.rglob("*.parquet")):
        ledger.add(pq.read_table(f).to_pandas())
    acc = ledger.finish()
    assert acc.reconciles
    return {
        "attribute_s": time.perf_counter() - t0,
        "samples": float(acc.samples),
        "metered_kwh": acc.metered.kwh,
        "allocated_kwh": acc.allocated.kwh,
        "idle_kwh": acc.idle.kwh,
        "jobs": float(len(acc.jobs)),
        "estimated_gpus": float(len(acc.estimated_gpus())),
    }


def baseline(out: Path, alloc: pd.DataFrame, hours: int) -> dict[str, float]:
    t0 = time.perf_counter()
    files = sorted(out.rglob("*.parquet"))[:hours]
    df = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    df["node"] = df["node"].astype(str)
    df = df.sort_values(["node", "gpu", "ts_s"])
    df["dt"] = df.groupby(["node", "gpu"])["ts_s"].diff().fillna(0.0)
    m = df.merge(alloc, on=["node", "gpu"])
    m = m[(m["ts_s"] >= m["start_s"]) & (m["ts_s"] < m["end_s"])]
    per_job = (m["power_w"] * m["dt"]).groupby(m["job_id"]).sum()
    return {
        "baseline_s": time.perf_counter() - t0,
        "baseline_samples": float(len(df)),
        "baseline_jobs_kwh": float(per_job.sum()) / 3.6e6,
    }


def _child(fn: Callable[..., dict[str, float]], args: tuple[Any, ...], conn: Any) -> None:
    result = fn(*args)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send(result)
    conn.close()


def in_child(fn: Callable[..., dict[str, float]], *args: Any) -> dict[str, float]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, args, child))
    proc.start()
    result: dict[str, float] = parent.recv()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=1152)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--baseline-hours", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="write samples here and keep them")
    args = ap.parse_args()
    out = args.keep or Path(tempfile.mkdtemp(prefix="dcops-bench-energy-"))
    try:
        alloc = schedule(args.gpus, args.hours)
        gen = in_child(generate, out, args.gpus, args.hours, alloc)
        ours = in_child(attribute, out, alloc)
        base = in_child(baseline, out, alloc, args.baseline_hours)
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    n = ours["samples"]
    ours_rate = n / ours["attribute_s"]
    base_rate = base["baseline_samples"] / base["baseline_s"]
    print(
        f"{args.gpus} GPUs x {args.hours} h at 1 Hz: {n:,.0f} samples, {len(alloc):,} allocations"
    )
    print(
        f"generate (numpy, SKU power model): {gen['generate_s']:.1f} s; "
        f"ingest to Parquet: {gen['ingest_s']:.1f} s; peak RSS {gen['peak_rss_mib']:,.0f} MiB"
    )
    print(
        f"attribution (telemetry.energy, hour chunks): {ours['attribute_s']:.1f} s, "
        f"{ours_rate / 1e6:.2f} M samples/s, peak RSS {ours['peak_rss_mib']:,.0f} MiB"
    )
    print(
        f"  metered {ours['metered_kwh']:,.1f} kWh = allocated {ours['allocated_kwh']:,.1f} + "
        f"idle {ours['idle_kwh']:,.1f} (exact, integer mJ); {ours['jobs']:,.0f} jobs; "
        f"{ours['estimated_gpus']:.0f} GPUs estimated"
    )
    print(
        f"baseline (pandas merge+groupby, {args.baseline_hours} h = "
        f"{base['baseline_samples']:,.0f} samples): {base['baseline_s']:.1f} s, "
        f"{base_rate / 1e6:.2f} M samples/s, peak RSS {base['peak_rss_mib']:,.0f} MiB"
    )
    print(
        f"ratio (throughput ours / baseline): {ours_rate / base_rate:.1f}x; "
        f"peak memory per sample ours/baseline: "
        f"{(ours['peak_rss_mib'] / n) / (base['peak_rss_mib'] / base['baseline_samples']):.3f}"
    )


if __name__ == "__main__":
    main()

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
from _result import result

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


SAMPLE_COLS = ["node", "gpu", "ts_s", "power_w", "energy_mj"]


def attribute(out: Path, alloc: pd.DataFrame) -> dict[str, float]:
    """Ours: ``telemetry.energy`` over each hour's Arrow table (no pandas conversion),
    the next hour's file read in a thread while one is accounted."""
    from telemetry.energy import EnergyLedger, read_sample_tables

    t0 = time.perf_counter()
    ledger = EnergyLedger(alloc, period="day")
    for table in read_sample_tables(sorted(out.rglob("*.parquet"))):
        ledger.add(table)
    acc = ledger.finish()
    assert acc.reconciles
    return {
        "seconds": time.perf_counter() - t0,
        "samples": float(acc.samples),
        "metered_mj": float(acc.metered.total_mj),
        "allocated_mj": float(acc.allocated.total_mj),
        "idle_kwh": acc.idle.kwh,
        "jobs": float(len(acc.jobs)),
        "estimated_gpus": float(len(acc.estimated_gpus())),
    }


def attribute_pandas(out: Path, alloc: pd.DataFrame) -> dict[str, float]:
    """Fair pandas: hour by hour with each GPU's last reading carried over, counter
    deltas where both ends have one (trapezoid of power otherwise), merged only with
    the allocations overlapping the hour, an interval billed to the job holding t0."""
    t0 = time.perf_counter()
    a = alloc[["node", "gpu", "job_id", "start_s", "end_s"]]
    carry: pd.DataFrame | None = None
    metered = allocated = 0
    samples = 0
    for f in sorted(out.rglob("*.parquet")):
        df = pq.read_table(f, columns=SAMPLE_COLS).to_pandas(
            types_mapper={pa.uint64(): pd.Int64Dtype()}.get
        )
        samples += len(df)
        df["node"] = df["node"].astype(str)
        df["power_w"] = df["power_w"].astype("float64")
        if carry is not None:
            df = pd.concat([carry, df], ignore_index=True)
        df = df.sort_values(["node", "gpu", "ts_s"], kind="stable", ignore_index=True)
        nxt = df.groupby(["node", "gpu"], sort=False)[["ts_s", "power_w", "energy_mj"]].shift(-1)
        has_next = nxt["ts_s"].notna().to_numpy()
        carry = df[~has_next]
        dt = nxt["ts_s"] - df["ts_s"]
        trap = np.rint((df["power_w"] + nxt["power_w"]) / 2.0 * dt * 1000.0)
        delta = (nxt["energy_mj"] - df["energy_mj"]).astype("float64")
        mj = delta.where(delta.notna(), trap)
        iv = pd.DataFrame({"node": df["node"], "gpu": df["gpu"], "t0": df["ts_s"], "mj": mj})[
            has_next
        ]
        iv["mj"] = iv["mj"].astype(np.int64)
        metered += int(iv["mj"].sum())
        lo, hi = float(iv["t0"].min()), float(iv["t0"].max())
        live = a[(a["end_s"] > lo) & (a["start_s"] <= hi)]  # the one pre-filter
        m = iv.merge(live, on=["node", "gpu"])
        m = m[(m["t0"] >= m["start_s"]) & (m["t0"] < m["end_s"])]
        allocated += int(m.groupby("job_id")["mj"].sum().sum())
    return {
        "seconds": time.perf_counter() - t0,
        "samples": float(samples),
        "metered_mj": float(metered),
        "allocated_mj": float(allocated),
    }


DUCKDB_SQL = """
WITH s AS (
  SELECT node::VARCHAR AS node, gpu, ts_s, power_w::DOUBLE AS p0, energy_mj::BIGINT AS e0,
         lead(ts_s) OVER w AS t1, lead(power_w::DOUBLE) OVER w AS p1,
         lead(energy_mj::BIGINT) OVER w AS e1
  FROM read_parquet('{glob}')
  WINDOW w AS (PARTITION BY node, gpu ORDER BY ts_s)
), iv AS (
  SELECT node, gpu, ts_s AS t0,
         CASE WHEN e0 IS NOT NULL AND e1 IS NOT NULL THEN e1 - e0
              ELSE round_even((p0 + p1) / 2.0 * (t1 - ts_s) * 1000.0, 0)::BIGINT END AS mj
  FROM s WHERE t1 IS NOT NULL
)
SELECT count(*) + count(DISTINCT (iv.node, iv.gpu)) AS samples, sum(mj) AS metered,
       sum(mj) FILTER (WHERE a.job_id IS NOT NULL) AS allocated
FROM iv LEFT JOIN alloc AS a
  ON iv.node = a.node AND iv.gpu = a.gpu AND iv.t0 >= a.start_s AND iv.t0 < a.end_s
"""


def attribute_duckdb(out: Path, alloc: pd.DataFrame) -> dict[str, float]:
    """DuckDB SQL on the same Parquet: lead() per GPU, then a range join to allocations."""
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.register("alloc", alloc[["node", "gpu", "job_id", "start_s", "end_s"]])
    row = con.execute(DUCKDB_SQL.format(glob=f"{out}/**/*.parquet")).fetchone()
    assert row is not None
    con.close()
    return {
        "seconds": time.perf_counter() - t0,
        "samples": float(row[0]),
        "metered_mj": float(row[1]),
        "allocated_mj": float(row[2]),
    }


def _child(fn: Callable[..., dict[str, float]], args: tuple[Any, ...], conn: Any) -> None:
    try:
        got = fn(*args)
    except BaseException as exc:  # report it to the parent instead of hanging it
        conn.send(f"{type(exc).__name__}: {exc}")
        raise
    got["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send(got)
    conn.close()


def in_child(fn: Callable[..., dict[str, float]], *args: Any) -> dict[str, float]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, args, child))
    proc.start()
    got: dict[str, float] | str = parent.recv() if parent.poll(None) else "no result"
    proc.join()
    if isinstance(got, str):
        raise SystemExit(f"bench: {fn.__name__} failed in its child: {got}")
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=1152)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--quick", action="store_true", help="48 GPUs x 2 h (seconds)")
    ap.add_argument("--keep", type=Path, help="write samples here and keep them")
    args = ap.parse_args()
    if args.quick:
        args.gpus, args.hours = 48, 2
    out = args.keep or Path(tempfile.mkdtemp(prefix="dcops-bench-energy-"))
    try:
        alloc = schedule(args.gpus, args.hours)
        gen = in_child(generate, out, args.gpus, args.hours, alloc)
        runs = {
            "telemetry.energy": in_child(attribute, out, alloc),
            "pandas": in_child(attribute_pandas, out, alloc),
            "duckdb": in_child(attribute_duckdb, out, alloc),
        }
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    ours = runs["telemetry.energy"]
    n = ours["samples"]
    print(
        f"{args.gpus} GPUs x {args.hours} h at 1 Hz: {n:,.0f} samples, {len(alloc):,} allocations"
    )
    print(
        f"generate (numpy, SKU power model): {gen['generate_s']:.1f} s; "
        f"ingest to Parquet: {gen['ingest_s']:.1f} s; peak RSS {gen['peak_rss_mib']:,.0f} MiB"
    )
    print(
        f"  metered {ours['metered_mj'] / 3.6e9:,.3f} kWh = allocated "
        f"{ours['allocated_mj'] / 3.6e9:,.3f} + idle {ours['idle_kwh']:,.3f} (exact, integer mJ); "
        f"{ours['jobs']:,.0f} jobs; {ours['estimated_gpus']:.0f} GPUs estimated"
    )
    for name, r in runs.items():
        # Same samples, same span, same kWh to the millijoule, or the comparison is void.
        assert r["samples"] == n, (name, r["samples"], n)
        assert r["metered_mj"] == ours["metered_mj"], (name, r["metered_mj"], ours["metered_mj"])
        assert r["allocated_mj"] == ours["allocated_mj"], (name, r["allocated_mj"])
        print(
            f"{name:>17}: {r['seconds']:6.2f} s, {n / r['seconds'] / 1e6:5.2f} M samples/s, "
            f"peak RSS {r['peak_rss_mib']:,.0f} MiB, allocated "
            f"{r['allocated_mj'] / 3.6e9:,.3f} kWh"
        )
    best_name = min(("pandas", "duckdb"), key=lambda k: runs[k]["seconds"])
    best = runs[best_name]
    ratio = best["seconds"] / ours["seconds"]
    print(f"ratio (throughput ours / best baseline, {best_name}): {ratio:.2f}x")
    for name in ("pandas", "duckdb"):
        r = runs[name]
        result(f"energy_vs_{name}", n / ours["seconds"], n / r["seconds"], "samples/s", "higher")
        result(f"energy_rss_vs_{name}", ours["peak_rss_mib"], r["peak_rss_mib"], "MiB", "lower")


if __name__ == "__main__":
    main()

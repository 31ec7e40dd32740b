"""The fleet's GEMM baseline in the store: what a tray judged without enough peers is held to.

A burn-in of one tray alone (4 GPUs) has too few peers for the fleet-relative
rule (``gemm.outliers.min_peers``), so a 10 %-slow GPU would pass it. Every
run with enough peers records, per SKU, dtype and fixed rounds, the median and
MAD of the per-GPU mean TFLOPS of the GPUs that passed (the ``baselines``
table; the latest such run replaces the previous figure). A later run with too
few peers is judged against it (``tflops_vs_baseline``, the same robust rule);
with no baseline stored, only the absolute floors judge, and the report says
so (``params.gemm_reference``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from burnin.verdicts.robust import Spread, spread
from dcops.measurements import GpuRef
from dcops.store import Store, utc_now

SCOPE = "gpu"


def metric(dtype: str, rounds: int, backend: str) -> str:
    """The baseline's metric name: dtype, fixed rounds, and simulated or real hardware.

    The simulator's figures never judge real GPUs (nor the other way round).
    """
    world = "sim" if backend == "sim" else "hw"
    return f"gemm_{dtype}_tflops_{rounds}r_{world}"


def load_gemm_baseline(
    store: Store, sku: str, dtype: str, rounds: int, backend: str
) -> Spread | None:
    row = store.conn.execute(
        "SELECT median, mad, samples FROM baselines WHERE sku = ? AND metric = ? AND scope = ?",
        (sku, metric(dtype, rounds, backend), SCOPE),
    ).fetchone()
    if row is None:
        return None
    return Spread(float(row["median"]), float(row["mad"]), int(row["samples"]))


def save_gemm_baseline(
    conn: sqlite3.Connection,
    sku: str,
    params: Mapping[str, Any],
    tflops: Mapping[GpuRef, float],
    passed: set[str],
    min_peers: int,
) -> Spread | None:
    """Record the passing GPUs' spread when there were enough of them; the spread or None."""
    if params.get("gemm_reference") != "peers":
        return None
    values = [t for g, t in tflops.items() if str(g) in passed]
    if len(values) < min_peers:
        return None
    ref = spread(values)
    conn.execute(
        "INSERT INTO baselines (sku, metric, scope, median, mad, samples, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sku, metric, scope) DO UPDATE SET"
        " median=excluded.median, mad=excluded.mad, samples=excluded.samples,"
        " updated_at=excluded.updated_at",
        (
            sku,
            metric(str(params["dtype"]), int(params["gemm_fixed_rounds"]), str(params["backend"])),
            SCOPE,
            ref.median,
            ref.mad,
            ref.count,
            utc_now(),
        ),
    )
    return ref

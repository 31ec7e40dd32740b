"""Builders of plain measurement records for the verdict tests."""

from __future__ import annotations

from collections.abc import Sequence

from dcops.measurements import (
    BandwidthSample,
    ClocksEventReason,
    CollectiveResult,
    CollectiveRow,
    GemmResult,
    GpuReading,
    GpuRef,
    NodeReading,
    XidEvent,
)

GOOD_SUM = "c0ffee"


def gemm(
    gpu: GpuRef,
    tflops: float,
    *,
    checksum: str = GOOD_SUM,
    rel_error: float = 2e-3,
    has_nan: bool = False,
    dtype: str = "bf16",
) -> GemmResult:
    return GemmResult(
        gpu=gpu,
        dtype=dtype,
        m=8192,
        n=8192,
        k=8192,
        iterations=100,
        duration_s=1.0,
        tflops=tflops,
        checksum=checksum,
        rel_error=rel_error,
        has_nan=has_nan,
    )


def gpus(nodes: int, per_node: int = 4, prefix: str = "n") -> list[GpuRef]:
    return [GpuRef(f"{prefix}{i:02d}", j) for i in range(nodes) for j in range(per_node)]


def reading(
    gpu: GpuRef,
    *,
    lost: bool = False,
    temperature_c: float = 60.0,
    reasons: ClocksEventReason = ClocksEventReason.NONE,
    ecc_uncorrectable: int = 0,
    ecc_correctable: int = 0,
    pending: bool = False,
    failed: bool = False,
    links_active: int = 18,
    nvlink_errors: int = 0,
    xids: Sequence[XidEvent] = (),
) -> GpuReading:
    return GpuReading(
        gpu=gpu,
        uuid=f"GPU-{gpu}",
        name="NVIDIA GB200",
        lost=lost,
        temperature_c=temperature_c,
        clocks_event_reasons=reasons,
        ecc_uncorrectable=ecc_uncorrectable,
        ecc_correctable=ecc_correctable,
        remapped_rows_pending=pending,
        remapped_rows_failed=failed,
        nvlink_links_active=links_active,
        nvlink_links_total=18,
        nvlink_error_count=nvlink_errors,
        xids=tuple(xids),
    )


def node_reading(node: str, readings: Sequence[GpuReading], t: float = 0.0) -> NodeReading:
    return NodeReading(node=node, timestamp_s=t, gpus=tuple(readings))


def sweep(
    members: Sequence[GpuRef],
    busbw: float,
    *,
    op: str = "all_reduce",
    sizes: Sequence[int] = (4 << 30, 8 << 30),
    wrong: int | None = 0,
) -> CollectiveResult:
    rows = []
    for size in sizes:
        sample = BandwidthSample(
            time_us=1000.0, algbw_gbps=busbw / 2, busbw_gbps=busbw, wrong=wrong
        )
        rows.append(CollectiveRow(size, size // 4, "float", "sum", None, sample, sample))
    return CollectiveResult(op=op, members=tuple(members), rows=tuple(rows), backend="test")

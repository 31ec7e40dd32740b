"""The GPU sample schema: one row per GPU per sampling instant, as columns.

Two forms with the same columns: :data:`SAMPLE_COLUMNS` (names, for building
rows as plain Python lists without pyarrow) and :func:`sample_schema` (the
pyarrow schema of the Parquet files; pyarrow is imported on first use).
Units are in the names, as NVML reports them (energy stays the mJ counter).
Documented in ``docs/telemetry-collection.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dcops.measurements import GpuReading, NodeReading

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA_VERSION = 1
SCHEMA_VERSION_KEY = "dcops.telemetry.samples.schema_version"

#: (column, arrow type name, nullable) in file order.
_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("time", "timestamp_ms", False),  # when the node was read (UTC)
    ("node", "string", False),
    ("rack", "string", True),  # from the site inventory; null when the node is not in it
    ("gpu", "int16", False),  # index on the node
    ("uuid", "string", True),
    ("gpu_name", "string", True),
    ("lost", "bool", False),  # fell off the bus: the measurements below are null
    ("power_w", "float64", True),
    ("energy_mj", "int64", True),  # NVML total-energy counter since driver load
    ("temperature_c", "float32", True),
    ("sm_clock_mhz", "float32", True),
    ("max_sm_clock_mhz", "float32", True),
    ("clocks_event_reasons", "int64", False),  # NVML bit mask (ClocksEventReason)
    ("utilization_pct", "float32", True),
    ("memory_used_mib", "float64", True),
    ("memory_total_mib", "float64", True),
    ("ecc_uncorrectable", "int64", False),  # volatile counters (since driver load)
    ("ecc_correctable", "int64", False),
    ("remapped_rows_pending", "bool", False),
    ("remapped_rows_failed", "bool", False),
    ("nvlink_links_active", "int16", True),
    ("nvlink_links_total", "int16", True),
    ("nvlink_errors", "int64", False),  # summed data-link error counters
    ("xids", "list_int32", False),  # XID codes first seen in this sample
    ("driver_version", "string", True),
)

SAMPLE_COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in _COLUMNS)


def sample_schema() -> pa.Schema:
    """The pyarrow schema of sample tables and files (column order is file order)."""
    import pyarrow as pa

    types: dict[str, pa.DataType] = {
        "timestamp_ms": pa.timestamp("ms", tz="UTC"),
        "string": pa.string(),
        "int16": pa.int16(),
        "int64": pa.int64(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "list_int32": pa.list_(pa.int32()),
    }
    return pa.schema(
        [pa.field(name, types[kind], nullable=null) for name, kind, null in _COLUMNS],
        metadata={SCHEMA_VERSION_KEY: str(SCHEMA_VERSION)},
    )


class SampleColumns:
    """Sample rows accumulated column by column (cheap appends, no pyarrow needed)."""

    def __init__(self) -> None:
        self.data: dict[str, list[Any]] = {name: [] for name in SAMPLE_COLUMNS}

    def __len__(self) -> int:
        return len(self.data["time"])

    def add_reading(
        self,
        reading: NodeReading,
        *,
        rack: str | None,
        new_xids: Callable[[GpuReading], Sequence[int]],
    ) -> int:
        """Append one row per GPU of ``reading``; how many rows were added."""
        time_ms = round(reading.timestamp_s * 1000)
        for g in reading.gpus:
            row = _row(g)
            row["time"] = time_ms
            row["node"] = reading.node
            row["rack"] = rack
            row["xids"] = list(new_xids(g))
            row["driver_version"] = reading.driver_version
            for name in SAMPLE_COLUMNS:
                self.data[name].append(row[name])
        return len(reading.gpus)

    def clear(self) -> None:
        for values in self.data.values():
            values.clear()

    def to_table(self) -> pa.Table:
        """The rows as an Arrow table with :func:`sample_schema`."""
        import pyarrow as pa

        return pa.Table.from_pydict(self.data, schema=sample_schema())


def _row(g: GpuReading) -> dict[str, Any]:
    return {
        "gpu": g.gpu.index,
        "uuid": g.uuid or None,
        "gpu_name": g.name or None,
        "lost": g.lost,
        "power_w": g.power_w,
        "energy_mj": g.energy_mj,
        "temperature_c": g.temperature_c,
        "sm_clock_mhz": g.sm_clock_mhz,
        "max_sm_clock_mhz": g.max_sm_clock_mhz,
        "clocks_event_reasons": int(g.clocks_event_reasons),
        "utilization_pct": g.utilization_pct,
        "memory_used_mib": g.memory_used_mib,
        "memory_total_mib": g.memory_total_mib,
        "ecc_uncorrectable": g.ecc_uncorrectable,
        "ecc_correctable": g.ecc_correctable,
        "remapped_rows_pending": g.remapped_rows_pending,
        "remapped_rows_failed": g.remapped_rows_failed,
        "nvlink_links_active": g.nvlink_links_active,
        "nvlink_links_total": g.nvlink_links_total,
        "nvlink_errors": g.nvlink_error_count,
    }

"""Append-only Parquet stores partitioned by UTC day (samples, allocations).

Layout (hive-style, readable by pyarrow.dataset, DuckDB, Spark)::

    <data_dir>/telemetry/samples/date=2025-01-01/part-<first ms>-<random>.parquet
    <data_dir>/telemetry/allocations/date=2025-01-01/part-...parquet

Each :meth:`PartitionedStore.append` writes one new file per day the batch
touches (rows are split on their UTC day), never rewriting an existing one.
Writes are atomic: a hidden temporary file in the partition folder, flushed,
then renamed to its final name, so readers never see a partial file and a
crash leaves at most a hidden ``.tmp`` file that readers ignore.
:meth:`PartitionedStore.compact` merges one day's parts into one file.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dcops.atomic import atomic_target
from dcops.errors import StoreError
from dcops.private_files import private_dir

if TYPE_CHECKING:
    import pyarrow as pa

_DAY_DIR = re.compile(r"date=(\d{4}-\d{2}-\d{2})")
_PART = re.compile(r"part-.*\.parquet")


def samples_dir(data_dir: Path) -> Path:
    return data_dir / "telemetry" / "samples"


def allocations_dir(data_dir: Path) -> Path:
    return data_dir / "telemetry" / "allocations"


class PartitionedStore:
    """Parquet parts under ``root/date=YYYY-MM-DD/``, split on ``time_column``'s UTC day."""

    def __init__(
        self, root: Path, schema: Callable[[], pa.Schema], *, time_column: str = "time"
    ) -> None:
        self.root = root
        self._schema = schema
        self.time_column = time_column

    def days(self) -> list[date]:
        """The days that hold at least one part, oldest first."""
        if not self.root.is_dir():
            return []
        out = []
        for entry in self.root.iterdir():
            m = _DAY_DIR.fullmatch(entry.name)
            if m and entry.is_dir() and self.parts(date.fromisoformat(m.group(1))):
                out.append(date.fromisoformat(m.group(1)))
        return sorted(out)

    def day_dir(self, day: date) -> Path:
        return self.root / f"date={day.isoformat()}"

    def parts(self, day: date) -> list[Path]:
        folder = self.day_dir(day)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if _PART.fullmatch(p.name) and p.is_file())

    def append(self, table: pa.Table) -> list[Path]:
        """Store ``table``'s rows (one new file per UTC day they span); the files written."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if table.num_rows == 0:
            return []
        table = table.select(self._schema().names).cast(self._schema())
        times = table.column(self.time_column)
        days = pc.strftime(times, format="%Y-%m-%d", locale="C")
        written = []
        for day_text in sorted(set(days.to_pylist())):
            part = table.filter(pc.equal(days, pa.scalar(day_text)))
            first_ms = int(pc.min(part.column(self.time_column).cast(pa.int64())).as_py())
            written.append(self._write(date.fromisoformat(day_text), part, first_ms))
        return written

    def _write(self, day: date, table: pa.Table, first_ms: int) -> Path:
        import pyarrow.parquet as pq

        folder = self.day_dir(day)
        name = f"part-{first_ms:015d}-{uuid.uuid4().hex[:12]}.parquet"
        path = folder / name
        try:
            private_dir(folder)
            with atomic_target(path) as tmp:
                pq.write_table(table, tmp, compression="zstd")
        except OSError as exc:
            raise StoreError(f"{path}: cannot write telemetry ({exc})") from exc
        return path

    def read(self, start: datetime | None = None, end: datetime | None = None) -> pa.Table:
        """Rows with ``start <= time < end`` (either open), from the days that can hold them."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        schema = self._schema()
        tables = []
        for day in self.days():
            if start is not None and day < start.astimezone(UTC).date():
                continue
            if end is not None and day > end.astimezone(UTC).date():
                continue
            for path in self.parts(day):
                try:
                    tables.append(pq.read_table(path).select(schema.names).cast(schema))
                except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
                    raise StoreError(f"{path}: cannot read telemetry ({exc})") from exc
        if not tables:
            return schema.empty_table()
        table = pa.concat_tables(tables)
        times = table.column(self.time_column)
        if start is not None:
            table = table.filter(pc.greater_equal(times, pa.scalar(start, times.type)))
            times = table.column(self.time_column)
        if end is not None:
            table = table.filter(pc.less(times, pa.scalar(end, times.type)))
        return table

    def compact(self, day: date) -> Path | None:
        """Merge ``day``'s parts into one (sorted by time); the new part, None if <2 parts.

        The merged file is written (atomically) before the old parts are removed,
        so a crash in between leaves duplicates, never a loss.
        """
        import pyarrow.parquet as pq

        parts = self.parts(day)
        if len(parts) < 2:
            return None
        schema = self._schema()
        try:
            tables = [pq.read_table(p).select(schema.names).cast(schema) for p in parts]
        except OSError as exc:
            raise StoreError(f"{self.day_dir(day)}: cannot read telemetry ({exc})") from exc
        import pyarrow as pa

        merged = pa.concat_tables(tables).sort_by(self.time_column)
        first_ms = int(merged.column(self.time_column).cast(pa.int64())[0].as_py())
        out = self._write(day, merged, first_ms)
        for p in parts:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        return out


def sample_store(data_dir: Path) -> PartitionedStore:
    """The GPU sample store of a dcops data dir."""
    from telemetry.collect.schema import sample_schema

    return PartitionedStore(samples_dir(data_dir), sample_schema)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

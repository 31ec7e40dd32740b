"""The job store: normalized job records as Parquet, one file per import source.

Layout::

    <data_dir>/telemetry/jobs/<source>.parquet     e.g. alibaba-gpu-2023.parquet

Importing a source again replaces that source's file as a whole (idempotent:
the same file imported twice leaves the same records, never twice as many).
Writes are atomic: the table goes to a hidden temporary file in the same
folder, is flushed to disk, and is renamed over the old file; a failed import
leaves the previous file untouched and no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from dcops.atomic import atomic_target
from dcops.errors import InputError, StoreError
from dcops.private_files import private_dir
from telemetry.jobs import COLUMNS, JOB_SCHEMA, conform, empty_jobs_frame, table_to_frame

if TYPE_CHECKING:
    import pandas as pd

_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_SUFFIX = ".parquet"


def jobs_dir(data_dir: Path) -> Path:
    """Where the job store of a dcops data dir lives."""
    return data_dir / "telemetry" / "jobs"


@dataclass(frozen=True)
class ReplaceResult:
    """What one import did to the store."""

    source: str
    path: Path
    records: int
    replaced: int  # records the source held before (0 on the first import)


class JobStore:
    """Parquet files of job records under ``root`` (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> JobStore:
        return cls(jobs_dir(data_dir))

    def path_for(self, source: str) -> Path:
        """The file that holds ``source``'s records; InputError for an unsafe name."""
        if not _SOURCE_NAME.fullmatch(source):
            raise InputError(
                f"bad telemetry source name {source!r} "
                "(lower-case letters, digits, '.', '_', '-'; at most 100)"
            )
        return self.root / f"{source}{_SUFFIX}"

    def sources(self) -> list[str]:
        """Names of the sources the store holds, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name[: -len(_SUFFIX)]
            for p in self.root.iterdir()
            if p.name.endswith(_SUFFIX) and not p.name.startswith(".") and p.is_file()
        )

    def replace(self, source: str, jobs: pd.DataFrame) -> ReplaceResult:
        """Make ``jobs`` the whole of ``source``'s records, atomically."""
        path = self.path_for(source)
        frame = conform(jobs)
        others = sorted(set(frame["source"].unique()) - {source})
        if others:
            raise ValueError(f"records for {source!r} name other sources: {others}")
        table = pa.Table.from_pandas(frame, schema=JOB_SCHEMA, preserve_index=False)
        previous = self._count(path)
        try:
            private_dir(self.root)
            with atomic_target(path) as tmp:
                pq.write_table(table, tmp)
        except OSError as exc:
            raise StoreError(f"{path}: cannot write the job store ({exc})") from exc
        return ReplaceResult(source=source, path=path, records=table.num_rows, replaced=previous)

    def read(self, sources: list[str] | None = None) -> pd.DataFrame:
        """Every record of ``sources`` (default: all), as one frame with the job schema."""
        import pandas as pd

        names = self.sources() if sources is None else sources
        frames = [self._read_one(self.path_for(name)) for name in names]
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_jobs_frame()
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, ignore_index=True)

    def _read_one(self, path: Path) -> pd.DataFrame:
        if not path.exists():
            return empty_jobs_frame()
        try:
            table = pq.read_table(path)
            return table_to_frame(table.select(list(COLUMNS)).cast(JOB_SCHEMA))
        except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
            raise StoreError(f"{path}: cannot read the job store ({exc})") from exc

    def _count(self, path: Path) -> int:
        try:
            return int(pq.read_metadata(path).num_rows)
        except FileNotFoundError:
            return 0
        except (OSError, pa.ArrowException):
            return 0  # unreadable: it is being replaced anyway


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

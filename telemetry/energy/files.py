"""The energy report's inputs: the collector's sample and allocation files, read and adapted.

Samples are a Parquet/CSV file or a folder of them (the collector's
``<data_dir>/telemetry/samples/date=YYYY-MM-DD/part-*.parquet``, read one file
at a time in path order, which is time order); allocations likewise
(``telemetry/allocations``, the job mapper's snapshots, consolidated to one
interval per GPU and job). :func:`compute_energy` reads both and accounts them
(:func:`telemetry.energy.account_energy`). A missing or unreadable file is an
:class:`~dcops.errors.InputError` (exit 2) naming it; an OS failure reading one
a :class:`~dcops.errors.StoreError` (exit 3).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dcops.errors import InputError, StoreError

if TYPE_CHECKING:
    import pandas as pd

    from telemetry.energy.account import EnergyAccount


def _read_table(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".csv":
            frame: pd.DataFrame = pd.read_csv(path)
        else:
            frame = pq.read_table(path, columns=columns).to_pandas()
        return frame
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (pa.ArrowException, ValueError, KeyError) as exc:
        raise InputError(f"{path}: cannot read as Parquet/CSV ({exc})") from exc
    except OSError as exc:
        raise StoreError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _epoch_s(col: pd.Series) -> pd.Series:
    import pandas as pd

    stamps = pd.to_datetime(col, utc=True)
    out: pd.Series = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return out


def _adapt_samples(frame: pd.DataFrame) -> pd.DataFrame:
    """The collector's sample files (``time`` timestamps) in the energy core's columns."""
    if "ts_s" not in frame.columns and "time" in frame.columns:
        frame = frame.assign(ts_s=_epoch_s(frame["time"]))
    return frame


def _adapt_allocations(frame: pd.DataFrame) -> pd.DataFrame:
    """The jobmap's allocation files in the energy core's columns.

    jobmap rows are snapshots (``time``, ``start``, ``end`` timestamps): one
    interval per (node, gpu, job, start) is kept, with its latest known end. Rows that
    do not name a GPU (``gpu`` null: the source only knows the node) cannot be
    attributed per GPU and are left out.
    """
    if "start_s" in frame.columns:
        return frame
    if "start" not in frame.columns:
        return frame
    out = frame[frame["gpu"].notna()].assign(
        start_s=_epoch_s(frame["start"]), end_s=_epoch_s(frame["end"])
    )
    if "tenant" not in out.columns:
        out = out.assign(tenant=None)
    keys = ["node", "gpu", "job_id", "start_s"]
    consolidated: pd.DataFrame = out.sort_values("end_s", na_position="first").drop_duplicates(
        keys, keep="last"
    )
    return consolidated


def _data_files(path: Path, what: str) -> list[Path]:
    """``path`` itself, or a folder's Parquet/CSV files in path order (time order for
    ``date=YYYY-MM-DD`` style names); none is an InputError naming ``what``."""
    if not path.is_dir():
        return [path]
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in (".parquet", ".csv") and not p.name.startswith(".")
    )
    if not files:
        raise InputError(f"{path}: no .parquet or .csv {what} files")
    return files


def read_allocations(path: Path) -> pd.DataFrame:
    import pandas as pd

    frames = [_read_table(f) for f in _data_files(path, "allocation")]
    return _adapt_allocations(
        frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    )


def sample_chunks(path: Path) -> Iterator[pd.DataFrame]:
    """Sample frames from a file (one chunk) or a folder of Parquet/CSV files (one per file)."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    for f in _data_files(path, "sample"):
        yield _adapt_samples(_read_table(f))


def compute_energy(
    samples: Path,
    allocations: Path,
    *,
    since: datetime | None,
    until: datetime | None,
    period: str,
) -> EnergyAccount:
    """Read the inputs and account them (the library call behind the command)."""
    from telemetry.energy import account_energy

    alloc = read_allocations(allocations)
    return account_energy(
        sample_chunks(samples),
        alloc,
        since=None if since is None else since.timestamp(),
        until=None if until is None else until.timestamp(),
        period=period,
    )

"""Read sample files as Arrow tables for the ledger, the next file read while one is accounted.

Parquet decoding releases the GIL, so reading file ``i + 1`` in a thread overlaps
with accounting file ``i`` (numpy, mostly in C as well): on two cores the read
is mostly hidden. Tables go to :meth:`EnergyLedger.add` without pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from telemetry.energy.intervals import SAMPLE_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa


def read_sample_tables(paths: Iterable[Path], *, prefetch: bool = True) -> Iterator[pa.Table]:
    """The sample columns of each Parquet file, in order (one file read ahead)."""
    import pyarrow.parquet as pq

    def read(path: Path) -> pa.Table:
        return pq.read_table(path, columns=list(SAMPLE_COLUMNS))

    files = list(paths)
    if not prefetch or len(files) < 2:
        for f in files:
            yield read(f)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="energy-read") as pool:
        ahead: Future[pa.Table] = pool.submit(read, files[0])
        for nxt in files[1:]:
            table = ahead.result()
            ahead = pool.submit(read, nxt)
            yield table
        yield ahead.result()

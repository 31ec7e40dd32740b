"""Import one source's job file into the job store: read, normalize, replace."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telemetry.importers import ImportOptions, get_importer
from telemetry.jobs import STATES
from telemetry.store import JobStore


@dataclass(frozen=True)
class ImportResult:
    """What ``dcops telemetry import`` did."""

    source: str
    file: Path
    store_path: Path
    records: int
    replaced: int  # records of this source the store held before
    by_state: dict[str, int] = field(default_factory=dict)  # every state, in STATES order

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "file": str(self.file),
            "store_path": str(self.store_path),
            "records": self.records,
            "replaced": self.replaced,
            "by_state": dict(self.by_state),
        }


def import_jobs(
    store: JobStore, source: str, path: Path, options: ImportOptions | None = None
) -> ImportResult:
    """Read ``path`` with the importer named ``source`` and make it that source's records.

    UnknownNameError for an unknown source, InputError for a malformed file (the
    store is then untouched), StoreError when the store cannot be written.
    """
    importer = get_importer(source)
    jobs = importer.read(path, options or ImportOptions())
    done = store.replace(importer.name, jobs)
    counts = jobs["state"].value_counts()
    return ImportResult(
        source=importer.name,
        file=path,
        store_path=done.path,
        records=done.records,
        replaced=done.replaced,
        by_state={s: int(counts.get(s, 0)) for s in STATES},
    )

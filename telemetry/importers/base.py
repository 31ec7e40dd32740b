"""The importer port: turn one source's job file into normalized job records.

An importer is any object with a ``name``, a one-line ``description`` and a
``read(path, options)`` that returns a frame conforming to
:data:`telemetry.jobs.JOB_SCHEMA` (build it with :func:`telemetry.jobs.jobs_frame`).
Importers register under their name with :func:`register`; :func:`get_importer`
looks one up and raises :class:`dcops.errors.UnknownNameError` listing the
valid names otherwise.

A malformed file raises :class:`dcops.errors.InputError` (usually the located
subclass :class:`dcops.errors.LocatedInputError`) naming the file, the line
and the column; an importer never returns part of a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from dcops.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

#: Where relative trace times start when the caller does not say: the Unix epoch.
DEFAULT_TRACE_START = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ImportOptions:
    """What the caller knows that the file does not say."""

    #: Tenant to attach to every record whose source has no tenant of its own.
    tenant: str | None = None
    #: Wall-clock (UTC) instant of a trace's time zero, for sources with relative times.
    trace_start: datetime = field(default=DEFAULT_TRACE_START)

    def __post_init__(self) -> None:
        if self.trace_start.utcoffset() is None:
            raise ValueError("trace_start must be timezone-aware")


@runtime_checkable
class JobImporter(Protocol):
    """Reads one kind of job file into normalized job records."""

    name: str
    description: str

    def read(self, path: Path, options: ImportOptions) -> pd.DataFrame:
        """Every job of ``path`` as a frame with the job schema; InputError if malformed."""
        ...


#: Every importer by name (each importer module registers itself on import).
IMPORTERS: Registry[JobImporter] = Registry("telemetry import source")

#: Class decorator: make an importer available under ``name``.
register = IMPORTERS.register


def importer_names() -> list[str]:
    """The names of every registered importer, sorted."""
    return IMPORTERS.names()


def get_importer(name: str) -> JobImporter:
    """The importer registered as ``name``; UnknownNameError lists the valid ones."""
    return IMPORTERS.create(name)

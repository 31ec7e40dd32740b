"""Importer for the Alibaba GPU cluster trace 2023 pod list (``openb_pod_list_*.csv``).

Source: alibaba/clusterdata, ``cluster-trace-gpu-v2023/csv/`` (the trace of the
USENIX ATC'23 paper "Beware of Fragmentation"). One row per Kubernetes pod::

    name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,
    creation_time,deletion_time,scheduled_time

Mapping to the job record:

- ``job_id`` = ``name``; ``backend`` = ``trace:alibaba-gpu-2023``; one node per
  scheduled pod (``num_nodes`` 1, the node's name is not in the trace), none for
  a pod that was never scheduled.
- ``gpus`` = ``num_gpu * gpu_milli / 1000``: ``gpu_milli`` is the share of each
  GPU the pod asked for (1000 = a whole GPU; below 1000 only with ``num_gpu`` 1,
  a GPU-sharing pod), so a pod with ``num_gpu`` 1 and ``gpu_milli`` 460 asks for
  0.46 GPU.
- times are seconds since the trace's start: ``submit_time`` = creation,
  ``start_time`` = scheduled (empty for pods never scheduled), ``end_time`` =
  deletion, each added to :attr:`ImportOptions.trace_start`.
- ``state`` from ``pod_phase``: Succeeded -> completed, Failed -> failed,
  Running -> running, Pending -> pending; ``raw_state`` keeps the phase. A pod
  whose last phase is Running but that has a deletion time was deleted while
  running (the trace's long-running services): it stays ``running``, with an end.
- ``extra`` keeps the other columns (cpu_milli, memory_mib, num_gpu, gpu_milli,
  gpu_spec, qos) as JSON.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcops.errors import InputError, LocatedInputError
from dcops.jobstate import JobState
from telemetry.importers.base import ImportOptions, register
from telemetry.jobs import JobRecord, jobs_frame

if TYPE_CHECKING:
    import pandas as pd

NAME = "alibaba-gpu-2023"
BACKEND = f"trace:{NAME}"

PHASES: dict[str, str] = {
    "Succeeded": JobState.COMPLETED.value,
    "Failed": JobState.FAILED.value,
    "Running": JobState.RUNNING.value,
    "Pending": JobState.PENDING.value,
}

REQUIRED_COLUMNS: tuple[str, ...] = (
    "name",
    "num_gpu",
    "gpu_milli",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)
_EXTRA_INT_COLUMNS = ("cpu_milli", "memory_mib")
_EXTRA_TEXT_COLUMNS = ("gpu_spec", "qos")
_REST = "\0rest"  # DictReader's key for fields beyond the header


class _RowError(Exception):
    def __init__(self, column: str, what: str) -> None:
        super().__init__(what)
        self.column = column
        self.what = what


def _int(row: dict[str, str], column: str, lo: int, hi: int | None = None) -> int:
    raw = row[column].strip()
    try:
        value = int(raw)
    except ValueError:
        raise _RowError(column, f"expected an integer, got {raw!r}") from None
    if value < lo or (hi is not None and value > hi):
        bounds = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise _RowError(column, f"{value} is out of range ({bounds})")
    return value


def _seconds(row: dict[str, str], column: str, *, optional: bool) -> float | None:
    raw = row[column].strip()
    if not raw:
        if optional:
            return None
        raise _RowError(column, "is empty")
    try:
        value = float(raw)
    except ValueError:
        raise _RowError(column, f"expected seconds since trace start, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise _RowError(column, f"expected seconds >= 0, got {raw!r}")
    return value


def _at(start: datetime, seconds: float | None) -> datetime | None:
    return None if seconds is None else start + timedelta(seconds=seconds)


def _record(row: dict[str, str], options: ImportOptions) -> JobRecord:
    name = row["name"].strip()
    if not name:
        raise _RowError("name", "is empty")
    phase = row["pod_phase"].strip()
    if phase not in PHASES:
        raise _RowError("pod_phase", f"unknown phase {phase!r} (known: {', '.join(PHASES)})")
    num_gpu = _int(row, "num_gpu", 0)
    gpu_milli = _int(row, "gpu_milli", 0, 1000)
    created = _seconds(row, "creation_time", optional=False)
    scheduled = _seconds(row, "scheduled_time", optional=True)
    deleted = _seconds(row, "deletion_time", optional=True)
    assert created is not None
    if scheduled is not None and scheduled < created:
        raise _RowError("scheduled_time", f"{scheduled:g} is before creation_time {created:g}")
    if deleted is not None and deleted < max(created, scheduled or 0.0):
        raise _RowError("deletion_time", f"{deleted:g} is before the pod was created/scheduled")

    extra: dict[str, Any] = {"num_gpu": num_gpu, "gpu_milli": gpu_milli}
    for column in _EXTRA_INT_COLUMNS:
        if row.get(column, "").strip():
            extra[column] = _int(row, column, 0)
    for column in _EXTRA_TEXT_COLUMNS:
        if row.get(column, "").strip():
            extra[column] = row[column].strip()

    t0 = options.trace_start
    return JobRecord(
        job_id=name,
        source=NAME,
        backend=BACKEND,
        state=PHASES[phase],
        raw_state=phase,
        tenant=options.tenant,
        num_nodes=None if scheduled is None else 1,
        gpus=num_gpu * gpu_milli / 1000,
        submit_time=_at(t0, created),
        start_time=_at(t0, scheduled),
        end_time=_at(t0, deleted),
        extra=extra,
    )


@register(NAME)
class AlibabaGpu2023Importer:
    """Alibaba GPU cluster trace 2023: ``openb_pod_list_*.csv`` pod lists."""

    name = NAME
    description = "Alibaba GPU cluster trace 2023 pod list (openb_pod_list_*.csv)"

    def read(self, path: Path, options: ImportOptions) -> pd.DataFrame:
        return jobs_frame(self.records(path, options))

    def records(self, path: Path, options: ImportOptions) -> list[JobRecord]:
        """Every pod of ``path`` as a job record; LocatedInputError at the first bad row."""
        where = str(path)
        try:
            with path.open(encoding="utf-8", newline="") as fh:
                return self._parse(where, csv.DictReader(fh, restkey=_REST), options)
        except FileNotFoundError:
            raise InputError(f"{where}: no such file") from None
        except UnicodeDecodeError as exc:
            raise LocatedInputError(where, f"not UTF-8 text ({exc.reason})") from exc
        except csv.Error as exc:
            raise LocatedInputError(where, f"not valid CSV ({exc})") from exc
        except OSError as exc:
            raise InputError(f"{where}: cannot read ({exc.strerror or exc})") from exc

    def _parse(
        self, where: str, reader: csv.DictReader[str], options: ImportOptions
    ) -> list[JobRecord]:
        header = reader.fieldnames
        if not header:
            raise LocatedInputError(where, "empty file (expected a pod list CSV header)", line=1)
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise LocatedInputError(
                where,
                f"missing column(s) {', '.join(missing)} (a pod list has "
                f"{', '.join(REQUIRED_COLUMNS)})",
                line=1,
            )
        records: list[JobRecord] = []
        first_line: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if _REST in row:
                got = len(header) + len(row[_REST])
                raise LocatedInputError(
                    where, f"row has {got} fields, the header {len(header)}", line=line
                )
            short = [c for c in header if row[c] is None]
            if short:
                raise LocatedInputError(
                    where, f"row has too few fields (no {', '.join(short)})", line=line
                )
            try:
                rec = _record(row, options)
            except _RowError as exc:
                raise LocatedInputError(where, exc.what, line=line, key=exc.column) from None
            if rec.job_id in first_line:
                raise LocatedInputError(
                    where,
                    f"duplicate pod {rec.job_id!r} (first on line {first_line[rec.job_id]})",
                    line=line,
                    key="name",
                )
            first_line[rec.job_id] = line
            records.append(rec)
        return records

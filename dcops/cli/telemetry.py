"""``dcops telemetry``: import job records and report job stability.

pandas and pyarrow are imported inside the commands, never at module level, so
``dcops --help`` stays instant.

Exit codes: 0 ok (an empty store included: the report says so on stderr and
shows zeros), 2 unknown source, malformed file or bad option, 3 the store
cannot be read or written.
"""

from __future__ import annotations

import csv
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import emit, get_config, json_option
from dcops.cli.telemetry_report import energy as energy_report
from dcops.cli.telemetry_report import html_option, write_stability_html

if TYPE_CHECKING:
    from rich.console import Console

    from telemetry.ingest import ImportResult
    from telemetry.stability import StabilityReport


def _parse_when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """ISO date or date-time; a value without a zone is UTC."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date or date-time (e.g. 2025-01-31 or 2025-01-31T08:00Z)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _rounded(data: Any, digits: int = 6) -> Any:
    """Floats rounded for output (sums of milli-GPUs must not print as 6086.800000000001)."""
    if isinstance(data, float):
        return round(data, digits) if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _rounded(v, digits) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_rounded(v, digits) for v in data]
    return data


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


@click.group()
def telemetry() -> None:
    """Import job records from schedulers and traces; report job stability."""


@telemetry.command("import")
@click.argument("source")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", help="Tenant to record on every job whose source names none.")
@click.option(
    "--trace-start",
    callback=_parse_when,
    help="Wall-clock UTC time of a trace's time zero (traces with relative times; "
    "default 1970-01-01T00:00Z).",
)
@json_option
@click.pass_context
def import_(
    ctx: click.Context,
    *,
    source: str,
    file: Path,
    tenant: str | None,
    trace_start: datetime | None,
    as_json: bool,
) -> None:
    """Import FILE as SOURCE's job records, replacing what SOURCE imported before.

    SOURCE is an importer name, e.g. alibaba-gpu-2023. Importing the same source
    again replaces its records (never duplicates them); a malformed FILE changes
    nothing.
    """
    from telemetry.importers import DEFAULT_TRACE_START, ImportOptions
    from telemetry.ingest import import_jobs
    from telemetry.store import JobStore

    store = JobStore.for_data_dir(get_config(ctx).data_dir)
    options = ImportOptions(tenant=tenant, trace_start=trace_start or DEFAULT_TRACE_START)
    result = import_jobs(store, source, file, options)

    def render(console: Console) -> None:
        _render_import(console, result)

    emit(result.as_dict(), as_json, render)


def _render_import(console: Console, result: ImportResult) -> None:
    from rich.table import Table

    replaced = f", replacing {result.replaced:,}" if result.replaced else ""
    console.print(
        f"imported {result.records:,} job records from {result.file} as {result.source}{replaced}"
    )
    table = Table()
    table.add_column("state")
    table.add_column("jobs", justify="right")
    for state, count in result.by_state.items():
        if count:
            table.add_row(state, f"{count:,}")
    console.print(table)


@telemetry.group()
def report() -> None:
    """Reports: job stability over the imported job records, energy over the samples."""


report.add_command(energy_report)


_CSV_COLUMNS = (
    "state",
    "jobs",
    "share",
    "gpus_requested",
    "gpus_requested_share",
    "gpu_hours",
    "gpu_hours_share",
)


@report.command()
@html_option
@click.option(
    "--since",
    callback=_parse_when,
    help="Only jobs first seen (submitted, else started, else ended) at or after this "
    "ISO date or date-time (UTC unless a zone is given).",
)
@click.option("--tenant", help="Only this tenant's jobs.")
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print the by-state table as CSV.")
@click.pass_context
def stability(
    ctx: click.Context,
    *,
    html_path: Path | None,
    since: datetime | None,
    tenant: str | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Job outcomes by state (count, GPUs requested, GPU-hours), failure rate, MTTF.

    An empty store (nothing imported yet) is not an error: the report shows
    zeros and says so on stderr.
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv are exclusive")
    from telemetry.stability import stability_report
    from telemetry.store import JobStore

    store = JobStore.for_data_dir(get_config(ctx).data_dir)
    jobs = store.read()
    if not len(jobs):
        click.echo(
            f"dcops: no job records in {store.root}; "
            "import some with `dcops telemetry import SOURCE FILE`",
            err=True,
        )
    result = stability_report(jobs, since=since, tenant=tenant)
    if html_path is not None:
        write_stability_html(ctx, jobs, result, html_path)
    data = _rounded(result.as_dict())
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(_CSV_COLUMNS)
        for state, row in data["by_state"].items():
            writer.writerow([state, *(row[c] for c in _CSV_COLUMNS[1:])])
        return

    def render(console: Console) -> None:
        _render_stability(console, result)

    emit(data, as_json, render)


def _render_stability(console: Console, result: StabilityReport) -> None:
    from rich.table import Table

    out = result.outcomes
    scope = ", ".join(result.sources) or "no sources"
    filters = []
    if result.tenant is not None:
        filters.append(f"tenant {result.tenant}")
    if result.since is not None:
        filters.append(f"since {result.since.isoformat()}")
    console.print(
        f"{out.jobs:,} jobs ({scope}{'; ' if filters else ''}{', '.join(filters)}); "
        f"{_fmt(out.gpus_requested)} GPUs requested, {_fmt(out.gpu_hours)} GPU-hours "
        f"({out.jobs_with_gpu_hours:,} jobs with known GPU-hours)"
    )
    table = Table(title="outcomes")
    for col in ("state", "jobs", "share", "GPUs req.", "share", "GPU-hours", "share"):
        table.add_column(col, justify="left" if col == "state" else "right")
    for row in out.by_state:
        if row.jobs:
            table.add_row(
                row.state,
                f"{row.jobs:,}",
                _pct(row.share),
                _fmt(row.gpus_requested),
                _pct(row.gpus_requested_share),
                _fmt(row.gpu_hours),
                _pct(row.gpu_hours_share),
            )
    console.print(table)
    fr = result.failures
    console.print(
        f"failures ({', '.join(result.failure_states)}) per 1,000 node-days: "
        f"{_fmt(fr.per_1000_node_days, 2)} ({fr.failures:,} over {_fmt(fr.node_days)} "
        f"node-days of {fr.jobs:,} jobs)"
    )
    mttf = Table(title="MTTF by job size (GPUs requested)")
    for col in ("GPUs", "jobs", "runtime h", "failures", "MTTF h"):
        mttf.add_column(col, justify="left" if col == "GPUs" else "right")
    for b in result.mttf:
        if b.jobs:
            mttf.add_row(
                b.bucket,
                f"{b.jobs:,}",
                _fmt(b.runtime_hours),
                f"{b.failures:,}",
                _fmt(b.mttf_hours),
            )
    console.print(mttf)


def _add_collection_commands() -> None:
    from dcops.cli.telemetry_collect import collect, map_jobs, serve

    for command in (collect, serve, map_jobs):
        telemetry.add_command(command)


_add_collection_commands()

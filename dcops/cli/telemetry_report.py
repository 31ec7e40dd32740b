"""``dcops telemetry report energy`` and the HTML stability report.

Wiring (in :mod:`dcops.cli.telemetry`): ``report.add_command(energy)``, and on
``report stability`` the :func:`html_option` plus a call to
:func:`write_stability_html`. pandas, pyarrow and matplotlib are imported
inside the commands only.

Exit codes: 0 ok, 2 bad option or malformed input (missing columns, samples out
of order, unknown period), 3 a store file cannot be read.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from dcops.cli.common import emit, get_config, json_option
from dcops.errors import InputError, StoreError

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from telemetry.energy import EnergyAccount, FacilityRates
    from telemetry.stability import StabilityReport

F = TypeVar("F", bound=Callable[..., Any])

#: Where the collector (``telemetry.collect``, ``telemetry.jobmap``) keeps samples
#: and allocations under the data dir: ``date=YYYY-MM-DD/part-*.parquet`` folders.
SAMPLES_SUBDIR = Path("telemetry") / "samples"
ALLOCATIONS_FILE = Path("telemetry") / "allocations"

_CSV_COLUMNS = (
    "tenant",
    "period",
    "jobs",
    "gpu_hours",
    "energy_mj",
    "measured_mj",
    "estimated_mj",
    "provenance",
    "it_kwh",
    "facility_kwh",
    "co2_kg",
    "cost",
)


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date or date-time") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


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


def _read_allocations(path: Path) -> pd.DataFrame:
    import pandas as pd

    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in (".parquet", ".csv")
            and not p.name.startswith(".")
        )
        if not files:
            raise InputError(f"{path}: no .parquet or .csv allocation files")
        frame = pd.concat([_read_table(f) for f in files], ignore_index=True)
    else:
        frame = _read_table(path)
    return _adapt_allocations(frame)


def sample_chunks(path: Path) -> Iterator[pd.DataFrame]:
    """Sample frames from a file (one chunk) or a folder of Parquet/CSV files (one per file).

    Files of a folder (a day/hour partitioned dataset) are read in path order,
    which is time order for ``day=YYYY-MM-DD`` style names.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in (".parquet", ".csv")
            and not p.name.startswith(".")
        )
        if not files:
            raise InputError(f"{path}: no .parquet or .csv sample files")
        for f in files:
            yield _adapt_samples(_read_table(f))
    else:
        yield _adapt_samples(_read_table(path))


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

    alloc = _read_allocations(allocations)
    return account_energy(
        sample_chunks(samples),
        alloc,
        since=None if since is None else since.timestamp(),
        until=None if until is None else until.timestamp(),
        period=period,
    )


def _rates(pue: float, carbon: float, price: float | None, currency: str) -> FacilityRates:
    from telemetry.energy import FacilityRates

    try:
        return FacilityRates(
            pue=pue, carbon_g_per_kwh=carbon, price_per_kwh=price, currency=currency
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _rounded(data: Any) -> Any:
    if isinstance(data, float):
        return round(data, 6)
    if isinstance(data, dict):
        return {k: _rounded(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_rounded(v) for v in data]
    return data


@click.command()
@click.option("--since", callback=_when, help="Account from this ISO date/time (UTC by default).")
@click.option("--until", callback=_when, help="Account up to this ISO date/time.")
@click.option("--tenant", help="Show only this tenant's rows (totals stay fleet-wide).")
@click.option(
    "--period",
    type=click.Choice(["day", "month", "all"]),
    default="day",
    show_default=True,
    help="Billing period (UTC calendar).",
)
@click.option(
    "--pue",
    type=float,
    default=1.0,
    show_default=True,
    help="Power usage effectiveness (facility / IT energy); sites are ~1.1-1.6.",
)
@click.option(
    "--carbon-g-per-kwh",
    type=float,
    default=56.0,
    show_default=True,
    help="Grid carbon intensity (default: France 2023).",
)
@click.option("--price-per-kwh", type=float, help="Energy price per facility kWh.")
@click.option("--currency", default="EUR", show_default=True)
@click.option(
    "--samples",
    "samples_path",
    type=click.Path(path_type=Path),
    help="Samples: Parquet/CSV file or folder (default: the data dir's samples).",
)
@click.option(
    "--allocations",
    "alloc_path",
    type=click.Path(path_type=Path),
    help="Allocations: Parquet/CSV file (default: the data dir's allocations).",
)
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Per tenant and period, as CSV.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write an HTML report with plots to this file.",
)
@click.pass_context
def energy(
    ctx: click.Context,
    *,
    since: datetime | None,
    until: datetime | None,
    tenant: str | None,
    period: str,
    pue: float,
    carbon_g_per_kwh: float,
    price_per_kwh: float | None,
    currency: str,
    samples_path: Path | None,
    alloc_path: Path | None,
    as_json: bool,
    as_csv: bool,
    html_path: Path | None,
) -> None:
    """GPU energy per job, tenant and billing period, idle shown apart.

    Allocated + idle equals the metered total exactly (integer mJ). Every
    figure says whether it is measured (energy counters) or estimated
    (integrated power).
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv are exclusive")
    rates = _rates(pue, carbon_g_per_kwh, price_per_kwh, currency)
    data_dir = get_config(ctx).data_dir if samples_path is None or alloc_path is None else None
    samples = samples_path or (data_dir / SAMPLES_SUBDIR if data_dir else Path())
    allocations = alloc_path or (data_dir / ALLOCATIONS_FILE if data_dir else Path())
    if samples_path is None and not samples.exists():
        raise InputError(
            f"no GPU samples in {samples}: run `dcops telemetry collect` first "
            "(or pass --samples FILE_OR_DIR)"
        )
    if alloc_path is None and not allocations.exists():
        raise InputError(
            f"no job allocations in {allocations}: run `dcops telemetry map-jobs` to map "
            "jobs to GPUs first (or pass --allocations FILE)"
        )
    account = compute_energy(samples, allocations, since=since, until=until, period=period)
    data = _rounded(account.as_dict(rates))
    if tenant is not None:
        data["tenant"] = tenant
        data["tenants"] = [r for r in data["tenants"] if r["tenant"] == tenant]
        data["jobs"] = [r for r in data["jobs"] if r["tenant"] == tenant]
    if html_path is not None:
        from telemetry.report_html import energy_html, write_html

        write_html(html_path, energy_html(account, rates))
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(_CSV_COLUMNS)
        for row in data["tenants"]:
            writer.writerow([row[c] for c in _CSV_COLUMNS])
        return

    def render(console: Console) -> None:
        _render_energy(console, data)

    emit(data, as_json, render)


def _render_energy(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    rec = data["reconciliation"]
    console.print(
        f"metered {data['metered']['energy_kwh']:,.3f} kWh ({data['metered']['provenance']}) = "
        f"allocated {data['allocated']['energy_kwh']:,.3f} + idle {data['idle']['energy_kwh']:,.3f}"
        f" kWh; exact: {rec['exact']}; facility {data['metered']['facility_kwh']:,.3f} kWh "
        f"(PUE {data['rates']['pue']}), {data['metered']['co2_kg']:,.3f} kg CO2"
    )
    if data["estimated_gpus"]:
        console.print(f"estimated (no usable energy counter): {', '.join(data['estimated_gpus'])}")
    table = Table(title="per tenant and period")
    for col in ("tenant", "period", "jobs", "GPU-h", "kWh", "provenance", "kg CO2", "cost"):
        table.add_column(
            col, justify="left" if col in ("tenant", "period", "provenance") else "right"
        )
    for r in data["tenants"]:
        table.add_row(
            str(r["tenant"]),
            str(r["period"]),
            f"{r['jobs']:,}",
            f"{r['gpu_hours']:,.2f}",
            f"{r['energy_kwh']:,.3f}",
            r["provenance"],
            f"{r['co2_kg']:,.3f}",
            "-" if r["cost"] is None else f"{r['cost']:,.2f}",
        )
    console.print(table)


def html_option(func: F) -> F:
    """``--html FILE`` for ``report stability``."""
    return click.option(
        "--html",
        "html_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also write an HTML report with plots (outcomes, MTTF vs size, energy) to FILE.",
    )(func)


def write_stability_html(
    ctx: click.Context,
    jobs: pd.DataFrame,
    result: StabilityReport,
    html_path: Path,
    *,
    samples: Path | None = None,
    allocations: Path | None = None,
) -> None:
    """Write the stability HTML report; energy is included when samples are found."""
    from telemetry.report_html import stability_html, write_html
    from telemetry.stability import badput, ettr, filter_jobs, lemon_nodes, node_interruptions

    chosen = filter_jobs(jobs, since=result.since, tenant=result.tenant)
    account = None
    data_dir = get_config(ctx).data_dir
    s_path = samples or data_dir / SAMPLES_SUBDIR
    a_path = allocations or data_dir / ALLOCATIONS_FILE
    if s_path.exists() and a_path.exists():
        account = compute_energy(s_path, a_path, since=result.since, until=None, period="day")
    text = stability_html(
        result,
        ettr=ettr(chosen),
        lemons=lemon_nodes(node_interruptions(chosen)),
        badput=badput(chosen, None if account is None else account.jobs),
        energy=account,
    )
    write_html(html_path, text)

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
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from dcops.cli.common import emit, get_config, json_option
from dcops.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from telemetry.energy import FacilityRates
    from telemetry.stability import StabilityReport

F = TypeVar("F", bound=Callable[..., Any])

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
    from telemetry.collect.store import allocations_dir, samples_dir
    from telemetry.energy.files import compute_energy

    samples = samples_path or (samples_dir(data_dir) if data_dir else Path())
    allocations = alloc_path or (allocations_dir(data_dir) if data_dir else Path())
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
    from telemetry.collect.store import allocations_dir, samples_dir
    from telemetry.energy.files import compute_energy

    s_path = samples or samples_dir(data_dir)
    a_path = allocations or allocations_dir(data_dir)
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

"""``dcops telemetry report energy``, ``import sacct`` and the HTML reports, via CliRunner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import click
import pandas as pd
from click.testing import CliRunner, Result

from dcops.cli.telemetry import import_
from dcops.cli.telemetry_report import energy, html_option, write_stability_html
from dcops.config import Config
from tests.conftest import data_file
from tests.telemetry.energy_sim import simulated_day


@click.group()
@click.pass_context
def root(ctx: click.Context) -> None:
    ctx.ensure_object(dict)


@root.group()
def telemetry() -> None:
    """The telemetry group as wired in dcops.cli.telemetry."""


@telemetry.group()
def report() -> None:
    """Reports."""


@report.command()
@html_option
@click.pass_context
def stability(ctx: click.Context, html_path: Path | None) -> None:
    from dcops.cli.common import get_config
    from telemetry.stability import stability_report
    from telemetry.store import JobStore

    jobs = JobStore.for_data_dir(get_config(ctx).data_dir).read()
    result = stability_report(jobs)
    if html_path is not None:
        write_stability_html(ctx, jobs, result, html_path)


telemetry.add_command(import_)
report.add_command(energy)


def invoke(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(root, ["telemetry", *args], obj={"config": Config(data_dir=data_dir)})


def _inputs(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame, pd.DataFrame]:
    samples, alloc, _ = simulated_day(step_s=900.0, hours=6)
    folder = tmp_path / "samples"
    hour = ((samples["ts_s"] - samples["ts_s"].min()) // 3600).astype(int)
    for h_, part in samples.groupby(hour):
        (folder / f"hour={h_:02d}").mkdir(parents=True)
        part.to_parquet(folder / f"hour={h_:02d}" / "part.parquet", index=False)
    alloc_path = tmp_path / "alloc.csv"
    alloc.to_csv(alloc_path, index=False)
    return folder, alloc_path, samples, alloc


def test_energy_report_json_csv_html(tmp_path: Path) -> None:
    folder, alloc_path, samples, alloc = _inputs(tmp_path)
    args = ["report", "energy", "--samples", str(folder), "--allocations", str(alloc_path)]
    done = invoke(tmp_path, *args, "--json", "--pue", "1.3", "--price-per-kwh", "0.2")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    rec = data["reconciliation"]
    assert rec["exact"] and rec["allocated_mj"] + rec["idle_mj"] == rec["metered_mj"]
    assert data["rates"] == {
        "pue": 1.3,
        "carbon_g_per_kwh": 56.0,
        "price_per_kwh": 0.2,
        "currency": "EUR",
    }
    m = data["metered"]
    assert m["facility_kwh"] == round(m["it_kwh"] * 1.3, 6)
    assert sum(r["energy_mj"] for r in data["jobs"]) == rec["allocated_mj"]
    assert len(data["estimated_gpus"]) == 4 and data["metered"]["provenance"] == "mixed"

    from telemetry.energy import account_energy

    direct = account_energy(samples, alloc)
    assert rec["metered_mj"] == direct.metered.total_mj

    out = invoke(tmp_path, *args, "--csv", "--tenant", "acme", "--html", str(tmp_path / "e.html"))
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["tenant"] for r in rows] == ["acme"]
    assert (tmp_path / "e.html").read_text().count("data:image/png;base64") == 1

    human = invoke(tmp_path, *args, "--period", "all")
    assert human.exit_code == 0 and "exact: True" in human.stdout


def test_energy_report_errors(tmp_path: Path) -> None:
    folder, alloc_path, _, _ = _inputs(tmp_path)
    both = invoke(
        tmp_path,
        "report",
        "energy",
        "--samples",
        str(folder),
        "--allocations",
        str(alloc_path),
        "--json",
        "--csv",
    )
    assert both.exit_code == 2
    bad = invoke(
        tmp_path,
        "report",
        "energy",
        "--samples",
        str(folder),
        "--allocations",
        str(alloc_path),
        "--pue",
        "0.5",
    )
    assert bad.exit_code == 2 and "PUE" in bad.output
    missing = invoke(
        tmp_path,
        "report",
        "energy",
        "--samples",
        str(tmp_path / "none"),
        "--allocations",
        str(alloc_path),
    )
    assert missing.exit_code != 0 and isinstance(missing.exception, Exception)


def test_import_sacct_then_stability_html(tmp_path: Path) -> None:
    fixture = data_file("slurm/slurmrestd/25.11/0.0.44/slurmdb-job-failed.json")
    done = invoke(tmp_path, "import", "sacct", str(fixture), "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["by_state"]["failed"] == 1
    folder, alloc_path, _, _ = _inputs(tmp_path / "in")
    (tmp_path / "telemetry" / "samples").parent.mkdir(parents=True, exist_ok=True)
    folder.rename(tmp_path / "telemetry" / "samples")
    # the jobmap's layout: date partitions, timestamps, snapshot rows repeated
    a = pd.read_csv(alloc_path)
    jm = pd.DataFrame(
        {
            "time": pd.to_datetime(a["start_s"], unit="s", utc=True),
            "source": "slurm",
            "node": a["node"],
            "gpu": a["gpu"],
            "gpus": 1,
            "job_id": a["job_id"],
            "tenant": a["tenant"],
            "start": pd.to_datetime(a["start_s"], unit="s", utc=True),
            "end": pd.to_datetime(a["end_s"], unit="s", utc=True),
        }
    )
    part = tmp_path / "telemetry" / "allocations" / "date=2025-01-01"
    part.mkdir(parents=True)
    running = jm.copy()
    running["end"] = pd.NaT
    pd.concat([jm, running]).to_parquet(part / "part-1.parquet")
    html = tmp_path / "s.html"
    out = invoke(tmp_path, "report", "stability", "--html", str(html))
    assert out.exit_code == 0, out.output
    text = html.read_text()
    assert text.count("data:image/png;base64") == 3  # outcomes, MTTF vs size, energy per tenant
    assert "Badput" in text and "ETTR" in text and "acme" in text


def test_energy_report_names_the_command_that_fills_what_is_missing(tmp_path: Path) -> None:
    from telemetry.collect.store import samples_dir

    empty = invoke(tmp_path, "report", "energy")
    assert empty.exit_code != 0
    assert "dcops telemetry collect" in str(empty.exception)
    samples_dir(tmp_path).mkdir(parents=True)
    no_alloc = invoke(tmp_path, "report", "energy")
    assert no_alloc.exit_code != 0
    assert "dcops telemetry map-jobs" in str(no_alloc.exception)

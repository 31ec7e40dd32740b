"""``dcops telemetry`` through click's CliRunner, on a root group built here."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from dcops.cli.telemetry import telemetry
from dcops.config import Config
from dcops.errors import InputError, UnknownNameError
from telemetry.jobs import STATES
from tests.conftest import REPO, data_file
from tests.telemetry.test_alibaba_import import GOOD_ROWS, HEADER, POD_LIST, write


@click.group()
@click.pass_context
def root(ctx: click.Context) -> None:
    ctx.ensure_object(dict)


root.add_command(telemetry)


def invoke(data_dir: Path | None, *args: str) -> Result:
    obj = {"config": Config(data_dir=data_dir)} if data_dir is not None else {}
    return CliRunner().invoke(root, ["telemetry", *args], obj=obj)


def test_import_then_report_the_alibaba_trace(tmp_path: Path) -> None:
    path = data_file(POD_LIST)
    data = tmp_path / "data"
    done = invoke(data, "import", "alibaba-gpu-2023", str(path))
    assert done.exit_code == 0, done.output
    assert "imported 8,152 job records" in done.stdout
    assert "1,870" in done.stdout  # failed pods in the by-state table
    assert (data / "telemetry" / "jobs" / "alibaba-gpu-2023.parquet").is_file()

    again = invoke(data, "import", "alibaba-gpu-2023", str(path), "--json")
    assert again.exit_code == 0, again.output
    result = json.loads(again.stdout)
    assert (result["records"], result["replaced"]) == (8152, 8152)
    assert result["by_state"] == {
        **dict.fromkeys(STATES, 0),
        "completed": 192,
        "failed": 1870,
        "running": 5193,
        "pending": 897,
    }

    rep = invoke(data, "report", "stability", "--json")
    assert rep.exit_code == 0, rep.output
    report = json.loads(rep.stdout)
    assert report["jobs"] == 8152  # not 16,304: the re-import replaced
    assert report["gpus_requested"] == 6086.8
    assert report["by_state"]["failed"]["jobs"] == 1870
    assert report["by_state"]["failed"]["gpus_requested"] == 1877.63
    assert report["by_state"]["running"]["share"] == round(5193 / 8152, 6)
    assert report["sources"] == ["alibaba-gpu-2023"]

    table = invoke(data, "report", "stability")
    assert table.exit_code == 0
    assert "8,152 jobs" in table.stdout and "MTTF" in table.stdout


def test_report_csv_and_filters(tmp_path: Path) -> None:
    data = tmp_path / "data"
    pods = write(tmp_path, [HEADER, *GOOD_ROWS])
    assert (
        invoke(
            data,
            "import",
            "alibaba-gpu-2023",
            str(pods),
            "--tenant",
            "acme",
            "--trace-start",
            "2023-07-01",
        ).exit_code
        == 0
    )
    out = invoke(data, "report", "stability", "--csv")
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["state"] for r in rows] == list(STATES)
    assert {r["state"]: int(r["jobs"]) for r in rows if int(r["jobs"])} == {
        "completed": 1,
        "failed": 1,
        "running": 1,
        "pending": 1,
    }
    by_tenant = json.loads(invoke(data, "report", "stability", "--tenant", "acme", "--json").stdout)
    assert by_tenant["jobs"] == 4
    other = json.loads(invoke(data, "report", "stability", "--tenant", "globex", "--json").stdout)
    assert other["jobs"] == 0
    # pod-d was created 20 s after the trace start, pod-c 7 s after.
    since = json.loads(
        invoke(data, "report", "stability", "--since", "2023-07-01T00:00:10Z", "--json").stdout
    )
    assert since["jobs"] == 1
    assert since["since"] == "2023-07-01T00:00:10+00:00"


def test_empty_store_reports_zeros_and_says_so(tmp_path: Path) -> None:
    rep = invoke(tmp_path / "empty", "report", "stability", "--json")
    assert rep.exit_code == 0
    report = json.loads(rep.stdout)
    assert report["jobs"] == 0
    assert all(v["jobs"] == 0 and v["share"] == 0 for v in report["by_state"].values())
    assert "no job records" in rep.stderr
    assert "dcops telemetry import" in rep.stderr


def test_config_from_xdg_data_home(tmp_path: Path) -> None:
    # conftest points XDG_DATA_HOME at a per-test dir; no Config passed here.
    pods = write(tmp_path, [HEADER, *GOOD_ROWS])
    assert invoke(None, "import", "alibaba-gpu-2023", str(pods)).exit_code == 0
    store = Path(os.environ["XDG_DATA_HOME"]) / "dcops" / "telemetry" / "jobs"
    assert [p.name for p in store.iterdir()] == ["alibaba-gpu-2023.parquet"]


def test_errors_reach_the_one_handler(tmp_path: Path) -> None:
    pods = write(tmp_path, [HEADER, *GOOD_ROWS])
    unknown = invoke(tmp_path, "import", "philly", str(pods))
    assert isinstance(unknown.exception, UnknownNameError)
    assert "alibaba-gpu-2023" in str(unknown.exception)
    bad = write(tmp_path, [HEADER, "pod-x,1,1,x,1000,,LS,Running,0,1,0"], "bad.csv")
    malformed = invoke(tmp_path, "import", "alibaba-gpu-2023", str(bad))
    assert isinstance(malformed.exception, InputError)
    assert f"{bad}:2: num_gpu" in str(malformed.exception)
    assert not (tmp_path / "telemetry" / "jobs").exists()
    assert invoke(tmp_path, "report", "stability", "--json", "--csv").exit_code == 2
    assert invoke(tmp_path, "report", "stability", "--since", "yesterday").exit_code == 2
    assert invoke(tmp_path, "import", "alibaba-gpu-2023", str(tmp_path / "nope.csv")).exit_code == 2


def test_importing_the_cli_module_does_not_import_pandas() -> None:
    code = (
        "import sys, dcops.cli.telemetry; "
        "bad = [m for m in ('pandas', 'pyarrow', 'telemetry.jobs') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False).returncode == 0


@pytest.mark.parametrize("args", [["--help"], ["report", "stability", "--help"]])
def test_help(args: list[str]) -> None:
    assert invoke(None, *args).exit_code == 0

"""The alibaba-gpu-2023 importer: the real trace, and malformed files built in tmp."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from dcops.errors import InputError, LocatedInputError, UnknownNameError
from telemetry.importers import ImportOptions, JobImporter, get_importer, importer_names
from telemetry.jobs import COLUMNS, conform
from tests.conftest import data_file

POD_LIST = "traces/alibaba_gpu_v2023/openb_pod_list_default.csv"
HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    "creation_time,deletion_time,scheduled_time"
)
GOOD_ROWS = [
    "pod-a,12000,16384,1,460,,LS,Running,0,100,10",
    "pod-b,88000,327680,8,1000,V100M16|V100M32,Burstable,Succeeded,5,3605,5",
    "pod-c,4000,15258,0,0,,BE,Pending,7,50,",
    "pod-d,4000,15258,2,1000,,BE,Failed,20,80,30",
]


def write(tmp_path: Path, lines: list[str], name: str = "pods.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read(path: Path, options: ImportOptions | None = None) -> pd.DataFrame:
    return get_importer("alibaba-gpu-2023").read(path, options or ImportOptions())


def test_registry_lists_valid_names_for_unknown_source() -> None:
    assert "alibaba-gpu-2023" in importer_names()
    assert isinstance(get_importer("alibaba-gpu-2023"), JobImporter)
    with pytest.raises(UnknownNameError) as err:
        get_importer("philly")
    assert "alibaba-gpu-2023" in str(err.value)
    assert isinstance(err.value, InputError)


def test_small_file_maps_every_field(tmp_path: Path) -> None:
    t0 = datetime(2023, 7, 1, tzinfo=UTC)
    jobs = read(write(tmp_path, [HEADER, *GOOD_ROWS]), ImportOptions(tenant="acme", trace_start=t0))
    assert list(jobs.columns) == list(COLUMNS)
    conform(jobs)  # the frame fits the schema
    by_id = jobs.set_index("job_id")
    assert by_id.loc["pod-a", "gpus"] == pytest.approx(0.46)  # a 460-milli GPU share
    assert by_id.loc["pod-b", "gpus"] == 8.0
    assert by_id.loc["pod-c", "gpus"] == 0.0
    assert by_id.loc["pod-d", "gpus"] == 2.0
    assert dict(by_id["state"]) == {
        "pod-a": "running",
        "pod-b": "completed",
        "pod-c": "pending",
        "pod-d": "failed",
    }
    assert dict(by_id["raw_state"]) == {
        "pod-a": "Running",
        "pod-b": "Succeeded",
        "pod-c": "Pending",
        "pod-d": "Failed",
    }
    assert by_id.loc["pod-a", "submit_time"] == t0
    assert by_id.loc["pod-a", "start_time"] == t0 + timedelta(seconds=10)
    assert by_id.loc["pod-a", "end_time"] == t0 + timedelta(seconds=100)
    assert by_id["start_time"].isna()["pod-c"]  # never scheduled
    assert by_id.loc["pod-a", "num_nodes"] == 1
    assert by_id["num_nodes"].isna()["pod-c"]
    assert set(by_id["backend"]) == {"trace:alibaba-gpu-2023"}
    assert set(by_id["source"]) == {"alibaba-gpu-2023"}
    assert set(by_id["tenant"]) == {"acme"}
    raw_extra = by_id.loc["pod-b", "extra"]
    assert isinstance(raw_extra, str)
    extra = json.loads(raw_extra)
    assert extra == {
        "cpu_milli": 88000,
        "memory_mib": 327680,
        "num_gpu": 8,
        "gpu_milli": 1000,
        "gpu_spec": "V100M16|V100M32",
        "qos": "Burstable",
    }


def test_real_trace_matches_csv_module_counts() -> None:
    path = data_file(POD_LIST)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    jobs = read(path)
    assert len(jobs) == len(rows) == 8152
    assert jobs["job_id"].is_unique
    phases = Counter(r["pod_phase"] for r in rows)
    assert dict(Counter(jobs["raw_state"])) == dict(phases)
    assert phases == {"Running": 5193, "Failed": 1870, "Pending": 897, "Succeeded": 192}


@pytest.mark.parametrize(
    ("lines", "line", "needle"),
    [
        ([], 1, "empty file"),
        (["name,num_gpu,pod_phase", "p,1,Running"], 1, "missing column(s) gpu_milli"),
        ([HEADER, GOOD_ROWS[0], "pod-x,1,1,1,1000,,LS,Exploded,0,1,0"], 3, "pod_phase"),
        ([HEADER, "pod-x,1,1,one,1000,,LS,Running,0,1,0"], 2, "num_gpu: expected an integer"),
        ([HEADER, "pod-x,1,1,-1,1000,,LS,Running,0,1,0"], 2, "num_gpu: -1 is out of range"),
        ([HEADER, "pod-x,1,1,1,1500,,LS,Running,0,1,0"], 2, "gpu_milli: 1500 is out of range"),
        ([HEADER, "pod-x,1,1,1,1000,,LS,Running,,1,0"], 2, "creation_time: is empty"),
        ([HEADER, "pod-x,1,1,1,1000,,LS,Running,abc,1,0"], 2, "creation_time: expected seconds"),
        ([HEADER, "pod-x,1,1,1,1000,,LS,Running,-5,1,0"], 2, "creation_time: expected seconds"),
        ([HEADER, "pod-x,1,1,1,1000,,LS,Running,nan,1,0"], 2, "creation_time: expected seconds"),
        ([HEADER, "pod-x,1,1,1,1000,,LS,Running,10,20,5"], 2, "scheduled_time: 5 is before"),
        ([HEADER, "pod-x,1,1,1,1000,,LS,Running,10,12,15"], 2, "deletion_time: 12 is before"),
        ([HEADER, "pod-x,1,1,1,1000,,LS,Running,0,1,0,extra"], 2, "12 fields"),
        ([HEADER, "pod-x,1,1,1,1000,,LS"], 2, "too few fields"),
        ([HEADER, ",1,1,1,1000,,LS,Running,0,1,0"], 2, "name: is empty"),
        ([HEADER, GOOD_ROWS[0], GOOD_ROWS[1], GOOD_ROWS[0]], 4, "duplicate pod 'pod-a'"),
        ([HEADER, "pod-x,lots,1,1,1000,,LS,Running,0,1,0"], 2, "cpu_milli: expected an integer"),
    ],
)
def test_malformed_csv_names_file_line_and_column(
    tmp_path: Path, lines: list[str], line: int, needle: str
) -> None:
    path = write(tmp_path, lines)
    with pytest.raises(LocatedInputError) as err:
        read(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}")
    assert needle in message
    assert err.value.line == line


def test_unreadable_inputs_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read(tmp_path / "absent.csv")
    binary = tmp_path / "pods.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not UTF-8"):
        read(binary)
    with pytest.raises(InputError, match="cannot read"):
        read(tmp_path)  # a directory

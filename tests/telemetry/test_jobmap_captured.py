"""``allocations_from_text``: captured scheduler output read by source, errors naming the file."""

from __future__ import annotations

import json

import pytest

from dcops.errors import InputError
from telemetry.jobmap.captured import CAPTURED_SOURCES, allocations_from_text

SCONTROL = (
    "JobId=41 JobName=train UserId=alice(1001) Account=acme JobState=RUNNING "
    "StartTime=1700000000 EndTime=1700003600 NodeList=n[1-2] TRES=cpu=8,gres/gpu=8\n"
)


def test_scontrol_text_gives_one_allocation_per_node() -> None:
    got = allocations_from_text("scontrol", SCONTROL, {"acme": "tenant-a"}, name="jobs.txt")
    assert sorted({a.node for a in got}) == ["n1", "n2"]
    assert {a.job_id for a in got} == {"41"}
    assert {a.tenant for a in got} == {"tenant-a"}


def test_a_scheduler_parse_error_is_input_error_naming_the_file() -> None:
    bad = SCONTROL.replace("StartTime=1700000000", "StartTime=yesterday-ish")
    with pytest.raises(InputError, match=r"^jobs\.txt: .*unreadable time"):
        allocations_from_text("scontrol", bad, None, name="jobs.txt")


def test_pods_must_be_an_object() -> None:
    with pytest.raises(InputError, match=r"^pods\.json: not a pod list"):
        allocations_from_text("pods", json.dumps([1, 2]), None, name="pods.json")


def test_json_that_is_not_json_is_input_error() -> None:
    with pytest.raises(InputError, match=r"squeue\.json"):
        allocations_from_text("slurm-json", "{not json", None, name="squeue.json")


def test_unknown_source_is_refused() -> None:
    assert "slurm" not in CAPTURED_SOURCES  # polling is not a file source
    with pytest.raises(InputError, match="unknown source 'slurm'"):
        allocations_from_text("slurm", "{}", None, name="x")

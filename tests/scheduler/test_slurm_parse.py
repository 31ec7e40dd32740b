"""The Slurm JSON normalizer on every captured fixture that holds jobs or nodes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from dcops.errors import SchedulerError
from dcops.slurm.parse import (
    SlurmJob,
    fields_of_format,
    gpus_in_gres,
    gpus_in_tres,
    number,
    parse_jobs,
    parse_nodes,
    parse_text_jobs,
    response_errors,
)
from tests.conftest import FIXTURES, data_file

SLURM = FIXTURES / "slurm"
STATES = {
    "RUNNING",
    "PENDING",
    "COMPLETED",
    "FAILED",
    "TIMEOUT",
    "CANCELLED",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "SUSPENDED",
    "REQUEUED",
}
NODE_STATES = {"IDLE", "MIXED", "ALLOCATED", "DOWN", "PLANNED", "FUTURE", "UNKNOWN", "ERROR"}


def _load(rel: str) -> Any:
    return json.loads(data_file(f"slurm/{rel}").read_text())


def _files(key: str) -> list[str]:
    if not SLURM.exists():
        return ["(fixtures absent)"]
    out = []
    for path in sorted(SLURM.rglob("*.json")):
        if "openapi" in path.name or path.parent.name == "openapi":
            continue
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get(key), list) and data[key]:
            out.append(str(path.relative_to(SLURM)))
    return out


JOB_FILES = _files("jobs")
NODE_FILES = _files("nodes") + _files("sinfo")


def test_fixture_census() -> None:
    assert len(JOB_FILES) >= 100 and len(NODE_FILES) >= 50


@pytest.mark.parametrize("rel", JOB_FILES)
def test_every_job_fixture(rel: str) -> None:
    doc = _load(rel)
    jobs = parse_jobs(doc)
    assert len(jobs) == len(doc["jobs"])
    for job, raw in zip(jobs, doc["jobs"], strict=True):
        assert job.job_id == raw["job_id"] > 0
        assert job.name == raw["name"] and job.account == raw["account"]
        assert job.partition == raw["partition"]
        assert job.user == (raw.get("user_name") or raw.get("user"))
        assert job.nodes == (raw.get("nodes") or "")
        assert job.state in STATES, job.state
        assert job.gpus >= 0
        if job.state == "PENDING":
            assert job.start_time is None or job.start_time >= (job.submit_time or 0)
        else:
            assert job.submit_time and job.submit_time > 1_600_000_000
        if job.state in {"COMPLETED", "FAILED", "TIMEOUT"} and "slurmdb" in rel:
            assert job.end_time and job.end_time >= (job.start_time or 0)


@pytest.mark.parametrize("rel", NODE_FILES)
def test_every_node_fixture(rel: str) -> None:
    doc = _load(rel)
    nodes = parse_nodes(doc)
    assert nodes
    for node in nodes:
        assert node.name and node.state in NODE_STATES, (node.name, node.state)
        assert node.gpus >= node.gpus_used >= 0
        assert all(f.isupper() for f in node.state_flags)
    if "nodes" in doc:
        assert [n.name for n in nodes] == [raw["name"] for raw in doc["nodes"]]


def _one(rel: str) -> SlurmJob:
    (job,) = parse_jobs(_load(rel))
    return job


def test_squeue_21_08_plain_values() -> None:
    jobs = parse_jobs(_load("cli_json/rivosinc/squeue_--json_slurm-21.08.5_v0.0.37.json"))
    job = jobs[0]
    assert (job.job_id, job.account, job.user, job.partition) == (
        26515966,
        "account1",
        "bkd",
        "hw-l",
    )
    assert (job.state, job.nodes, job.node_count) == ("RUNNING", "cs75", 1)
    assert (job.submit_time, job.start_time, job.end_time) == (1684114900, 1684114921, 1686633833)
    assert (job.exit_code, job.array_job_id, job.het_job_id, job.gpus) == (0, None, None, 0)


def test_slurmrestd_23_11_gpu_jobs() -> None:
    run = _one("slurmrestd/23.11/0.0.40/slurm-job-gpus-running.json")
    assert (run.job_id, run.user, run.account, run.gpus) == (790, "bparks", "optic", 6)
    assert (run.submit_time, run.end_time) == (1747045667, 1747045727)
    assert (run.exit_code, run.exit_signal) == (0, None)
    multi = _one("slurmrestd/23.11/0.0.40/slurm-job-gpus-multi-nodes.json")
    assert (multi.nodes, multi.node_count, multi.gpus) == ("ia[1-2]", 2, 12)
    assert _one("slurmrestd/23.11/0.0.40/slurm-job-gpus-per-node.json").gpus == 2
    assert _one("slurmrestd/23.11/0.0.40/slurm-job-gpus-multi-types.json").gpus == 2
    pending = _one("slurmrestd/23.11/0.0.40/slurm-job-gpus-pending.json")
    assert (pending.state, pending.gpus, pending.nodes) == ("PENDING", 6, "")


def test_slurmdb_shape() -> None:
    job = _one("slurmrestd/23.11/0.0.40/slurmdb-job-gpus-running.json")
    assert (job.job_id, job.user, job.account, job.state, job.reason) == (
        498,
        "cpotter",
        "acoustic",
        "RUNNING",
        "None",
    )
    assert (job.submit_time, job.start_time, job.end_time) == (1746619942, 1746619945, None)
    assert job.node_count == 1


def test_24_05_exit_codes_and_signals() -> None:
    jobs = {j.job_id: j for j in parse_jobs(_load("slurmrestd/24.05/0.0.41/slurm-jobs.json"))}
    assert (jobs[649717].state, jobs[649717].exit_signal) == ("TIMEOUT", 15)
    assert (jobs[649719].state, jobs[649719].exit_code) == ("FAILED", 1)
    assert jobs[649730].state == "PENDING"


def test_node_shapes() -> None:
    (n37, *_) = parse_nodes(_load("cli_json/rivosinc/sinfo_--json_slurm-21.08.5_v0.0.37.json"))
    assert (n37.name, n37.state, n37.partitions) == ("cs2.example.company.com", "MIXED", ("hw",))
    (gpu,) = parse_nodes(_load("slurmrestd/23.11/0.0.40/slurm-node-with-gpus-mixed.json"))
    assert (gpu.name, gpu.gres, gpu.gpus, gpu.gpus_used) == ("ia1", "gpu:h100:2,gpu:h200:4", 6, 1)
    (drain,) = parse_nodes(_load("slurmrestd/23.11/0.0.40/slurm-node-drain.json"))
    assert (drain.state, drain.state_flags, drain.reason) == (
        "IDLE",
        ("DRAIN",),
        "ECC memory error",
    )
    (draining,) = parse_nodes(_load("slurmrestd/25.11/0.0.44/slurm-node-draining.json"))
    assert (draining.state, draining.state_flags, draining.partitions) == (
        "MIXED",
        ("DRAIN",),
        ("normal",),
    )
    sinfo = parse_nodes(_load("cli_json/rivosinc/sinfo_--json_slurm-23.02.4_v0.0.39.json"))
    cs62 = next(n for n in sinfo if n.name == "cs62")
    assert (cs62.state, cs62.state_flags, cs62.reason) == ("ALLOCATED", ("DRAIN",), "IT-4461")


def _firecrest(name: str) -> tuple[str, list[str]]:
    data = json.loads(data_file(f"slurm/firecrest_mocked_cli/{name}").read_text())
    match = re.search(r"--(?:Format|format)='([^']+)'", data["command"])
    assert match
    return data["stdout"], fields_of_format(match.group(1))


def test_firecrest_squeue_text() -> None:
    stdout, fields = _firecrest("ssh_squeue_command.json")
    (job,) = parse_text_jobs(stdout, fields)
    assert (job.job_id, job.name, job.account, job.user) == (
        1,
        "SbatchTestXYZ",
        "users",
        "fireuser",
    )
    assert (job.state, job.nodes, job.partition, job.node_count) == (
        "RUNNING",
        "localhost",
        "part01",
        1,
    )
    assert (job.submit_time, job.end_time) == (1787124673, 1787556673)


def test_firecrest_sacct_text() -> None:
    stdout, fields = _firecrest("ssh_sacct_command.json")
    (job,) = parse_text_jobs(stdout, fields)
    assert (job.job_id, job.name, job.account, job.user) == (1, "SbatchTest", "staff", "fireuser")
    assert (job.state, job.exit_code, job.exit_signal, job.start_time) == (
        "COMPLETED",
        0,
        None,
        1750232859,
    )


def test_errors_and_bad_documents() -> None:
    doc = _load("slurmrestd/25.11/0.0.44/slurm-jwt-expired-token.json")
    assert parse_jobs(doc) == []
    assert response_errors(doc) == ["Unable to query jobs: Protocol authentication error"]
    bad: Sequence[object] | Mapping[str, object]
    for bad in ([], {"jobs": "x"}, {"jobs": [1]}, {"nodes": None}):
        with pytest.raises(SchedulerError):
            parse_jobs(bad) if "nodes" not in bad else parse_nodes(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        ({"set": True, "infinite": False, "number": 7}, 7),
        ({"set": False, "infinite": False, "number": 7}, None),
        ({"set": True, "infinite": True, "number": 0}, None),
        ("12", 12),
        ("", None),
        (True, None),
    ],
)
def test_number_forms(value: object, expected: int | None) -> None:
    assert number(value) == expected


def test_gres_and_tres_counting() -> None:
    assert gpus_in_gres("gpu:h100:2(IDX:0,2),gpu:h200:4(IDX:2-5)") == 6
    assert gpus_in_gres("gpu:h100:1(IDX:0),gpu:h200:0(IDX:N/A)") == 1
    assert gpus_in_tres("cpu=4,gres/gpu=8,gres/gpu:h100=8") == 8
    assert gpus_in_tres("gres/gpu:h100:1,gres/gpu:h200:1") == 2

"""Job -> GPU mapping from Slurm: every captured release's JSON, scontrol text, the live rig."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC
from pathlib import Path

import pytest

from dcops.errors import SchedulerError
from dcops.hostlist import expand
from telemetry.jobmap import (
    Allocation,
    allocations_from_json,
    allocations_from_scontrol,
    close_missing,
    consolidate,
    gres_indexes,
    holder,
    poll,
)
from tests.conftest import FIXTURES, data_file
from tests.rig.slurm import SlurmCluster, wait_until

RESTD = FIXTURES / "slurm" / "slurmrestd"
GPU_JOB_FILES = sorted(RESTD.glob("*/*/slurm-job-gpus-*.json")) + sorted(
    RESTD.glob("*/*/slurm-jobs.json")
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu:h100:2(IDX:0-1),gpu:h200:4(IDX:2-5)", [0, 1, 2, 3, 4, 5]),
        ("gpu:h100:1(IDX:0),gpu:h200:0(IDX:)", [0]),
        ("gpu:3(IDX:0-2)", [0, 1, 2]),
        ("gpu:a100:3(IDX:0,2-3)", [0, 2, 3]),
        ("gpu:4", None),
        ("gpu:2(IDX:N/A)", None),
        ("", None),
    ],
)
def test_gres_indexes(text: str, expected: list[int] | None) -> None:
    assert gres_indexes(text) == expected


def _expected_from_raw(job: Mapping[str, object]) -> set[tuple[str, int]]:
    """What gres_detail says, recomputed independently (node order from the nodes hostlist)."""
    details = job.get("gres_detail")
    assert isinstance(details, list)
    nodes = expand(str(job["nodes"]))
    out = set()
    for node, detail in zip(nodes, details, strict=True):
        for body in detail.split("IDX:")[1:]:
            for item in body.split(")")[0].split(","):
                if item:
                    lo, _, hi = item.partition("-")
                    out |= {(node, i) for i in range(int(lo), int(hi or lo) + 1)}
    return out


@pytest.mark.parametrize("path", GPU_JOB_FILES, ids=lambda p: str(p.relative_to(RESTD)))
def test_every_slurmrestd_release(path: Path) -> None:
    doc = json.loads(data_file(str(path.relative_to(FIXTURES))).read_text())
    allocations = allocations_from_json(doc, {"optic": "tenant-optic"})
    for job in doc["jobs"]:
        mine = [a for a in allocations if a.job_id == str(job["job_id"])]
        state = job["job_state"][0]
        if state == "PENDING":
            assert mine == []
            continue
        if state == "RUNNING" and job["gres_detail"]:
            assert {(a.node, a.gpu) for a in mine} == _expected_from_raw(job)
            assert all(a.end_s is None for a in mine)  # end_time is only the time limit
        else:  # finished: no index left in gres_detail, node-level with the counts
            assert all(a.gpu is None and a.end_s is not None for a in mine)
        for a in mine:
            assert a.account == job["account"]
            assert a.tenant == ("tenant-optic" if job["account"] == "optic" else None)
            assert a.start_s == job["start_time"]["number"]


def test_multi_node_multi_type_job() -> None:
    path = data_file("slurm/slurmrestd/23.11/0.0.40/slurm-job-gpus-multi-nodes.json")
    allocations = allocations_from_json(json.loads(path.read_text()))
    assert sorted((a.node, a.gpu) for a in allocations) == [
        (n, i) for n in ("ia1", "ia2") for i in range(6)
    ]
    assert {a.job_id for a in allocations} == {"793"}


def test_v0041_node_names_come_from_job_resources() -> None:
    path = data_file("slurm/slurmrestd/24.05/0.0.41/slurm-job-gpus-per-node.json")
    doc = json.loads(path.read_text())
    doc["jobs"][0]["nodes"] = "ignored-[1-2]"  # allocation order wins over the hostlist
    allocations = allocations_from_json(doc)
    assert sorted((a.node, a.gpu) for a in allocations) == [("gpu1", 0), ("gpu2", 0)]


def test_slurm_2108_squeue_json_holds_no_gpu_jobs() -> None:
    path = data_file("slurm/cli_json/rivosinc/squeue_--json_slurm-21.08.5_v0.0.37.json")
    assert allocations_from_json(json.loads(path.read_text())) == []


def test_slurmdb_jobs_without_gpu_tres_give_nothing() -> None:
    # These clusters did not account gres/gpu (no AccountingStorageTRES): nothing to map.
    for path in sorted(RESTD.glob("*/*/slurmdb-job-gpus-*.json")):
        assert allocations_from_json(json.loads(path.read_text())) == [], path


def test_slurmdb_job_with_gpu_tres_is_node_level() -> None:
    path = data_file("slurm/slurmrestd/25.05/0.0.43/slurmdb-job-gpus-multi-nodes.json")
    doc = json.loads(path.read_text())
    job = doc["jobs"][0]
    job["tres"]["allocated"].append({"type": "gres", "name": "gpu", "id": 1001, "count": 8})
    allocations = allocations_from_json(doc, {job["account"]: "t1"})
    assert sorted((a.node, a.gpu, a.gpus) for a in allocations) == [
        ("gpu1", None, 4),
        ("gpu2", None, 4),
    ]
    assert {a.tenant for a in allocations} == {"t1"}


def test_bad_json_is_a_scheduler_error() -> None:
    with pytest.raises(SchedulerError):
        allocations_from_json({"nope": []})


#: What `scontrol show job -d` printed on the test rig (Slurm 22.05.8) for a 2-node job.
SCONTROL_2205 = """\
JobId=11 JobName=jobmap-probe
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   Priority=4294901749 Nice=0 Account=dcops QOS=normal
   JobState=RUNNING Reason=None Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0
   RunTime=00:00:02 TimeLimit=UNLIMITED TimeMin=N/A
   SubmitTime=2026-11-23T10:47:45 EligibleTime=2026-11-23T10:47:45
   StartTime=2026-11-23T10:47:46 EndTime=Unknown Deadline=N/A
   Partition=batch AllocNode:Sid=localhost:7913
   ReqNodeList=(null) ExcNodeList=(null)
   NodeList=sim-r01-t[01-02]
   BatchHost=sim-r01-t01
   NumNodes=2 NumCPUs=2 NumTasks=2 CPUs/Task=1 ReqB:S:C:T=0:0:*:*
   TRES=cpu=2,node=2,billing=2,gres/gpu=6
   JOB_GRES=gpu:6
     Nodes=sim-r01-t[01-02] CPU_IDs=0 Mem=0 GRES=gpu:3(IDX:0-2)
   MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0

JobId=12 JobName=cpu-only
   UserId=alice(1000) GroupId=alice(1000) MCS_label=N/A
   Account=dcops QOS=normal
   JobState=RUNNING Reason=None Dependency=(null)
   StartTime=1795430900 EndTime=1795431900 Deadline=N/A
   NodeList=sim-r01-t03
   TRES=cpu=1,node=1,billing=1
     Nodes=sim-r01-t03 CPU_IDs=0 Mem=0 GRES=

JobId=13 JobName=done
   UserId=alice(1000) GroupId=alice(1000) MCS_label=N/A
   Account=acme QOS=normal
   JobState=COMPLETED Reason=None Dependency=(null)
   StartTime=1795430000 EndTime=1795430600 Deadline=N/A
   NodeList=sim-r01-t[04-05]
   TRES=cpu=2,node=2,billing=2,gres/gpu=2
     Nodes=sim-r01-t04 CPU_IDs=0 Mem=0 GRES=gpu:1(IDX:3)
     Nodes=sim-r01-t05 CPU_IDs=0 Mem=0 GRES=gpu:1(IDX:1)

JobId=14 JobName=waiting
   Account=acme QOS=normal
   JobState=PENDING Reason=Resources Dependency=(null)
   StartTime=Unknown EndTime=Unknown Deadline=N/A
   NodeList=(null)
"""


def test_scontrol_text() -> None:
    allocations = allocations_from_scontrol(SCONTROL_2205, {"acme": "Acme"}, tz=UTC)
    by_job: dict[str, list[Allocation]] = {}
    for a in allocations:
        by_job.setdefault(a.job_id, []).append(a)
    assert set(by_job) == {"11", "13"}  # CPU-only and pending jobs hold no GPU
    assert sorted((a.node, a.gpu) for a in by_job["11"]) == [
        (n, i) for n in ("sim-r01-t01", "sim-r01-t02") for i in range(3)
    ]
    assert {(a.end_s, a.user, a.tenant) for a in by_job["11"]} == {(None, "root", None)}
    assert by_job["11"][0].start_s == pytest.approx(1795430866)  # 2026-11-23T10:47:46Z
    assert sorted((a.node, a.gpu, a.end_s) for a in by_job["13"]) == [
        ("sim-r01-t04", 3, 1795430600.0),
        ("sim-r01-t05", 1, 1795430600.0),
    ]
    assert {a.tenant for a in by_job["13"]} == {"Acme"}


def test_scontrol_unreadable_time() -> None:
    with pytest.raises(SchedulerError, match="unreadable time"):
        allocations_from_scontrol("JobId=1\n   JobState=RUNNING StartTime=yesterday\n")


def test_consolidate_close_and_holder() -> None:
    a = Allocation("n1", 0, "7", start_s=100.0, tenant="t")
    later = Allocation("n1", 0, "7", start_s=100.0, end_s=None)
    assert consolidate([a, later]) == [a]
    ended = close_missing([a], [], observed_s=500.0)
    assert ended == [Allocation("n1", 0, "7", start_s=100.0, end_s=500.0, tenant="t")]
    assert consolidate([a, *ended]) == ended
    assert holder(ended, "n1", 0, 200.0) == ended[0]
    assert holder(ended, "n1", 0, 500.0) is None  # the end is exclusive
    assert holder(ended, "n1", 1, 200.0) is None
    node_level = [Allocation("n2", None, "8", start_s=0.0, gpus=4, source="kubernetes")]
    assert holder(node_level, "n2", 3, 1.0) == node_level[0]
    shared = [*node_level, Allocation("n2", None, "9", start_s=0.0, gpus=2)]
    assert holder(shared, "n2", 3, 1.0) is None  # two jobs, no index: unknown


# -- the real cluster ------------------------------------------------------------------


@pytest.mark.slurm
def test_live_two_node_gpu_job(slurm_cluster: SlurmCluster) -> None:
    cluster = slurm_cluster
    out = cluster.run(
        [
            "sbatch",
            "--parsable",
            "-A",
            "dcops",
            "-J",
            "dcops-jobmap-test",
            "-N2",
            "--gres=gpu:3",
            "--wrap",
            "sleep 300",
        ]
    ).stdout
    job_id = out.strip().split(";")[0]
    try:

        def running() -> bool:
            state = cluster.run(["squeue", "-h", "-j", job_id, "-o", "%T"]).stdout.strip()
            return state == "RUNNING"

        assert wait_until(running, timeout_s=60), "the test job did not start"
        nodes = expand(cluster.run(["squeue", "-h", "-j", job_id, "-o", "%N"]).stdout.strip())
        assert len(nodes) == 2
        expected = {(n, i) for n in nodes for i in range(3)}
        tenants = {"dcops": "tenant-dcops"}

        squeue = json.loads(cluster.run(["squeue", "--json"]).stdout)
        mine = [a for a in allocations_from_json(squeue, tenants) if a.job_id == job_id]
        assert {(a.node, a.gpu) for a in mine} == expected
        assert {(a.tenant, a.end_s) for a in mine} == {("tenant-dcops", None)}

        text = cluster.run(
            ["env", "SLURM_TIME_FORMAT=%s", "scontrol", "show", "job", "-d", job_id]
        ).stdout
        from_text = allocations_from_scontrol(text, tenants)
        assert {(a.node, a.gpu) for a in from_text} == expected
        assert {a.start_s for a in from_text} == {mine[0].start_s}

        def runner(argv: Sequence[str], env: Mapping[str, str]) -> str:
            return cluster.run(["env", *(f"{k}={v}" for k, v in env.items()), *argv]).stdout

        polled = [a for a in poll(runner, tenants) if a.job_id == job_id]
        assert {(a.node, a.gpu) for a in polled} == expected

        # Accounting (AccountingStorageTRES=gres/gpu here) knows counts, not indexes.
        # slurmdbd records the job a moment after it starts: wait for it.
        db: list[Allocation] = []

        def accounted() -> bool:
            sacct = json.loads(cluster.run(["sacct", "--json", "-j", job_id]).stdout)
            db[:] = [a for a in allocations_from_json(sacct, tenants) if a.job_id == job_id]
            return bool(db)

        assert wait_until(accounted, timeout_s=30), "sacct never showed the job's GPUs"
        assert {(a.node, a.gpu, a.gpus) for a in db} == {(n, None, 3) for n in nodes}
    finally:
        cluster.run(["scancel", job_id], check=False)

"""The Slurm 24.11 rig itself, and Slurm's own JSON read live: version, racks and blocks,
GPUs, slurmrestd's data_parser versions, ``squeue/sinfo/sacct --json`` in each of them."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from capacity.topology import parse_show_topology
from dcops.hostlist import expand
from dcops.slurm.parse import parse_jobs, parse_nodes
from tests.rig.slurm import REPO, SlurmCluster, wait_until

pytestmark = pytest.mark.slurm24

PARSERS = ("v0.0.40", "v0.0.41", "v0.0.42")


def _sbatch(cluster: SlurmCluster, *args: str) -> str:
    out = cluster.run(
        ["sbatch", "--parsable", "-o", "/dev/null", *args], user=cluster.test_user
    ).stdout
    return out.strip().split(";")[0]


def test_it_is_slurm_24_11_from_the_build(slurm24_cluster: SlurmCluster) -> None:
    out = slurm24_cluster.run(["sinfo", "--version"]).stdout
    assert out.startswith("slurm 24.11."), out
    status, body = slurm24_cluster.restd_get("/slurm/v0.0.42/diag")
    assert status == 200, body
    assert body["meta"]["slurm"]["release"].startswith("24.11."), body["meta"]
    prefix = slurm24_cluster.prefix
    assert prefix is not None and (prefix / "BUILD-INFO").read_text().startswith("version=24.11.")
    # a second build-slurm call reuses the cached build: no network, no build, in seconds
    started = time.monotonic()
    again = subprocess.run(
        [str(REPO / "scripts" / "build-slurm"), "24.11", "--cached", "--print-prefix"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str(prefix)
    assert "reusing the cached build" in again.stderr
    assert time.monotonic() - started < 10


def test_two_racks_of_nine_trays_with_their_gpus_and_rack_feature(
    slurm24_cluster: SlurmCluster,
) -> None:
    racks = slurm24_cluster.racks
    assert sorted(racks) == ["r01", "r02"] and [len(m) for m in racks.values()] == [9, 9]
    out = slurm24_cluster.run(["sinfo", "-h", "-N", "-o", "%N|%t|%G|%f"]).stdout
    rows = {line.split("|")[0]: line.split("|")[1:] for line in out.splitlines() if line}
    assert sorted(rows) == sorted(slurm24_cluster.nodes)
    for node, (state, gres, features) in rows.items():
        assert state == "idle", (node, state)
        assert gres == "gpu:4", node
        assert features == slurm24_cluster.rack_of(node), node


def test_one_block_per_rack_and_block_sizes_from_the_racks(slurm24_cluster: SlurmCluster) -> None:
    out = slurm24_cluster.run(["scontrol", "show", "topology"]).stdout
    kind, groups = parse_show_topology(out)
    assert kind == "block", out
    live = {g.name: sorted(g.nodes) for g in groups}
    assert live == {f"nvl-{r}": sorted(m) for r, m in slurm24_cluster.racks.items()}, out
    conf = (slurm24_cluster.slurm_conf.parent / "topology.conf").read_text()
    assert "BlockSizes=9,18" in conf
    config = slurm24_cluster.run(["scontrol", "show", "config"]).stdout
    assert any(
        line.split("=", 1)[0].strip() == "TopologyPlugin" and "topology/block" in line
        for line in config.splitlines()
    ), config


def test_slurmrestd_serves_v0_0_40_to_v0_0_42_for_jobs_and_accounting(
    slurm24_cluster: SlurmCluster,
) -> None:
    assert slurm24_cluster.restd_versions == tuple(p.lstrip("v") for p in PARSERS)
    status, doc = slurm24_cluster.restd_get("/openapi/v3")
    assert status == 200
    paths = set(doc["paths"])
    for parser in PARSERS:
        assert f"/slurm/{parser}/job/submit" in paths
        assert f"/slurmdb/{parser}/jobs/" in paths
        status, body = slurm24_cluster.restd_get(f"/slurm/{parser}/ping")
        assert status == 200 and not body["errors"], (parser, body)
        status, body = slurm24_cluster.restd_get(f"/slurmdb/{parser}/associations")
        assert status == 200, (parser, body)
        assert slurm24_cluster.test_user in {a.get("user") for a in body["associations"]}
    # nothing older: 24.11 dropped v0.0.39 and before
    assert not any(p.startswith(("/slurm/v0.0.39/", "/slurm/v0.0.38/")) for p in paths)


def test_slurmrestd_refuses_a_bad_token(slurm24_cluster: SlurmCluster) -> None:
    status, _ = slurm24_cluster.restd_get("/slurm/v0.0.42/diag", token="not-a-jwt")
    assert status == 511  # 24.11: "Network Authentication Required"; 22.05 said 500
    status, _ = slurm24_cluster.restd_get("/slurm/v0.0.42/diag", token="")
    assert status != 200


def _state(cluster: SlurmCluster, job: str) -> str:
    return cluster.run(["squeue", "-h", "-j", job, "-o", "%T"]).stdout.strip()


def _json(cluster: SlurmCluster, argv: list[str]) -> Any:
    return json.loads(cluster.run(argv).stdout)


@pytest.mark.parametrize("parser", PARSERS)
def test_squeue_sinfo_sacct_json_parse_live(slurm24_cluster: SlurmCluster, parser: str) -> None:
    cluster = slurm24_cluster
    job = _sbatch(cluster, "-N2", "--gres=gpu:4", "-t", "2", "-J", f"json-{parser}",
                  "--wrap", "sleep 60")  # fmt: skip
    try:
        assert wait_until(lambda: _state(cluster, job) == "RUNNING", timeout_s=30)
        # squeue: the running job, its state, GPUs, two nodes of the rig
        doc = _json(cluster, ["squeue", f"--json={parser}", "-j", job])
        assert doc["meta"]["plugin"]["data_parser"] == f"data_parser/{parser}"
        (live,) = parse_jobs(doc)
        assert (live.job_id, live.state, live.user, live.account) == (
            int(job), "RUNNING", cluster.test_user, "dcops"
        )  # fmt: skip
        assert live.gpus == 8 and live.node_count == 2
        assert set(expand(live.nodes)) <= set(cluster.nodes) and len(expand(live.nodes)) == 2

        # sinfo: every node, 4 GPUs each, the job's two nodes allocated
        nodes = {n.name: n for n in parse_nodes(_json(cluster, ["sinfo", f"--json={parser}"]))}
        assert sorted(nodes) == sorted(cluster.nodes)
        assert {n.gpus for n in nodes.values()} == {4}
        busy = {name for name, n in nodes.items() if n.state in ("ALLOCATED", "MIXED")}
        assert set(expand(live.nodes)) <= busy
    finally:
        cluster.run(["scancel", job], check=False)

    # sacct: the same job, cancelled, in accounting with its GPUs
    def accounted() -> list[Any]:
        jobs = parse_jobs(_json(cluster, ["sacct", f"--json={parser}", "-j", job]))
        return [j for j in jobs if j.job_id == int(job) and j.state == "CANCELLED"]

    assert wait_until(lambda: bool(accounted()), timeout_s=30)
    (done,) = accounted()
    assert done.user == cluster.test_user and done.gpus == 8 and done.end_time is not None

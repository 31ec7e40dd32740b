"""``dcops burnin run --launcher slurm`` on the real local Slurm cluster.

All 18 slurmd run on this machine, so job steps are local processes: the
workers burn CPU "GPUs" (fp32, 0.2 s) and all_reduce over gloo, 1 MiB.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from burnin.remote.argv import SlurmOptions
from burnin.remote.slurm import SlurmCollectiveEngine, SlurmGemmEngine, SlurmLauncher
from dcops.errors import CommandTimeout, ConnectError
from dcops.inventory import load_site
from tests.integration._burnin_remote import burnin_run, by_node, cpu_site
from tests.rig.slurm import SlurmCluster, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.torch]

RACK = "sim-r01-t[01-18]"


def _env(cluster: SlurmCluster) -> dict[str, str]:
    return {"DCOPS_SLURM_CONF": str(cluster.slurm_conf)}


def _jobs_named(cluster: SlurmCluster, name: str) -> list[str]:
    out = cluster.run(["squeue", "--noheader", f"--name={name}", "--format=%i"]).stdout
    return out.split()


@pytest.fixture
def drained(slurm_cluster: SlurmCluster) -> Iterator[str]:
    """sim-r01-t15 drained for the test, resumed after it."""
    node = "sim-r01-t15"
    slurm_cluster.run(
        ["scontrol", "update", f"NodeName={node}", "State=DRAIN", "Reason=dcops burnin test"]
    )
    try:
        yield node
    finally:
        slurm_cluster.run(["scontrol", "update", f"NodeName={node}", "State=RESUME"], check=False)


def test_three_nodes_pass_with_gemm_and_a_real_all_reduce(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    proc, report = burnin_run(
        tmp_path,
        "--nodes", "sim-r01-t[01-03]", "--launcher", "slurm",
        "--site", str(cpu_site(tmp_path, RACK)),
        env=_env(slurm_cluster),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert report["status"] == "pass"
    assert report["params"]["backend"] == "slurm"
    assert report["params"]["probe"] is False and report["params"]["probe_note"]
    nodes = by_node(report)
    assert sorted(nodes) == ["sim-r01-t01", "sim-r01-t02", "sim-r01-t03"]
    for node in nodes.values():
        assert node["status"] == "pass"
        assert node["gpus"][0]["tflops"] > 0
    # the domain all_reduce over the three nodes ran (one gloo rank per srun task)
    assert report["collectives"], report
    assert _jobs_named(slurm_cluster, "dcops-burnin") == []


def test_drained_node_is_an_error_for_that_node_only(
    slurm_cluster: SlurmCluster, tmp_path: Path, drained: str
) -> None:
    proc, report = burnin_run(
        tmp_path,
        "--nodes", "sim-r01-t[13-15]", "--launcher", "slurm",
        "--site", str(cpu_site(tmp_path, RACK)), "--no-collectives",
        env=_env(slurm_cluster),
    )  # fmt: skip
    assert proc.returncode == 1
    nodes = by_node(report)
    assert nodes[drained]["status"] == "error"
    assert "drain" in str(nodes[drained]["reasons"]).lower()
    assert nodes["sim-r01-t13"]["status"] == "pass"
    assert nodes["sim-r01-t14"]["status"] == "pass"
    # a node the scheduler would not run is an error, never evidence: nothing is planned
    assert report["actions"] == []


@pytest.mark.slow
def test_hung_worker_is_bounded_and_its_step_cancelled(
    slurm_cluster: SlurmCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = load_site(cpu_site(tmp_path, RACK))
    nodes = ["sim-r01-t16", "sim-r01-t17"]
    monkeypatch.setenv("DCOPS_GEMM_FAULT", "sim-r01-t17=hang")
    name = f"dcops-burnin-test-{time.monotonic_ns()}"
    launcher = SlurmLauncher(
        site, nodes, slurm_conf=str(slurm_cluster.slurm_conf), threads=1, python=sys.executable,
        options=SlurmOptions(job_name=name, time_limit_s=300, alloc_wait_s=60),
    )  # fmt: skip
    try:
        engine = SlurmGemmEngine(launcher)
        ok = engine.run(site.gpus(nodes[0]), dtype="fp32", duration_s=0.2, seed=1, timeout_s=30)
        assert [r.gpu.node for r in ok] == [nodes[0]]
        started = time.monotonic()
        with pytest.raises(CommandTimeout):
            engine.run(site.gpus(nodes[1]), dtype="fp32", duration_s=0.2, seed=1, timeout_s=4)
        assert time.monotonic() - started < 4 + 25
        # the collective across both still works after the hang
        members = [g for n in nodes for g in site.gpus(n)]
        res = SlurmCollectiveEngine(launcher).run(
            "all_reduce", members, sizes_bytes=[1 << 20], iterations=2, timeout_s=60
        )
        assert set(res.members) == set(members) and res.rows[0].out_of_place.wrong == 0
    finally:
        launcher.close()
    assert wait_until(lambda: _jobs_named(slurm_cluster, name) == [], timeout_s=20)


def test_node_unknown_to_slurm_is_a_connect_error(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    site = load_site(cpu_site(tmp_path, "sim-r01-t18,sim-r09-t01"))
    launcher = SlurmLauncher(site, site.nodes(), slurm_conf=str(slurm_cluster.slurm_conf))
    try:
        with pytest.raises(ConnectError, match="does not know"):
            launcher.job_for(["sim-r09-t01"])
    finally:
        launcher.close()

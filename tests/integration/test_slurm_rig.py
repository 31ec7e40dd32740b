"""The local Slurm test cluster itself: nodes, GPUs, jobs, accounting, topology, slurmrestd."""

from __future__ import annotations

import pytest

from tests.rig.slurm import SlurmCluster, wait_until

pytestmark = pytest.mark.slurm


def test_every_node_registered_with_its_gpus(slurm_cluster: SlurmCluster) -> None:
    out = slurm_cluster.run(["sinfo", "-h", "-N", "-p", "batch", "-o", "%N|%t|%G"]).stdout
    rows = {line.split("|")[0]: line.split("|")[1:] for line in out.splitlines() if line}
    assert sorted(rows) == sorted(slurm_cluster.nodes)
    assert len(rows) == 18
    for node, (state, gres) in rows.items():
        assert gres == f"gpu:{slurm_cluster.gpus_per_node}", node
        assert not state.endswith("*") and state not in ("down", "unk", "inval"), (node, state)


def test_nodes_are_idle(slurm_cluster: SlurmCluster) -> None:
    out = slurm_cluster.run(["sinfo", "-h", "-N", "-o", "%N %t"]).stdout
    states = dict(line.split() for line in out.splitlines())
    assert set(states.values()) == {"idle"}, states


def test_rack_is_one_topology_switch(slurm_cluster: SlurmCluster) -> None:
    out = slurm_cluster.run(["scontrol", "show", "topology"]).stdout
    assert "SwitchName=nvl-r01 Level=0" in out
    assert slurm_cluster.nodes_expr in out


def test_job_runs_as_the_test_user_on_gpus(slurm_cluster: SlurmCluster) -> None:
    gpus = slurm_cluster.gpus_per_node
    proc = slurm_cluster.run(
        [
            "srun",
            "-N2",
            f"--gres=gpu:{gpus}",
            "-t",
            "1",
            "bash",
            "-c",
            'echo "$(id -un) $SLURMD_NODENAME $SLURM_JOB_GPUS"',
        ],
        user=slurm_cluster.test_user,
    )
    lines = sorted(proc.stdout.split("\n"))
    lines = [line for line in lines if line]
    assert len(lines) == 2, proc.stdout
    for line in lines:
        user, node = line.split(" ")[:2]
        assert user == slurm_cluster.test_user
        assert node in slurm_cluster.nodes


def test_sbatch_job_reaches_accounting(slurm_cluster: SlurmCluster) -> None:
    user = slurm_cluster.test_user
    job_id = (
        slurm_cluster.run(
            [
                "sbatch",
                "--parsable",
                "--wait",
                "-N1",
                "--gres=gpu:4",
                "-t",
                "1",
                "-o",
                "/dev/null",
                "--wrap",
                "true",
            ],
            user=user,
        )
        .stdout.strip()
        .split(";")[0]
    )
    assert job_id.isdigit()

    record: list[str] = []

    def accounted() -> bool:
        out = slurm_cluster.run(
            ["sacct", "-n", "-P", "-X", "-j", job_id, "-o", "JobID,User,Account,State,AllocTRES"],
            user=user,
        ).stdout.strip()
        record[:] = out.split("|") if out else []
        return bool(record) and record[3] == "COMPLETED"

    assert wait_until(accounted, timeout_s=30), record
    assert record[1] == user
    assert record[2] == "dcops"
    assert "gres/gpu=4" in record[4]


def test_unknown_account_is_refused(slurm_cluster: SlurmCluster) -> None:
    proc = slurm_cluster.run(
        ["sbatch", "-A", "no-such-account", "-o", "/dev/null", "--wrap", "true"],
        user=slurm_cluster.test_user,
        check=False,
    )
    assert proc.returncode != 0
    assert "account" in proc.stderr.lower()


def test_slurmrestd_answers_diag_with_a_token(slurm_cluster: SlurmCluster) -> None:
    status, body = slurm_cluster.restd_get("/slurm/v0.0.38/diag")
    assert status == 200, body
    assert body["meta"]["Slurm"]["release"].startswith("22.05")
    assert not body["errors"]
    assert "statistics" in body


def test_slurmrestd_accounting_plugin_answers(slurm_cluster: SlurmCluster) -> None:
    status, body = slurm_cluster.restd_get("/slurmdb/v0.0.38/associations")
    assert status == 200, body
    users = {a.get("user") for a in body["associations"]}
    assert slurm_cluster.test_user in users


def test_slurmrestd_refuses_a_bad_token(slurm_cluster: SlurmCluster) -> None:
    # 22.05 answers 500 with "request failed" in errors; later releases 401.
    status, body = slurm_cluster.restd_get("/slurm/v0.0.38/diag", token="not-a-jwt")
    assert status != 200
    if isinstance(body, dict):
        assert body.get("errors"), body

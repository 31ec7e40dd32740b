"""The scheduler bridge against the real local Slurm cluster (tenants tenant-a / tenant-b).

scripts/rig/users.conf gives each tenant its own Unix user and account, capped at
8 GPUs by GrpTRES. Every job submitted here is cancelled before the test ends.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dcops.errors import InputError, UnknownNameError
from dcops.store import AuditLog, Store
from scheduler.bridge import Bridge
from scheduler.slurm.sync import sync_slurm
from scheduler.spec import JobSpec, spec_from_dict
from scheduler.tenants.contract import TenantContract
from scheduler.tenants.store import create_tenant
from tests.rig.slurm import SlurmCluster, wait_until

pytestmark = pytest.mark.slurm
ROOTS = Path("/tmp/dcops-tenants")


def _tenant(name: str, **over: Any) -> TenantContract:
    values: dict[str, Any] = {
        "name": name,
        "slurm_account": name,
        "slurm_qos": "normal",
        "slurm_partitions": ("batch",),
        "unix_users": (name,),
        "k8s_namespace": f"tenant-{name}",
        "k8s_local_queue": name,
        "gpu_quota": 8,
        "output_roots": (str(ROOTS / name),),
    }
    values.update(over)
    return TenantContract(**values)


def _output_root(name: str) -> None:
    entry = pwd.getpwnam(name)
    path = ROOTS / name
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o750)


@pytest.fixture
def bridge(
    slurm_cluster: SlurmCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Bridge, TenantContract, TenantContract]]:
    if os.geteuid() != 0:
        pytest.skip("acting as tenant users needs root")
    for name in ("tenant-a", "tenant-b"):
        try:
            _output_root(name)
        except KeyError:
            pytest.skip(f"unix user {name} missing: run scripts/test-cluster up (users.conf)")
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.slurm_conf))
    store = Store(tmp_path / "state.db")
    audit = AuditLog(store, actor="test")
    a = create_tenant(store, _tenant("tenant-a"), audit)
    b = create_tenant(store, _tenant("tenant-b"), audit)
    service = Bridge(
        store,
        audit,
        backend_options={
            "slurm-cli": {"slurm_conf": str(slurm_cluster.slurm_conf)},
            "slurm-rest": {
                "url": slurm_cluster.restd_url,
                "slurm_conf": str(slurm_cluster.slurm_conf),
            },
        },
    )
    try:
        yield service, a, b
    finally:
        for name in ("tenant-a", "tenant-b"):
            slurm_cluster.run(["scancel", f"--account={name}"], check=False)
        store.close()


def _spec(name: str, nodes: int, gpus: int, script: str = "sleep 60\n") -> JobSpec:
    return spec_from_dict(
        {
            "name": name,
            "resources": {
                "nodes": nodes,
                "gpus_per_node": gpus,
                "time_limit": "5m",
                "memory": "1Gi",
            },
            "script": script,
        }
    )


def test_tenant_job_runs_as_its_user_and_is_invisible_to_others(
    bridge: tuple[Bridge, TenantContract, TenantContract], slurm_cluster: SlurmCluster
) -> None:
    service, a, b = bridge
    spec = _spec("isolated", 2, 4, "echo ran-as=$(id -un) account=$SLURM_JOB_ACCOUNT; sleep 60\n")
    record = service.submit(a, spec, "slurm-cli")
    assert record.gpus == 8 and record.backend_job_id
    assert "#SBATCH --account=tenant-a" in record.rendering
    assert wait_until(lambda: service.status(a, record.job_id).state == "running", timeout_s=30)
    live = service.status(a, record.job_id).live
    assert live is not None and live.extra["user"] == "tenant-a"
    assert live.extra["account"] == "tenant-a" and live.gpus == 8
    assert wait_until(
        lambda: "ran-as=tenant-a account=tenant-a" in service.logs(a, record.job_id), timeout_s=20
    )

    backend = service.backend("slurm-cli")
    job_id = record.backend_job_id
    assert job_id is not None
    for call in (
        lambda: service.status(b, record.job_id),
        lambda: service.logs(b, record.job_id),
        lambda: service.cancel(b, record.job_id),
        lambda: backend.status(b, job_id),
        lambda: backend.logs(b, job_id),
        lambda: backend.cancel(b, job_id),
    ):
        with pytest.raises(UnknownNameError):
            call()
    assert all(j.backend_job_id != job_id for j in backend.list(b))
    assert backend.status(a, job_id).active  # still running after B's attempts

    # Over quota: refused by the bridge before Slurm sees anything.
    before = slurm_cluster.run(["squeue", "-h", "-A", "tenant-a", "-o", "%i"]).stdout.split()
    with pytest.raises(InputError, match="exceeds tenant 'tenant-a' quota of 8"):
        service.submit(a, _spec("too-big", 1, 4), "slurm-cli")
    after = slurm_cluster.run(["squeue", "-h", "-A", "tenant-a", "-o", "%i"]).stdout.split()
    assert before == after
    refused = [r for r in service.audit.records(action="job.submit") if r.outcome == "refused"]
    assert refused and "quota" in refused[-1].evidence["error"]

    service.cancel(a, record.job_id)
    assert wait_until(lambda: not backend.status(a, job_id).active, timeout_s=30)
    assert service.status(a, record.job_id).state == "cancelled"
    assert service.submit(a, _spec("after-cancel", 1, 4), "slurm-cli").gpus == 4


def test_raw_sbatch_over_quota_pends_with_assoc_grp_gres(
    bridge: tuple[Bridge, TenantContract, TenantContract], slurm_cluster: SlurmCluster
) -> None:
    out = slurm_cluster.run(
        [
            "sbatch",
            "--parsable",
            "-A",
            "tenant-b",
            "-N",
            "3",
            "--gres=gpu:4",
            "--mem=1G",
            "-t",
            "5",
            "-o",
            "/dev/null",
            "--wrap",
            "sleep 30",
        ],
        user="tenant-b",
    ).stdout
    job_id = out.strip().split(";")[0]
    try:

        def reason() -> str:
            return slurm_cluster.run(["squeue", "-h", "-j", job_id, "-o", "%r"]).stdout.strip()

        assert wait_until(lambda: reason() == "AssocGrpGRES", timeout_s=30), reason()
    finally:
        slurm_cluster.run(["scancel", job_id], check=False)


def test_slurmrestd_submits_and_lists_as_the_tenant(
    bridge: tuple[Bridge, TenantContract, TenantContract],
) -> None:
    service, a, b = bridge
    record = service.submit(a, _spec("via-rest", 1, 4), "slurm-rest")
    rest = service.backend("slurm-rest")
    assert getattr(rest, "_version", None) == "0.0.38"
    assert record.backend_job_id is not None
    mine = {j.backend_job_id: j for j in rest.list(a)}
    assert record.backend_job_id in mine and mine[record.backend_job_id].gpus == 4
    assert mine[record.backend_job_id].extra["user"] == "tenant-a"
    assert record.backend_job_id not in {j.backend_job_id for j in rest.list(b)}
    with pytest.raises(UnknownNameError):
        rest.cancel(b, record.backend_job_id)
    service.cancel(a, record.job_id)


def test_tenant_sync_creates_associations_and_detects_drift(slurm_cluster: SlurmCluster) -> None:
    if os.geteuid() != 0:
        pytest.skip("sacctmgr changes need root (Slurm administrator)")
    account = "dcops-synctest"
    contract = _tenant("synctest", slurm_account=account, unix_users=("tenant-b",), gpu_quota=12)
    env = slurm_cluster.env

    def sacctmgr(*args: str) -> None:
        subprocess.run(["sacctmgr", "-i", *args], env=env, capture_output=True, check=False)

    sacctmgr("delete", "user", "name=tenant-b", f"account={account}")
    sacctmgr("delete", "account", account)
    try:
        report = sync_slurm(contract, env=env)
        assert {d.what for d in report.drift} == {"account", "user-association"}
        applied = sync_slurm(contract, apply=True, env=env)
        assert applied.in_sync and all(a["ok"] for a in applied.applied)
        assert sync_slurm(contract, env=env).in_sync

        sacctmgr("modify", "account", "where", f"name={account}", "set", "GrpTRES=gres/gpu=3")
        drift = sync_slurm(contract, env=env).drift
        assert [(d.what, d.have) for d in drift] == [("account-gpu-limit", "gres/gpu=3")]
        assert sync_slurm(contract, apply=True, env=env).in_sync
    finally:
        sacctmgr("delete", "user", "name=tenant-b", f"account={account}")
        sacctmgr("delete", "account", account)

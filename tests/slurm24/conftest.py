"""Shared helpers of the Slurm 24.11 tier (``-m slurm24``): the rig, tenants, the bridge.

The rig (``slurm24_cluster``, tests/rig/slurm.py) runs Slurm 24.11 built by
``scripts/build-slurm``: two racks ``r01``/``r02`` of 9 trays, one ``topology/block``
block per rack, ``BlockSizes=9,18``. Its ``bin`` leads this process's PATH; commands
dcops runs *as a tenant* get the clean PATH of a login (``/usr/local/bin:/usr/bin:/bin``),
where a real site installs its Slurm, so the bridge here gets a runner that puts the
rig's Slurm first on that PATH too (:func:`rig_runner`), and nothing else changes.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from dcops.measurements import CommandResult
from dcops.remote.local import LocalRunner
from dcops.store import AuditLog, Store
from scheduler.bridge import Bridge
from scheduler.spec import JobSpec, spec_from_dict
from scheduler.tenants.contract import TenantContract
from scheduler.tenants.store import create_tenant
from tests.rig.slurm import SlurmCluster

ROOTS = Path("/tmp/dcops-tenants")


class _RigRunner(LocalRunner):
    """This machine's runner, with the rig's Slurm first on every child's given PATH."""

    def __init__(self, bin_path: str) -> None:
        super().__init__()
        self.bin_path = bin_path

    def run(
        self,
        host: str,
        argv: Sequence[str],
        *,
        timeout_s: float,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        max_output_bytes: int | None = None,
    ) -> CommandResult:
        if env is not None and not env.get("PATH", "").startswith(self.bin_path):
            env = {**env, "PATH": f"{self.bin_path}:{env.get('PATH', '')}"}
        return super().run(
            host, argv, timeout_s=timeout_s, stdin=stdin, env=env, cwd=cwd,
            max_output_bytes=max_output_bytes,
        )  # fmt: skip


def rig_runner(cluster: SlurmCluster) -> LocalRunner:
    """The real local runner, with the rig's Slurm first on every child's PATH."""
    return _RigRunner(cluster.bin_path)


def tenant(name: str, user: str, account: str, gpu_quota: int) -> TenantContract:
    return TenantContract(
        name=name,
        slurm_account=account,
        slurm_qos="normal",
        slurm_partitions=("batch",),
        unix_users=(user,),
        k8s_namespace=f"tenant-{name}",
        k8s_local_queue=name,
        gpu_quota=gpu_quota,
        output_roots=(str(ROOTS / name),),
    )


def output_root(name: str, user: str) -> None:
    entry = pwd.getpwnam(user)
    path = ROOTS / name
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o750)


def spec(name: str, nodes: int, gpus: int, script: str = "sleep 120\n", **topology: Any) -> JobSpec:
    doc: dict[str, Any] = {
        "name": name,
        "resources": {"nodes": nodes, "gpus_per_node": gpus, "time_limit": "5m", "memory": "1Gi"},
        "script": script,
    }
    if topology:
        doc["topology"] = topology
    return spec_from_dict(doc)


@pytest.fixture
def bridge24(
    slurm24_cluster: SlurmCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Bridge, TenantContract, TenantContract]]:
    """The bridge on 24.11 with two tenants: ``big`` (the rig's test user in account dcops,
    no Slurm GPU limit, 72 GPUs of dcops quota) and ``tenant-a`` (8 GPUs in Slurm and dcops).
    Every job of theirs is cancelled at the end."""
    if os.geteuid() != 0:
        pytest.skip("acting as tenant users needs root")
    cluster = slurm24_cluster
    monkeypatch.setenv("SLURM_CONF", str(cluster.slurm_conf))
    big = tenant("big", cluster.test_user, "dcops", 72)
    small = tenant("tenant-a", "tenant-a", "tenant-a", 8)
    output_root("big", cluster.test_user)
    output_root("tenant-a", "tenant-a")
    store = Store(tmp_path / "state.db")
    audit = AuditLog(store, actor="test")
    create_tenant(store, big, audit)
    create_tenant(store, small, audit)
    runner = rig_runner(cluster)
    service = Bridge(
        store,
        audit,
        backend_options={
            "slurm-cli": {"slurm_conf": str(cluster.slurm_conf), "runner": runner},
            "slurm-rest": {
                "url": cluster.restd_url,
                "slurm_conf": str(cluster.slurm_conf),
                "runner": runner,
            },
        },
    )
    try:
        yield service, big, small
    finally:
        for user in (cluster.test_user, "tenant-a"):
            cluster.run(["scancel", f"--user={user}"], check=False)
        store.close()

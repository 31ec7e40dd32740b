"""Segment jobs and the REST backend on Slurm 24.11 with one topology/block block per rack.

The bridge renders ``topology.segment`` / ``same_nvlink_domain`` as ``--segment``; the
scheduler (not dcops) places each segment inside one block, and ``scontrol show job``
says where it went. Racks hold 9 trays, so a 12-node job in segments of 6 can only run
as 6 + 6 (one segment per rack), never 9 + 3 as a plain 12-node job may; a segment of
10 fits no block and Slurm refuses it.

The REST backend speaks each data_parser version slurmrestd 24.11 serves (v0.0.40 ..
v0.0.42): submit, status, list, cancel as the tenant, and a segment job where the
version's job description has ``segment_size``.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from dcops.errors import InputError, SchedulerError, UnknownNameError
from dcops.hostlist import expand
from dcops.store import AuditLog, Store
from scheduler.backends.slurm_rest import SlurmRestBackend
from scheduler.bridge import Bridge
from scheduler.slurm.render import SlurmSite
from scheduler.tenants.contract import TenantContract
from scheduler.tenants.store import create_tenant
from tests.rig.slurm import SlurmCluster, wait_until
from tests.slurm24.conftest import output_root, rig_runner, spec, tenant

pytestmark = pytest.mark.slurm24

Trio = tuple[Bridge, TenantContract, TenantContract]


def show_job(cluster: SlurmCluster, job_id: str) -> dict[str, str]:
    """``scontrol show job`` as key -> value (the first of each key)."""
    out = cluster.run(["scontrol", "show", "job", job_id]).stdout
    fields: dict[str, str] = {}
    for key, value in re.findall(r"(\w+)=(\S*)", out):
        fields.setdefault(key, value)
    return fields


def running(cluster: SlurmCluster, job_id: str) -> bool:
    return show_job(cluster, job_id).get("JobState") == "RUNNING"


def per_rack(cluster: SlurmCluster, nodelist: str) -> dict[str, int]:
    return dict(Counter(cluster.rack_of(n) for n in expand(nodelist)))


def test_segments_of_six_run_one_per_block(bridge24: Trio, slurm24_cluster: SlurmCluster) -> None:
    service, big, _ = bridge24
    record = service.submit(big, spec("seg6", 12, 4, segment=6), "slurm-cli")
    assert "#SBATCH --segment=6" in record.rendering
    job = record.backend_job_id
    assert job is not None
    assert wait_until(lambda: running(slurm24_cluster, job), timeout_s=60), show_job(
        slurm24_cluster, job
    )
    fields = show_job(slurm24_cluster, job)
    assert fields["NumNodes"] == "12"
    assert per_rack(slurm24_cluster, fields["NodeList"]) == {"r01": 6, "r02": 6}, fields
    assert service.status(big, record.job_id).state == "running"
    service.cancel(big, record.job_id)


def test_same_nvlink_domain_lands_in_one_block(
    bridge24: Trio, slurm24_cluster: SlurmCluster
) -> None:
    service, big, _ = bridge24
    # a 3-node job first takes r01's first trays, so that the 8 could have spread
    filler = service.submit(big, spec("filler", 3, 4, rack="r01"), "slurm-cli")
    assert filler.backend_job_id is not None
    assert wait_until(lambda: running(slurm24_cluster, str(filler.backend_job_id)), timeout_s=60)
    record = service.submit(big, spec("domain8", 8, 4, same_nvlink_domain=True), "slurm-cli")
    assert "#SBATCH --segment=8" in record.rendering
    job = record.backend_job_id
    assert job is not None
    assert wait_until(lambda: running(slurm24_cluster, job), timeout_s=60)
    racks = per_rack(slurm24_cluster, show_job(slurm24_cluster, job)["NodeList"])
    assert racks == {"r02": 8}, racks  # r01 has only 6 trays left
    filler_racks = per_rack(
        slurm24_cluster, show_job(slurm24_cluster, str(filler.backend_job_id))["NodeList"]
    )
    assert filler_racks == {"r01": 3}  # topology.rack -> --constraint=r01 (the node feature)


def test_a_segment_larger_than_every_block_is_refused_by_slurm(
    bridge24: Trio, slurm24_cluster: SlurmCluster
) -> None:
    """18 nodes are idle, but no block holds 10: Slurm refuses it at once, never 9 + 1."""
    service, big, _ = bridge24

    def queued() -> list[str]:
        return slurm24_cluster.run(["squeue", "-h", "-o", "%j"]).stdout.split()

    assert wait_until(lambda: queued() == [], timeout_s=60), queued()  # earlier tests' jobs
    with pytest.raises(SchedulerError, match="Requested topology configuration is not available"):
        service.submit(big, spec("seg10", 10, 4, segment=10), "slurm-cli")
    assert queued() == []
    # the same 10 nodes without a segment run, across both blocks (no block holds 10)
    record = service.submit(big, spec("plain10", 10, 4), "slurm-cli")
    job = record.backend_job_id
    assert job is not None
    assert wait_until(lambda: running(slurm24_cluster, job), timeout_s=60)
    racks = per_rack(slurm24_cluster, show_job(slurm24_cluster, job)["NodeList"])
    assert sorted(racks) == ["r01", "r02"] and sum(racks.values()) == 10, racks
    service.cancel(big, record.job_id)


def _rest_bridge(
    cluster: SlurmCluster, tmp_path: Path, version: str
) -> tuple[Bridge, SlurmRestBackend, TenantContract, TenantContract]:
    store = Store(tmp_path / f"rest-{version}.db")
    audit = AuditLog(store, actor="test")
    a = tenant("tenant-a", "tenant-a", "tenant-a", 8)
    big = tenant("big", cluster.test_user, "dcops", 72)
    for t in (a, big):
        output_root(t.name, t.unix_user)
        create_tenant(store, t, audit)
    backend = SlurmRestBackend(
        url=cluster.restd_url,
        version=version,
        slurm_conf=str(cluster.slurm_conf),
        runner=rig_runner(cluster),
        site=SlurmSite.parse_version("24.11"),
    )
    return Bridge(store, audit, backends={"slurm-rest": backend}), backend, a, big


@pytest.mark.parametrize("version", ["0.0.40", "0.0.41", "0.0.42"])
def test_rest_backend_submits_lists_and_cancels_as_the_tenant(
    slurm24_cluster: SlurmCluster, tmp_path: Path, version: str
) -> None:
    service, rest, a, big = _rest_bridge(slurm24_cluster, tmp_path, version)
    try:
        record = service.submit(a, spec(f"rest-{version.replace('.', '-')}", 2, 4), "slurm-rest")
        assert rest.version(a.unix_user) == version
        job = record.backend_job_id
        assert job is not None
        assert wait_until(lambda: rest.status(a, job).state.value == "running", timeout_s=60)
        live = rest.status(a, job)
        assert live.gpus == 8 and live.extra["user"] == "tenant-a"
        assert live.extra["account"] == "tenant-a"
        assert len(expand(live.nodes)) == 2
        mine = {j.backend_job_id for j in rest.list(a)}
        assert job in mine and job not in {j.backend_job_id for j in rest.list(big)}
        with pytest.raises(UnknownNameError):
            rest.cancel(big, job)
        assert rest.gpus_in_use(a) == 8
        service.cancel(a, record.job_id)
        assert wait_until(lambda: not rest.status(a, job).active, timeout_s=30)
        assert rest.status(a, job).state.value == "cancelled"  # from /slurm or /slurmdb
    finally:
        slurm24_cluster.run(["scancel", "--user=tenant-a"], check=False)


def test_rest_backend_detects_the_newest_version(slurm24_cluster: SlurmCluster) -> None:
    rest = SlurmRestBackend(
        url=slurm24_cluster.restd_url,
        slurm_conf=str(slurm24_cluster.slurm_conf),
        runner=rig_runner(slurm24_cluster),
    )
    assert rest.version(slurm24_cluster.test_user) == "0.0.42"


@pytest.mark.parametrize("version", ["0.0.41", "0.0.42"])
def test_rest_segment_job_is_placed_one_segment_per_block(
    slurm24_cluster: SlurmCluster, tmp_path: Path, version: str
) -> None:
    service, rest, _, big = _rest_bridge(slurm24_cluster, tmp_path, version)
    try:
        record = service.submit(big, spec("rest-seg", 12, 4, segment=6), "slurm-rest")
        assert rest.version(big.unix_user) == version
        job = record.backend_job_id
        assert job is not None
        assert wait_until(lambda: running(slurm24_cluster, job), timeout_s=60)
        fields = show_job(slurm24_cluster, job)
        assert per_rack(slurm24_cluster, fields["NodeList"]) == {"r01": 6, "r02": 6}, fields
        service.cancel(big, record.job_id)
    finally:
        slurm24_cluster.run(["scancel", f"--user={slurm24_cluster.test_user}"], check=False)


def test_rest_v0_0_40_refuses_a_segment_it_cannot_express(
    slurm24_cluster: SlurmCluster, tmp_path: Path
) -> None:
    service, _, _, big = _rest_bridge(slurm24_cluster, tmp_path, "0.0.40")
    with pytest.raises(InputError, match="cannot express"):
        service.submit(big, spec("rest-seg40", 12, 4, segment=6), "slurm-rest")
    names = slurm24_cluster.run(["squeue", "-h", "-o", "%j"]).stdout.split()
    assert "rest-seg40" not in names  # refused before Slurm saw anything

"""Tenant sync: drift between a contract and sacctmgr's associations (pure), Kueue manifests."""

from __future__ import annotations

from pathlib import Path

from scheduler.slurm.sync import diff, parse_associations
from scheduler.tenants.kubernetes import gpu_quota_of_cluster_queue, render_tenant_kubernetes
from tests.scheduler.conftest import make_tenant

# sacctmgr -n -P show assoc format=Cluster,Account,User,GrpTRES,QOS,DefaultQOS (Slurm 22.05)
IN_SYNC = """\
dcops-test|root|||normal|
dcops-test|acme-acct||gres/gpu=144|normal|
dcops-test|acme-acct|acme01||acme-qos,normal|acme-qos
"""


def test_parse_associations() -> None:
    rows = parse_associations(IN_SYNC)
    assert [r.account for r in rows] == ["root", "acme-acct", "acme-acct"]
    assert rows[1].gpu_limit == 144 and rows[0].gpu_limit is None
    assert rows[2].qos == ("acme-qos", "normal")


def test_no_drift_when_slurm_matches(root: Path) -> None:
    tenant = make_tenant(root)
    assert diff(tenant, parse_associations(IN_SYNC), {"normal", "acme-qos"}) == []


def test_everything_missing_gives_the_commands_to_create_it(root: Path) -> None:
    tenant = make_tenant(root, gpu_quota=8)
    drift = diff(tenant, [], {"normal"})
    assert [d.what for d in drift] == ["qos", "account", "user-association"]
    commands = [" ".join(c) for d in drift for c in d.fix]
    assert commands == [
        "sacctmgr -i add qos acme-qos",
        "sacctmgr -i add account acme-acct Description=dcops-tenant-acme Organization=acme "
        "GrpTRES=gres/gpu=8",
        "sacctmgr -i add user acme01 Account=acme-acct QOS=acme-qos DefaultQOS=acme-qos",
    ]


def test_changed_limit_and_lost_qos_are_drift(root: Path) -> None:
    tenant = make_tenant(root)
    changed = IN_SYNC.replace("gres/gpu=144", "gres/gpu=16").replace("acme-qos,normal", "normal")
    drift = diff(tenant, parse_associations(changed), {"normal", "acme-qos"})
    assert [(d.what, d.have) for d in drift] == [
        ("account-gpu-limit", "gres/gpu=16"),
        ("user-qos", "normal"),
    ]
    assert drift[0].fix[0][-1] == "GrpTRES=gres/gpu=144"
    unlimited = IN_SYNC.replace("gres/gpu=144", "")
    assert (
        diff(tenant, parse_associations(unlimited), {"normal", "acme-qos"})[0].have == "unlimited"
    )


def test_cluster_filter(root: Path) -> None:
    tenant = make_tenant(root)
    other = IN_SYNC.replace("dcops-test", "other")
    assert [
        d.what for d in diff(tenant, parse_associations(other), {"acme-qos"}, cluster="dcops-test")
    ] == ["account", "user-association"]


def test_kueue_manifests_carry_the_quota(root: Path) -> None:
    tenant = make_tenant(root, gpu_quota=16)
    ns, cq, lq = render_tenant_kubernetes(tenant)
    assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == "tenant-acme"
    assert cq["kind"] == "ClusterQueue" and gpu_quota_of_cluster_queue(cq) == 16
    assert cq["spec"]["namespaceSelector"]["matchLabels"] == {"dcops.io/tenant": "acme"}
    assert lq["metadata"] == {**lq["metadata"], "name": "acme-lq", "namespace": "tenant-acme"}
    assert lq["spec"]["clusterQueue"] == cq["metadata"]["name"]

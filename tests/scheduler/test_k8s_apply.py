"""Tenant sync: create, leave alone, detect drift and patch, dry run — through the real client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dcops.kube import KubeApi
from scheduler.kubernetes.apply import (
    TenantQueueSite,
    find_drift,
    render_tenant_objects,
    sync_tenant,
)
from scheduler.tenants.contract import TenantContract
from tests.scheduler.k8s_fake_server import FakeKubeServer
from tests.scheduler.k8s_support import running_server

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def server() -> Iterator[FakeKubeServer]:
    with running_server() as srv:
        yield srv


def test_render_tenant_objects(tenant: TenantContract) -> None:
    ns, cq, lq, rq = render_tenant_objects(
        tenant, TenantQueueSite(cohort="fleet", gpu_borrowing_limit=0)
    )
    assert ns["metadata"]["name"] == "tenant-acme"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    flavor = cq["spec"]["resourceGroups"][0]["flavors"][0]
    quotas = {r["name"]: r for r in flavor["resources"]}
    assert quotas["nvidia.com/gpu"] == {
        "name": "nvidia.com/gpu",
        "nominalQuota": 144,
        "borrowingLimit": 0,
    }
    assert quotas["cpu"]["nominalQuota"] == 36 * 144
    assert cq["spec"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "tenant-acme"
    }
    assert lq["metadata"] == {**lq["metadata"], "name": "acme-lq", "namespace": "tenant-acme"}
    assert lq["spec"]["clusterQueue"] == cq["metadata"]["name"] == "dcops-acme"
    assert rq["spec"]["hard"] == {"requests.nvidia.com/gpu": "144"}


def test_sync_creates_then_is_idempotent(server: FakeKubeServer, tenant: TenantContract) -> None:
    api = KubeApi.for_host(server.url)
    first = sync_tenant(api, tenant)
    assert [r.action for r in first.results] == ["created"] * 4
    assert server.get("kueue.x-k8s.io/v1beta1", "ClusterQueue", "", "dcops-acme") is not None
    second = sync_tenant(api, tenant)
    assert [r.action for r in second.results] == ["unchanged"] * 4
    assert not second.changed


def test_drift_reported_and_patched(server: FakeKubeServer, tenant: TenantContract) -> None:
    api = KubeApi.for_host(server.url)
    sync_tenant(api, tenant)
    cq = server.get("kueue.x-k8s.io/v1beta1", "ClusterQueue", "", "dcops-acme")
    assert cq is not None
    cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"][2]["nominalQuota"] = 999
    cq["spec"]["cohort"] = "someone-elses"  # a field we do not set is not drift
    server.put(cq)
    dry = sync_tenant(api, tenant, dry_run=True)
    ((result, drift),) = dry.drift
    assert result.action == "would-patch" and result.kind == "ClusterQueue"
    assert drift.path == "$.spec.resourceGroups[0].flavors[0].resources[2].nominalQuota"
    assert (drift.wanted, drift.actual) == (144, 999)
    stored = server.get("kueue.x-k8s.io/v1beta1", "ClusterQueue", "", "dcops-acme")
    assert (
        stored is not None
        and stored["spec"]["resourceGroups"][0]["flavors"][0]["resources"][2]["nominalQuota"] == 999
    )
    fixed = sync_tenant(api, tenant)
    assert [r.action for r in fixed.results] == ["unchanged", "patched", "unchanged", "unchanged"]
    stored = server.get("kueue.x-k8s.io/v1beta1", "ClusterQueue", "", "dcops-acme")
    assert (
        stored is not None
        and stored["spec"]["resourceGroups"][0]["flavors"][0]["resources"][2]["nominalQuota"] == 144
    )
    patch = [r for r in server.requests if r.method == "PATCH"][-1]
    assert patch.content_type.startswith("application/merge-patch+json")
    assert patch.body["metadata"]["resourceVersion"]  # guarded against concurrent writers
    assert fixed.to_dict()["results"][1]["drift"][0]["wanted"] == 144


def test_dry_run_creates_nothing(server: FakeKubeServer, tenant: TenantContract) -> None:
    report = sync_tenant(KubeApi.for_host(server.url), tenant, dry_run=True)
    assert [r.action for r in report.results] == ["would-create"] * 4
    assert server.get("v1", "Namespace", "", "tenant-acme") is None


def test_find_drift_quantities() -> None:
    assert list(find_drift({"a": 4, "b": ["x"]}, {"a": "4", "b": ["x"], "c": 1})) == []
    assert [d.path for d in find_drift({"a": {"b": True}}, {"a": {"b": "true"}})] == ["$.a.b"]

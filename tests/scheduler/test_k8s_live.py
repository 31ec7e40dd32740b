"""Live tier: a real cluster (``KUBECONFIG`` set), server-side dry runs only — nothing is created.

Set ``DCOPS_K8S_TENANT_NAMESPACE`` to a namespace with a LocalQueue to check job
submission; without it only the tenant objects are dry-run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dcops.kube import NAMESPACE, KubeApi
from scheduler.kubernetes.apply import sync_tenant
from scheduler.kubernetes.backend import KubernetesBackend
from tests.scheduler.conftest import make_tenant
from tests.scheduler.k8s_support import admitted, multi_node

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("KUBECONFIG"), reason="KUBECONFIG not set: no live cluster"
    ),
    pytest.mark.timeout(120),
]


@pytest.fixture
def api() -> KubeApi:
    return KubeApi.from_kubeconfig(os.environ["KUBECONFIG"])


def test_live_api_answers(api: KubeApi) -> None:
    items, rv = api.list(NAMESPACE)
    assert rv and isinstance(items, list)


def test_live_tenant_sync_dry_run(api: KubeApi, tmp_path: Path) -> None:
    tenant = make_tenant(
        tmp_path.resolve(), name="dcops-livetest", k8s_namespace="dcops-livetest-ns"
    )
    report = sync_tenant(api, tenant, dry_run=True)
    assert all(r.action.startswith("would-") or r.action == "unchanged" for r in report.results)


def test_live_submit_validate_only(api: KubeApi, tmp_path: Path) -> None:
    namespace = os.environ.get("DCOPS_K8S_TENANT_NAMESPACE")
    if not namespace:
        pytest.skip("DCOPS_K8S_TENANT_NAMESPACE not set")
    tenant = make_tenant(
        tmp_path.resolve(),
        k8s_namespace=namespace,
        k8s_local_queue=os.environ.get("DCOPS_K8S_LOCAL_QUEUE", "dcops-lq"),
    )
    backend = KubernetesBackend(api, validate_only=True)
    for job in (
        admitted(tenant, name="dcops-live-dry"),
        multi_node(tenant, name="dcops-live-dry-mn"),
    ):
        sub = backend.submit(job)
        assert "nothing was created" in sub.notes[0]

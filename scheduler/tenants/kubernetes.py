"""The Kubernetes side of a tenant as manifests (pure): Namespace, ClusterQueue, LocalQueue.

The tenant's GPU quota becomes the ClusterQueue's ``nominalQuota`` of
``nvidia.com/gpu`` (no borrowing); CPU and memory are covered too, sized per
GPU from :class:`TenantQueueSite`, because Kueue cannot admit a workload that
asks for a resource its ClusterQueue does not cover. Applying them is the
Kubernetes adapter's job; here they are only rendered and compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scheduler.tenants.contract import TenantContract

Manifest = dict[str, Any]
TENANT_LABEL = "dcops.io/tenant"


@dataclass(frozen=True)
class TenantQueueSite:
    """Site facts for tenant queues: one ResourceFlavor, host resources per GPU (GB200 tray)."""

    flavor: str = "gb200"
    cpus_per_gpu: int = 36
    memory_per_gpu_gib: int = 240


def cluster_queue_name(contract: TenantContract) -> str:
    return f"tenant-{contract.name}"[:63]


def render_tenant_kubernetes(
    contract: TenantContract, site: TenantQueueSite | None = None
) -> list[Manifest]:
    """Namespace, ClusterQueue (quota) and LocalQueue of ``contract``, in apply order."""
    site = site or TenantQueueSite()
    labels = {TENANT_LABEL: contract.name, "app.kubernetes.io/managed-by": "dcops"}
    gpus = contract.gpu_quota
    namespace: Manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": contract.k8s_namespace, "labels": dict(labels)},
    }
    cluster_queue: Manifest = {
        "apiVersion": "kueue.x-k8s.io/v1beta1",
        "kind": "ClusterQueue",
        "metadata": {"name": cluster_queue_name(contract), "labels": dict(labels)},
        "spec": {
            "namespaceSelector": {"matchLabels": {TENANT_LABEL: contract.name}},
            "queueingStrategy": "BestEffortFIFO",
            "resourceGroups": [
                {
                    "coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
                    "flavors": [
                        {
                            "name": site.flavor,
                            "resources": [
                                {"name": "cpu", "nominalQuota": gpus * site.cpus_per_gpu},
                                {
                                    "name": "memory",
                                    "nominalQuota": f"{gpus * site.memory_per_gpu_gib}Gi",
                                },
                                {"name": "nvidia.com/gpu", "nominalQuota": gpus},
                            ],
                        }
                    ],
                }
            ],
        },
    }
    local_queue: Manifest = {
        "apiVersion": "kueue.x-k8s.io/v1beta1",
        "kind": "LocalQueue",
        "metadata": {
            "name": contract.k8s_local_queue,
            "namespace": contract.k8s_namespace,
            "labels": dict(labels),
        },
        "spec": {"clusterQueue": cluster_queue_name(contract)},
    }
    return [namespace, cluster_queue, local_queue]


def gpu_quota_of_cluster_queue(manifest: Manifest) -> int | None:
    """``nominalQuota`` of ``nvidia.com/gpu`` summed over flavors (None when not covered)."""
    total: int | None = None
    for group in manifest.get("spec", {}).get("resourceGroups", []):
        for flavor in group.get("flavors", []):
            for res in flavor.get("resources", []):
                if res.get("name") == "nvidia.com/gpu":
                    total = (total or 0) + int(res.get("nominalQuota", 0))
    return total

"""Tenant objects on a cluster: render them (pure) and apply them (create or patch, with drift).

For ``dcops tenant sync``::

    report = sync_tenant(KubeApi.from_kubeconfig(), tenant, dry_run=True)
    for r in report.results: print(r.action, r.kind, r.name, r.drift)

:func:`render_tenant_objects` gives, in apply order:

* ``Namespace`` = ``tenant.k8s_namespace``, labelled as the tenant's and enforcing
  the ``restricted`` Pod Security Standard (what dcops' pods already satisfy);
* ``ClusterQueue`` ``dcops-<tenant>``: cpu / memory / ``nvidia.com/gpu`` quota in
  one flavor, the GPU ``nominalQuota`` = ``tenant.gpu_quota``, usable only from
  the tenant's namespace (``namespaceSelector``);
* ``LocalQueue`` = ``tenant.k8s_local_queue`` in the namespace, pointing at it;
* ``ResourceQuota`` ``dcops-gpu``: ``requests.nvidia.com/gpu`` = the quota, a
  backstop for pods that would not go through Kueue.

:func:`apply_objects` creates what is missing and merge-patches what differs,
reporting each difference between what we want and what the server holds as
drift (a JSON path and both values). Fields the server adds (defaults, status)
are not drift. ``dry_run`` sends everything with ``dryRun=All``: nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dcops.kube import (
    CLUSTER_QUEUE,
    LOCAL_QUEUE,
    NAMESPACE,
    KubeApi,
    Obj,
    kind_of,
)
from scheduler.kubernetes.render import GPU_RESOURCE
from scheduler.kubernetes.status import MANAGED_BY, MANAGED_BY_LABEL, TENANT_LABEL
from scheduler.kubernetes.validate import K8S_VERSION, validate_manifests
from scheduler.tenants.contract import TenantContract


@dataclass(frozen=True)
class TenantQueueSite:
    """How the cluster's Kueue is laid out (declared by the operator).

    ``flavor`` must name an existing ResourceFlavor (a cluster-wide object the
    operator creates once). CPU and memory quotas follow the GPU quota at the
    compute tray's ratio so that a tenant can use every GPU it pays for.
    """

    flavor: str = "default-flavor"
    gpus_per_node: int = 4
    cpus_per_node: int = 144  # GB200 compute tray: 2 Grace CPUs x 72 cores
    memory_per_node_gib: int = 850
    cohort: str | None = None
    gpu_borrowing_limit: int | None = None
    resource_quota: bool = True
    pod_security: str = "restricted"


def cluster_queue_name(tenant: TenantContract) -> str:
    return f"dcops-{tenant.name}"[:63].rstrip("-")


def _labels(tenant: TenantContract) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, TENANT_LABEL: tenant.name}


def render_tenant_objects(tenant: TenantContract, site: TenantQueueSite | None = None) -> list[Obj]:
    """Namespace, ClusterQueue, LocalQueue (and ResourceQuota) of ``tenant``, in apply order."""
    site = site or TenantQueueSite()
    ns = tenant.k8s_namespace
    nodes = -(-tenant.gpu_quota // site.gpus_per_node) if site.gpus_per_node else 0
    ns_labels = _labels(tenant)
    if site.pod_security:
        ns_labels["pod-security.kubernetes.io/enforce"] = site.pod_security
    gpu: dict[str, Any] = {"name": GPU_RESOURCE, "nominalQuota": tenant.gpu_quota}
    if site.cohort and site.gpu_borrowing_limit is not None:
        gpu["borrowingLimit"] = site.gpu_borrowing_limit
    cq_spec: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
        "queueingStrategy": "BestEffortFIFO",
        "resourceGroups": [
            {
                "coveredResources": ["cpu", "memory", GPU_RESOURCE],
                "flavors": [
                    {
                        "name": site.flavor,
                        "resources": [
                            {"name": "cpu", "nominalQuota": nodes * site.cpus_per_node},
                            {
                                "name": "memory",
                                "nominalQuota": f"{nodes * site.memory_per_node_gib}Gi",
                            },
                            gpu,
                        ],
                    }
                ],
            }
        ],
    }
    if site.cohort:
        cq_spec["cohort"] = site.cohort
    objects: list[Obj] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": ns_labels}},
        {
            "apiVersion": CLUSTER_QUEUE.api_version,
            "kind": "ClusterQueue",
            "metadata": {"name": cluster_queue_name(tenant), "labels": _labels(tenant)},
            "spec": cq_spec,
        },
        {
            "apiVersion": LOCAL_QUEUE.api_version,
            "kind": "LocalQueue",
            "metadata": {
                "name": tenant.k8s_local_queue,
                "namespace": ns,
                "labels": _labels(tenant),
            },
            "spec": {"clusterQueue": cluster_queue_name(tenant)},
        },
    ]
    if site.resource_quota:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "dcops-gpu", "namespace": ns, "labels": _labels(tenant)},
                "spec": {"hard": {f"requests.{GPU_RESOURCE}": str(tenant.gpu_quota)}},
            }
        )
    return objects


@dataclass(frozen=True)
class Drift:
    """One difference: at ``path`` we want ``wanted``, the server holds ``actual``."""

    path: str
    wanted: Any
    actual: Any

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "wanted": self.wanted, "actual": self.actual}


@dataclass(frozen=True)
class ApplyResult:
    kind: str
    namespace: str
    name: str
    action: str  # created | patched | unchanged (dry runs: would-create | would-patch)
    drift: tuple[Drift, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "action": self.action,
            "drift": [d.to_dict() for d in self.drift],
        }


@dataclass(frozen=True)
class ApplyReport:
    dry_run: bool
    results: tuple[ApplyResult, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return any(r.action != "unchanged" for r in self.results)

    @property
    def drift(self) -> list[tuple[ApplyResult, Drift]]:
        return [(r, d) for r in self.results for d in r.drift]

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "results": [r.to_dict() for r in self.results]}


def _quantity_equal(wanted: object, actual: object) -> bool:
    # The server may send back "144" for 144 (quantities are strings on the wire).
    return str(wanted) == str(actual)


def find_drift(wanted: object, actual: object, path: str = "$") -> Iterator[Drift]:
    """Where ``actual`` differs from ``wanted`` (only fields ``wanted`` sets)."""
    if isinstance(wanted, Mapping):
        if not isinstance(actual, Mapping):
            yield Drift(path, wanted, actual)
            return
        for key, val in wanted.items():
            yield from find_drift(val, actual.get(key), f"{path}.{key}")
    elif isinstance(wanted, list):
        if not isinstance(actual, list) or len(actual) != len(wanted):
            yield Drift(path, wanted, actual)
            return
        for i, (w, a) in enumerate(zip(wanted, actual, strict=True)):
            yield from find_drift(w, a, f"{path}[{i}]")
    elif isinstance(wanted, bool) or wanted is None or isinstance(actual, bool):
        if wanted != actual:
            yield Drift(path, wanted, actual)
    elif not _quantity_equal(wanted, actual):
        yield Drift(path, wanted, actual)


def _desired_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    part: dict[str, Any] = {
        "metadata": {k: meta[k] for k in ("labels", "annotations") if k in meta}
    }
    for key, val in obj.items():
        if key not in ("apiVersion", "kind", "metadata", "status"):
            part[key] = val
    return part


def apply_objects(
    api: KubeApi, objects: Sequence[Mapping[str, Any]], *, dry_run: bool = False
) -> ApplyReport:
    """Create missing objects, merge-patch drifted ones; report every action and drift."""
    results: list[ApplyResult] = []
    new_namespaces: set[str] = set()  # dry run: namespaces that do not exist yet
    for obj in objects:
        kind = kind_of(obj)
        meta = obj.get("metadata") or {}
        name, ns = str(meta["name"]), meta.get("namespace")
        if ns in new_namespaces:  # the server cannot dry-run into a missing namespace
            results.append(ApplyResult(kind.kind, ns, name, "would-create"))
            continue
        current = api.get(kind, name, ns)
        if current is None:
            api.create(obj, dry_run=dry_run)
            if dry_run and kind is NAMESPACE:
                new_namespaces.add(name)
            action = "would-create" if dry_run else "created"
            results.append(ApplyResult(kind.kind, ns or "", name, action))
            continue
        desired = _desired_part(obj)
        drift = tuple(find_drift(desired, current))
        if not drift:
            results.append(ApplyResult(kind.kind, ns or "", name, "unchanged"))
            continue
        patch = dict(desired)
        patch["metadata"] = {
            **desired["metadata"],
            "resourceVersion": (current.get("metadata") or {}).get("resourceVersion"),
        }
        api.patch(kind, name, patch, ns, dry_run=dry_run)
        action = "would-patch" if dry_run else "patched"
        results.append(ApplyResult(kind.kind, ns or "", name, action, drift))
    return ApplyReport(dry_run, tuple(results))


def sync_tenant(
    api: KubeApi,
    tenant: TenantContract,
    *,
    site: TenantQueueSite | None = None,
    dry_run: bool = False,
    k8s_version: str = K8S_VERSION,
) -> ApplyReport:
    """Render, validate offline and apply the tenant's objects (``dcops tenant sync``)."""
    objects = render_tenant_objects(tenant, site)
    validate_manifests(objects, k8s_version=k8s_version)
    return apply_objects(api, objects, dry_run=dry_run)


__all__ = [
    "ApplyReport",
    "ApplyResult",
    "Drift",
    "TenantQueueSite",
    "apply_objects",
    "cluster_queue_name",
    "find_drift",
    "render_tenant_objects",
    "sync_tenant",
]

"""Render an admitted job as the Kubernetes manifests the bridge applies (pure).

* one node: a ``batch/v1`` Job;
* several nodes: a JobSet (``jobset.x-k8s.io/v1alpha2``) with one indexed Job,
  restarted as a whole up to ``retries.max_restarts`` times;
* several GPU nodes (NVL72): plus a ComputeDomain (``resource.nvidia.com/v1beta1``)
  whose channel ResourceClaimTemplate every pod claims, and Kueue topology
  annotations keeping the pods inside NVLink domains.

Everything lands in the tenant's namespace with the tenant's LocalQueue label
``kueue.x-k8s.io/queue-name``; workloads start suspended so Kueue admits them
against quota. Requests always equal limits, so quota is never bypassed. The pod
spec is built from a closed set of fields: host namespaces, hostPath, privilege,
service accounts and root are not expressible, and :func:`find_pod_escapes`
re-checks every rendering before it is returned.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dcops.errors import InputError
from scheduler.tenants.contract import NVL72_NODES_PER_DOMAIN, AdmittedJob

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
REQUIRED_TOPOLOGY = "kueue.x-k8s.io/podset-required-topology"
PREFERRED_TOPOLOGY = "kueue.x-k8s.io/podset-preferred-topology"
SLICE_REQUIRED_TOPOLOGY = "kueue.x-k8s.io/podset-slice-required-topology"
SLICE_SIZE = "kueue.x-k8s.io/podset-slice-size"
GPU_RESOURCE = "nvidia.com/gpu"
COMPUTE_DOMAIN_API = "resource.nvidia.com/v1beta1"
JOBSET_API = "jobset.x-k8s.io/v1alpha2"
CLAIM_NAME = "compute-domain"
Manifest = dict[str, Any]


def _default_priorities() -> dict[str, str]:
    return {"in-house": "dcops-in-house", "tenant": "dcops-tenant"}


@dataclass(frozen=True)
class KubernetesSite:
    """What this cluster offers (declared): topology labels, defaults, priority classes."""

    nvlink_topology_label: str = "nvidia.com/gpu.clique"
    rack_label: str = "topology.kubernetes.io/rack"
    nodes_per_nvlink_domain: int = NVL72_NODES_PER_DOMAIN
    default_memory_mib: int = 16 * 1024
    workload_priority_classes: Mapping[str, str] = field(default_factory=_default_priorities)


def _labels(job: AdmittedJob, site: KubernetesSite) -> dict[str, str]:
    return {
        QUEUE_LABEL: job.tenant.k8s_local_queue,
        PRIORITY_LABEL: site.workload_priority_classes[job.spec.priority_class.value],
        "app.kubernetes.io/managed-by": "dcops",
        "dcops.io/tenant": job.tenant.name,
        "dcops.io/job": job.spec.name,
    }


def _short(name: str, suffix: str) -> str:
    return f"{name[: 63 - len(suffix)].rstrip('-')}{suffix}"


def _resources(job: AdmittedJob, site: KubernetesSite) -> dict[str, Any]:
    res = job.spec.resources
    amounts = {
        "cpu": str(res.cpus_per_task * res.tasks_per_node),
        "memory": f"{res.memory_mib or site.default_memory_mib}Mi",
    }
    if res.gpus_per_node:
        amounts[GPU_RESOURCE] = str(res.gpus_per_node)
    out: dict[str, Any] = {"requests": dict(amounts), "limits": dict(amounts)}
    if _needs_compute_domain(job):
        out["claims"] = [{"name": CLAIM_NAME}]
    return out


def _needs_compute_domain(job: AdmittedJob) -> bool:
    res = job.spec.resources
    return res.nodes > 1 and res.gpus_per_node > 0


def _container(job: AdmittedJob, site: KubernetesSite) -> dict[str, Any]:
    spec = job.spec
    if spec.image is None:
        raise InputError("image: a container image is required on Kubernetes")
    container: dict[str, Any] = {"name": "main", "image": spec.image}
    if spec.command is not None:
        container["command"] = list(spec.command)
    else:
        assert spec.script is not None
        container["command"] = ["/bin/bash", "-c", spec.script, spec.name]
    container["workingDir"] = job.workdir
    if spec.env:
        container["env"] = [{"name": k, "value": spec.env[k]} for k in sorted(spec.env)]
    container["resources"] = _resources(job, site)
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    if job.tenant.k8s_output_claim is not None:
        container["volumeMounts"] = [{"name": "outputs", "mountPath": job.tenant.output_roots[0]}]
    return container


def _pod_template(job: AdmittedJob, site: KubernetesSite) -> dict[str, Any]:
    spec, tenant = job.spec, job.tenant
    pod_security: dict[str, Any] = {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if tenant.k8s_run_as_uid is not None:
        pod_security["runAsUser"] = tenant.k8s_run_as_uid
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security,
        "containers": [_container(job, site)],
    }
    if spec.resources.gpus_per_node:
        pod["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    if spec.topology.rack is not None:
        pod["nodeSelector"] = {site.rack_label: spec.topology.rack}
    if tenant.k8s_output_claim is not None:
        pod["volumes"] = [
            {"name": "outputs", "persistentVolumeClaim": {"claimName": tenant.k8s_output_claim}}
        ]
    if _needs_compute_domain(job):
        pod["resourceClaims"] = [
            {"name": CLAIM_NAME, "resourceClaimTemplateName": _short(spec.name, "-cd-channel")}
        ]
    # Queue/priority labels stay on the workload object: on pods they would make
    # Kueue's pod integration treat each pod as a workload of its own.
    labels = {k: v for k, v in _labels(job, site).items() if not k.startswith("kueue.x-k8s.io/")}
    metadata: dict[str, Any] = {"labels": labels}
    annotations = _topology_annotations(job, site)
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": pod}


def _topology_annotations(job: AdmittedJob, site: KubernetesSite) -> dict[str, str]:
    topo, res = job.spec.topology, job.spec.resources
    level = site.nvlink_topology_label
    if topo.same_nvlink_domain:
        if res.nodes > site.nodes_per_nvlink_domain:
            raise InputError(
                f"topology.same_nvlink_domain: {res.nodes} nodes exceed one NVLink domain "
                f"({site.nodes_per_nvlink_domain} nodes)"
            )
        return {REQUIRED_TOPOLOGY: level}
    if topo.segment is not None:
        return {SLICE_REQUIRED_TOPOLOGY: level, SLICE_SIZE: str(topo.segment)}
    if _needs_compute_domain(job):
        return {PREFERRED_TOPOLOGY: level}
    return {}


def _pod_failure_policy(job: AdmittedJob) -> dict[str, Any] | None:
    retries = job.spec.retries
    rules: list[dict[str, Any]] = []
    if retries.on_node_failure:
        rules.append(
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            }
        )
    if retries.on_exit_codes:
        rules.append(
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": "main",
                    "operator": "NotIn",
                    "values": sorted(retries.on_exit_codes),
                },
            }
        )
    return {"rules": rules} if rules else None


def _job_spec(job: AdmittedJob, site: KubernetesSite, *, indexed: bool) -> dict[str, Any]:
    res = job.spec.resources
    out: dict[str, Any] = {}
    if indexed:
        out |= {
            "parallelism": res.nodes,
            "completions": res.nodes,
            "completionMode": "Indexed",
            "backoffLimit": 0,
        }
    else:
        out["backoffLimit"] = job.spec.retries.max_restarts
        policy = _pod_failure_policy(job)
        if policy is not None:
            out["podFailurePolicy"] = policy
    out["activeDeadlineSeconds"] = res.time_limit_s
    out["template"] = _pod_template(job, site)
    return out


def render_kubernetes(job: AdmittedJob, site: KubernetesSite | None = None) -> list[Manifest]:
    """The manifests for ``job``, in apply order (ComputeDomain first)."""
    site = site or KubernetesSite()
    spec, tenant = job.spec, job.tenant
    meta = {"name": spec.name, "namespace": tenant.k8s_namespace, "labels": _labels(job, site)}
    manifests: list[Manifest] = []
    if _needs_compute_domain(job):
        manifests.append(
            {
                "apiVersion": COMPUTE_DOMAIN_API,
                "kind": "ComputeDomain",
                "metadata": {
                    "name": _short(spec.name, "-cd"),
                    "namespace": tenant.k8s_namespace,
                    "labels": {k: v for k, v in _labels(job, site).items() if k != QUEUE_LABEL},
                },
                "spec": {
                    "numNodes": spec.resources.nodes,
                    "channel": {
                        "resourceClaimTemplate": {"name": _short(spec.name, "-cd-channel")}
                    },
                },
            }
        )
    if spec.resources.nodes == 1:
        job_spec = _job_spec(job, site, indexed=False)
        manifests.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": meta,
                "spec": {"suspend": True, **job_spec},
            }
        )
    else:
        manifests.append(
            {
                "apiVersion": JOBSET_API,
                "kind": "JobSet",
                "metadata": meta,
                "spec": {
                    "suspend": True,
                    "network": {"enableDNSHostnames": True},
                    "failurePolicy": {"maxRestarts": spec.retries.max_restarts},
                    "replicatedJobs": [
                        {
                            "name": "workers",
                            "replicas": 1,
                            "template": {"spec": _job_spec(job, site, indexed=True)},
                        }
                    ],
                },
            }
        )
    for manifest in manifests:
        escapes = find_pod_escapes(manifest)
        if escapes:  # unreachable by construction; refuse rather than render
            raise InputError(f"rendering refused: {', '.join(escapes)}")
    return manifests


_FORBIDDEN_KEYS = frozenset(
    {
        "hostPath",
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "hostUsers",
        "hostPort",
        "hostAliases",
        "serviceAccountName",
        "serviceAccount",
        "nodeName",
        "procMount",
    }
)


def _walk(node: object, path: str) -> Iterator[tuple[str, str, object]]:
    if isinstance(node, Mapping):
        for key, val in node.items():
            yield path, str(key), val
            yield from _walk(val, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, f"{path}[{i}]")


def _is_escape(key: str, val: object) -> bool:
    if key in _FORBIDDEN_KEYS:
        return True
    if key in ("privileged", "allowPrivilegeEscalation", "automountServiceAccountToken"):
        return val is not False
    if key in ("runAsUser", "runAsGroup"):
        return val == 0
    if key == "runAsNonRoot":
        return val is not True
    return key == "capabilities" and isinstance(val, Mapping) and bool(val.get("add"))


def find_pod_escapes(manifest: object) -> list[str]:
    """Every place in ``manifest`` that would let a pod reach past its tenant."""
    return [f"{path}.{key}" for path, key, val in _walk(manifest, "$") if _is_escape(key, val)]

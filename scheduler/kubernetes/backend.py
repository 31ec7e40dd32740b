"""The Kubernetes scheduler backend: admitted jobs into the tenant's namespace, via Kueue.

:class:`KubernetesBackend` implements :class:`~scheduler.backends.base.SchedulerBackend`
on one cluster, through the official client (:class:`~dcops.kube.KubeApi`)::

    backend = KubernetesBackend(KubeApi.from_kubeconfig())
    sub = backend.submit(admitted)                 # Job (1 node) or ComputeDomain + JobSet
    backend.status(tenant, sub.backend_job_id).state

* **Where**: the namespace and LocalQueue come only from the tenant contract
  (``AdmittedJob.tenant``); every rendered manifest is re-checked to sit in that
  namespace, to carry the queue label on the workload, to request (= limit) CPU,
  memory and GPUs, and to hold no pod escape — before anything is sent.
* **Validation**: offline (built-in schemas + upstream CRD schemas, strict), then a
  server-side ``dryRun=All`` with ``fieldValidation=Strict`` of *every* manifest,
  and only then the real creates (``fieldValidation=Strict`` again). With
  ``validate_only=True`` it stops after the server dry run and creates nothing.
  A create that fails part-way deletes what it created.
* **Isolation**: status, list, logs and cancel read only the tenant's namespace,
  only objects labelled ``app.kubernetes.io/managed-by=dcops`` and
  ``dcops.io/tenant=<tenant>``; anything else — another tenant's job, a job an
  operator created by hand — is :class:`~dcops.errors.UnknownNameError`, "not found".
* **Quota**: Kueue enforces it (``QUOTA_ENFORCED``); :meth:`gpus_in_use` sums the
  GPU requests of the tenant's active workloads for dcops' own admission check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dcops.errors import InputError, SchedulerError, UnknownNameError
from dcops.kube import (
    COMPUTE_DOMAIN,
    JOB,
    JOBSET,
    POD,
    Kind,
    KubeApi,
    KubeApiError,
    Obj,
    kind_of,
)
from scheduler.backends.base import (
    BackendFeature,
    JobStatus,
    Submission,
    register_backend,
    total_gpus,
)
from scheduler.kubernetes.render import (
    GPU_RESOURCE,
    QUEUE_LABEL,
    KubernetesSite,
    find_pod_escapes,
    render_kubernetes,
)
from scheduler.kubernetes.status import (
    BACKEND,
    JOB_POD_LABEL,
    JOBSET_POD_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    TENANT_LABEL,
    job_status,
)
from scheduler.kubernetes.validate import K8S_VERSION, validate_manifests
from scheduler.kubernetes.watch import watch_objects
from scheduler.tenants.contract import AdmittedJob, TenantContract

PROPAGATION_POLICIES = ("Foreground", "Background")
_WORKLOAD_KINDS = ("Job", "JobSet")


def tenant_selector(tenant: TenantContract) -> str:
    """The label selector of the tenant's dcops-managed objects."""
    return f"{MANAGED_BY_LABEL}={MANAGED_BY},{TENANT_LABEL}={tenant.name}"


def not_found(tenant: TenantContract, job_id: str) -> UnknownNameError:
    """The one answer for a job the tenant does not own, whether or not it exists."""
    err = UnknownNameError("job", job_id, ())
    err.message = f"job {job_id!r} not found for tenant {tenant.name!r}"
    err.args = (err.message,)
    return err


def _owned(obj: Mapping[str, Any] | None, tenant: TenantContract) -> bool:
    if obj is None:
        return False
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    return (
        meta.get("namespace") == tenant.k8s_namespace
        and labels.get(MANAGED_BY_LABEL) == MANAGED_BY
        and labels.get(TENANT_LABEL) == tenant.name
    )


def _is_jobset_child(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    if JOBSET_POD_LABEL in (meta.get("labels") or {}):
        return True
    return any(ref.get("kind") == "JobSet" for ref in meta.get("ownerReferences") or [])


def _pod_templates(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = manifest.get("spec") or {}
    if manifest.get("kind") == "Job":
        return [spec.get("template") or {}]
    if manifest.get("kind") == "JobSet":
        return [
            ((r.get("template") or {}).get("spec") or {}).get("template") or {}
            for r in spec.get("replicatedJobs") or []
        ]
    return []


def check_rendering(job: AdmittedJob, manifests: Sequence[Mapping[str, Any]]) -> None:
    """Refuse (InputError) a rendering that leaves the tenant's namespace or queue,
    skips requests, or lets a pod escape. Render bugs stop here, not in the cluster."""
    tenant, gpus = job.tenant, job.spec.resources.gpus_per_node
    workloads = 0
    for manifest in manifests:
        kind = kind_of(manifest)
        meta = manifest.get("metadata") or {}
        where = f"rendering refused: {kind.kind} {meta.get('name')}"
        if not kind.namespaced or meta.get("namespace") != tenant.k8s_namespace:
            raise InputError(f"{where}: not in tenant namespace {tenant.k8s_namespace!r}")
        escapes = find_pod_escapes(manifest)
        if escapes:
            raise InputError(f"{where}: {', '.join(escapes)}")
        if kind.kind not in _WORKLOAD_KINDS:
            continue
        workloads += 1
        if (meta.get("labels") or {}).get(QUEUE_LABEL) != tenant.k8s_local_queue:
            raise InputError(f"{where}: missing queue label {QUEUE_LABEL}")
        for template in _pod_templates(manifest):
            for container in (template.get("spec") or {}).get("containers") or []:
                requests = (container.get("resources") or {}).get("requests") or {}
                needed = ["cpu", "memory"] + ([GPU_RESOURCE] if gpus else [])
                missing = [r for r in needed if r not in requests]
                if missing:
                    raise InputError(f"{where}: container without requests {missing}")
    if workloads != 1:
        raise InputError(f"rendering refused: {workloads} workloads (expected one Job or JobSet)")


@dataclass(frozen=True)
class JobEvent:
    """A change to one of the tenant's jobs, from :meth:`KubernetesBackend.watch_jobs`."""

    type: str  # ADDED, MODIFIED, DELETED
    status: JobStatus
    relisted: bool = False


@register_backend("kubernetes")
class KubernetesBackend:
    """SchedulerBackend for one Kubernetes cluster with Kueue (and JobSet, ComputeDomains)."""

    name = "kubernetes"
    features = frozenset(
        {
            BackendFeature.SUBMIT,
            BackendFeature.STATUS,
            BackendFeature.LIST,
            BackendFeature.LOGS,
            BackendFeature.CANCEL,
            BackendFeature.QUOTA_ENFORCED,
            BackendFeature.DRY_RUN,
        }
    )

    def __init__(
        self,
        api: KubeApi | None = None,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        site: KubernetesSite | None = None,
        validate_only: bool = False,
        k8s_version: str = K8S_VERSION,
        propagation: str = "Foreground",
        max_log_pods: int = 8,
    ) -> None:
        """``api``: a ready client; else one is made from ``kubeconfig``/``context`` on first use.

        ``validate_only``: submit runs every check up to the server's dry run and
        creates nothing. ``propagation``: how cancel deletes (``Foreground``: pods
        go before the workload object; ``Background``: at once, pods after).
        """
        if propagation not in PROPAGATION_POLICIES:
            raise InputError(
                f"propagation: {propagation!r} (known: {', '.join(PROPAGATION_POLICIES)})"
            )
        self._api = api
        self.kubeconfig = kubeconfig
        self.context = context
        self.site = site or KubernetesSite()
        self.validate_only = validate_only
        self.k8s_version = k8s_version
        self.propagation = propagation
        self.max_log_pods = max_log_pods

    @property
    def api(self) -> KubeApi:
        if self._api is None:
            self._api = KubeApi.from_kubeconfig(self.kubeconfig, self.context)
        return self._api

    # --- submit ------------------------------------------------------------------------------

    def render(self, job: AdmittedJob) -> list[Obj]:
        """The checked, offline-validated manifests of ``job`` (no cluster needed)."""
        if job.backend not in (None, self.name):
            raise InputError(f"job was admitted for backend {job.backend!r}, not {self.name!r}")
        manifests = render_kubernetes(job, self.site)
        check_rendering(job, manifests)
        validate_manifests(manifests, k8s_version=self.k8s_version)
        return manifests

    def submit(self, job: AdmittedJob) -> Submission:
        import yaml

        manifests = self.render(job)
        ns, name = job.tenant.k8s_namespace, job.spec.name
        for kind in (JOB, JOBSET):
            if self._get(kind, name, ns) is not None:
                raise InputError(f"name: a job named {name!r} already exists for this tenant")
        for manifest in manifests:  # the server checks everything before anything exists
            self.api.create(manifest, dry_run=True, strict=True)
        rendering = yaml.safe_dump_all(manifests, sort_keys=False, default_flow_style=False)
        if self.validate_only:
            return Submission(
                backend=self.name,
                backend_job_id=name,
                rendering=rendering,
                notes=(
                    "validate-only: the server accepted a dry run (dryRun=All, "
                    "fieldValidation=Strict); nothing was created",
                ),
            )
        created: list[Obj] = []
        try:
            for manifest in manifests:
                self.api.create(manifest, strict=True)
                created.append(manifest)
        except SchedulerError:
            for manifest in reversed(created):
                meta = manifest["metadata"]
                with contextlib.suppress(SchedulerError):  # best effort: report the first error
                    self.api.delete(kind_of(manifest), meta["name"], ns, propagation="Background")
            raise
        notes = tuple(f"created {m['kind']} {ns}/{m['metadata']['name']}" for m in manifests)
        return Submission(self.name, name, rendering, notes)

    # --- reading -----------------------------------------------------------------------------

    def _get(self, kind: Kind, name: str, ns: str) -> Obj | None:
        try:
            return self.api.get(kind, name, ns)
        except KubeApiError as exc:
            raise SchedulerError(str(exc)) from exc

    def _workload(self, tenant: TenantContract, job_id: str) -> Obj:
        if not job_id or "/" in job_id:
            raise not_found(tenant, job_id)
        for kind in (JOB, JOBSET):
            obj = self._get(kind, job_id, tenant.k8s_namespace)
            if obj is not None and _owned(obj, tenant) and not _is_jobset_child(obj):
                obj.setdefault("apiVersion", kind.api_version)
                obj.setdefault("kind", kind.kind)
                return obj
        raise not_found(tenant, job_id)

    def _pods(self, obj: Mapping[str, Any]) -> list[Obj]:
        meta = obj.get("metadata") or {}
        label = JOBSET_POD_LABEL if obj.get("kind") == "JobSet" else JOB_POD_LABEL
        pods, _ = self.api.list(
            POD, meta.get("namespace"), label_selector=f"{label}={meta['name']}"
        )
        return sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name")))

    def status(self, tenant: TenantContract, backend_job_id: str) -> JobStatus:
        obj = self._workload(tenant, backend_job_id)
        return job_status(obj, pods=self._pods(obj))

    def _list_kind(self, kind: Kind, tenant: TenantContract) -> list[Obj]:
        try:
            items, _ = self.api.list(
                kind, tenant.k8s_namespace, label_selector=tenant_selector(tenant)
            )
        except KubeApiError as exc:
            if exc.status == 404 and kind is JOBSET:  # JobSet CRD not installed: no JobSets
                return []
            raise
        return [i for i in items if _owned(i, tenant) and not _is_jobset_child(i)]

    def list(self, tenant: TenantContract, *, active_only: bool = False) -> list[JobStatus]:
        out = [job_status(o) for kind in (JOB, JOBSET) for o in self._list_kind(kind, tenant)]
        out.sort(key=lambda s: (s.submit_time_s or 0.0, s.backend_job_id))
        return [s for s in out if s.active] if active_only else out

    def gpus_in_use(self, tenant: TenantContract) -> int:
        return total_gpus(self.list(tenant, active_only=True))

    def logs(self, tenant: TenantContract, backend_job_id: str, *, tail_bytes: int = 65536) -> str:
        """Tails of the job's pod logs (at most ``max_log_pods`` pods), ``tail_bytes`` in all."""
        obj = self._workload(tenant, backend_job_id)
        pods = self._pods(obj)
        if not pods:
            return ""
        shown = pods[: self.max_log_pods]
        share = max(1, tail_bytes // len(shown))
        parts: list[str] = []
        for pod in shown:
            pod_name = str(pod["metadata"]["name"])
            try:
                text = self.api.pod_log(pod_name, tenant.k8s_namespace, tail_bytes=share)
            except KubeApiError as exc:
                text = f"(no log: {exc})\n"
            parts.append(f"==> pod {pod_name} <==\n{text}" if len(shown) > 1 else text)
        if len(pods) > len(shown):
            parts.append(f"(logs of {len(pods) - len(shown)} more pods not shown)\n")
        return "".join(parts)[-tail_bytes:]

    # --- cancel ------------------------------------------------------------------------------

    def cancel(self, tenant: TenantContract, backend_job_id: str) -> None:
        obj = self._workload(tenant, backend_job_id)
        ns, name = tenant.k8s_namespace, str(obj["metadata"]["name"])
        kind = JOBSET if obj.get("kind") == "JobSet" else JOB
        self.api.delete(kind, name, ns, propagation=self.propagation)
        for cd in self._list_kind(COMPUTE_DOMAIN, tenant) if kind is JOBSET else []:
            if (cd["metadata"].get("labels") or {}).get("dcops.io/job") == obj["metadata"].get(
                "labels", {}
            ).get("dcops.io/job"):
                self.api.delete(
                    COMPUTE_DOMAIN, cd["metadata"]["name"], ns, propagation="Background"
                )

    # --- watch -------------------------------------------------------------------------------

    def watch_jobs(
        self,
        tenant: TenantContract,
        *,
        kind: str = "Job",
        resource_version: str | None = None,
        initial: bool = True,
        timeout_s: int = 60,
        deadline_s: float | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[JobEvent]:
        """Changes to the tenant's Jobs (or JobSets), surviving ``410 Gone`` by relisting.

        One kind per call (a watch is one stream); run two to follow both.
        """
        if kind not in _WORKLOAD_KINDS:
            raise InputError(f"kind: {kind!r} (known: {', '.join(_WORKLOAD_KINDS)})")
        for event in watch_objects(
            self.api,
            JOBSET if kind == "JobSet" else JOB,
            tenant.k8s_namespace,
            label_selector=tenant_selector(tenant),
            resource_version=resource_version,
            initial=initial,
            timeout_s=timeout_s,
            deadline_s=deadline_s,
            stop=stop,
        ):
            if not _owned(event.obj, tenant) or _is_jobset_child(event.obj):
                continue
            obj = dict(event.obj)
            obj.setdefault("kind", kind)
            yield JobEvent(event.type, job_status(obj), event.relisted)


def kubernetes_availability() -> str | None:
    """``None`` when the kubernetes client imports, else why not (for ``availability``)."""
    try:
        import kubernetes  # noqa: F401
    except ImportError as exc:
        return f"the kubernetes client is not installed ({exc}); pip install 'dcops[kubernetes]'"
    return None


__all__ = [
    "BACKEND",
    "JobEvent",
    "KubernetesBackend",
    "check_rendering",
    "kubernetes_availability",
    "not_found",
    "tenant_selector",
]

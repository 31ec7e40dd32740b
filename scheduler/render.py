"""One call from a spec file to what would be submitted: load, admit, render.

:func:`render_for` is the core of ``dcops jobs render``; the CLI only chooses
where the tenant contract comes from (a file now, the state store later).
"""

from __future__ import annotations

from pathlib import Path

from dcops.errors import InputError, UnknownNameError
from scheduler.guards import Resolver, realpath_resolver
from scheduler.kubernetes.render import KubernetesSite, render_kubernetes
from scheduler.slurm.render import SlurmSite, render_slurm
from scheduler.spec import load_spec
from scheduler.tenants.contract import SCHEDULER_KINDS, TenantContract, admit


def render_for(
    spec_path: str | Path,
    tenant: TenantContract,
    backend: str,
    *,
    gpus_in_use: int = 0,
    slurm_site: SlurmSite | None = None,
    kubernetes_site: KubernetesSite | None = None,
    resolve: Resolver = realpath_resolver,
    check: bool = False,
    notes: list[str] | None = None,
) -> str:
    """The exact text that would be submitted: a batch script, or multi-document YAML.

    ``check`` (Kubernetes): validate every manifest offline against the core API
    schemas and the vendored upstream CRDs first (InputError when one is invalid);
    what was checked, and any deprecated API version, is appended to ``notes``.
    """
    if backend not in SCHEDULER_KINDS:
        raise UnknownNameError("backend", backend, SCHEDULER_KINDS)
    if check and backend != "kubernetes":
        raise InputError("--check validates Kubernetes manifests: use it with --backend kubernetes")
    spec = load_spec(spec_path)
    job = admit(spec, tenant, gpus_in_use, backend=backend, resolve=resolve)
    if backend == "slurm":
        return render_slurm(job, slurm_site).script
    import yaml

    manifests = render_kubernetes(job, kubernetes_site)
    if check:
        from scheduler.kubernetes.validate import (
            K8S_VERSION,
            deprecations,
            schema_sources,
            validate_manifests,
        )

        validate_manifests(manifests)
        if notes is not None:
            notes.extend(f"warning: {line}" for line in deprecations(manifests))
            notes.append(
                f"checked {len(manifests)} manifests: valid for Kubernetes {K8S_VERSION} and "
                f"{', '.join(schema_sources())} (CEL rules and admission webhooks need a "
                "live cluster's dry run)"
            )
    return yaml.safe_dump_all(manifests, sort_keys=False, default_flow_style=False)

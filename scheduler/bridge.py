"""One call from a spec file to what would be submitted: load, admit, render.

:func:`render_for` is the core of ``dcops jobs render``; the CLI only chooses
where the tenant contract comes from (a file now, the state store later).
"""

from __future__ import annotations

from pathlib import Path

from dcops.errors import UnknownNameError
from scheduler.guards import Resolver, realpath_resolver
from scheduler.kubernetes.render import KubernetesSite, render_kubernetes
from scheduler.slurm.render import SlurmSite, render_slurm
from scheduler.spec import load_spec
from scheduler.tenancy import BACKENDS, TenantContract, admit


def render_for(
    spec_path: str | Path,
    tenant: TenantContract,
    backend: str,
    *,
    gpus_in_use: int = 0,
    slurm_site: SlurmSite | None = None,
    kubernetes_site: KubernetesSite | None = None,
    resolve: Resolver = realpath_resolver,
) -> str:
    """The exact text that would be submitted: a batch script, or multi-document YAML."""
    if backend not in BACKENDS:
        raise UnknownNameError("backend", backend, BACKENDS)
    spec = load_spec(spec_path)
    job = admit(spec, tenant, gpus_in_use, backend=backend, resolve=resolve)
    if backend == "slurm":
        return render_slurm(job, slurm_site).script
    import yaml

    manifests = render_kubernetes(job, kubernetes_site)
    return yaml.safe_dump_all(manifests, sort_keys=False, default_flow_style=False)

"""Tenant contracts and admission: a spec becomes an :class:`AdmittedJob` or is refused.

A :class:`TenantContract` holds everything that decides *as whom* and *where* a
tenant's work runs (Slurm account/QOS/partitions/unix users, Kubernetes
namespace/LocalQueue), its GPU quota, the only roots it may write under, its
allowed backends and rate limits. :func:`admit` is pure apart from the
injectable path ``resolve`` function: it takes identity only from the contract
and refuses any spec that tries to choose it, write elsewhere, or ask for more
than the contract grants. Persistence of contracts is the state store's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dcops.errors import InputError, QuotaExceededError
from scheduler.guards import (
    DNS_LABEL,
    IMAGE_REF,
    RACK_NAME,
    SLURM_NAME,
    Resolver,
    check_argv,
    check_env,
    check_name,
    check_path_text,
    check_script,
    confine_path,
    normalize_abs,
    realpath_resolver,
)
from scheduler.spec import MAX_TIME_LIMIT_S, JobSpec, PriorityClass, decode_document

#: The schedulers a tenant may be allowed (``allowed_backends``); each is served by one or
#: more registered backends (:data:`scheduler.backends.base.BACKENDS`: slurm-cli, ...).
SCHEDULER_KINDS = ("slurm", "kubernetes")

#: GB200 NVL72: 18 compute trays (nodes) of 4 GPUs share one NVLink domain.
NVL72_NODES_PER_DOMAIN = 18


@dataclass(frozen=True)
class TenantContract:
    """What a tenant is allowed to be and to use. Validated on construction."""

    name: str
    slurm_account: str
    slurm_qos: str
    slurm_partitions: tuple[str, ...]
    unix_users: tuple[str, ...]
    k8s_namespace: str
    k8s_local_queue: str
    gpu_quota: int
    output_roots: tuple[str, ...]
    allowed_backends: frozenset[str] = frozenset(SCHEDULER_KINDS)
    max_submissions_per_minute: int = 60
    max_pending_jobs: int = 1000
    max_nodes_per_job: int = 72
    #: Nodes the tenant's active 0-GPU jobs may hold together (None: gpu_quota / 4, >= 1).
    cpu_node_quota: int | None = None
    max_time_limit_s: int = 7 * 86400
    in_house: bool = False
    k8s_run_as_uid: int | None = None
    k8s_output_claim: str | None = None

    @property
    def cpu_nodes_allowed(self) -> int:
        """Nodes that 0-GPU jobs may hold at once (they count against no GPU quota)."""
        if self.cpu_node_quota is not None:
            return self.cpu_node_quota
        return max(1, self.gpu_quota // 4)

    def __post_init__(self) -> None:
        where = f"tenant {self.name!r}"
        check_name(self.name, DNS_LABEL, f"{where}: name", "tenant name (DNS label)")
        check_name(self.slurm_account, SLURM_NAME, f"{where}: slurm_account", "Slurm account")
        check_name(self.slurm_qos, SLURM_NAME, f"{where}: slurm_qos", "Slurm QOS")
        if not self.slurm_partitions:
            raise InputError(f"{where}: slurm_partitions: at least one partition is required")
        for part in self.slurm_partitions:
            check_name(part, SLURM_NAME, f"{where}: slurm_partitions", "Slurm partition")
        if not self.unix_users:
            raise InputError(f"{where}: unix_users: at least one unix user is required")
        for user in self.unix_users:
            check_name(user, SLURM_NAME, f"{where}: unix_users", "unix user name")
            if user == "root":
                raise InputError(f"{where}: unix_users: a tenant never runs as root")
        check_name(self.k8s_namespace, DNS_LABEL, f"{where}: k8s_namespace", "namespace")
        check_name(self.k8s_local_queue, DNS_LABEL, f"{where}: k8s_local_queue", "LocalQueue")
        if self.k8s_output_claim is not None:
            check_name(self.k8s_output_claim, DNS_LABEL, f"{where}: k8s_output_claim", "PVC")
        if self.k8s_run_as_uid is not None and self.k8s_run_as_uid < 1:
            raise InputError(f"{where}: k8s_run_as_uid: must be a non-root uid (>= 1)")
        for number, label in (
            (self.gpu_quota, "gpu_quota"),
            (self.max_submissions_per_minute, "max_submissions_per_minute"),
            (self.max_pending_jobs, "max_pending_jobs"),
            (self.cpu_nodes_allowed, "cpu_node_quota"),
        ):
            if number < 0:
                raise InputError(f"{where}: {label}: must be >= 0, got {number}")
        if not 1 <= self.max_nodes_per_job <= 4096:
            raise InputError(f"{where}: max_nodes_per_job: must be 1..4096")
        if not 1 <= self.max_time_limit_s <= MAX_TIME_LIMIT_S:
            raise InputError(f"{where}: max_time_limit_s: must be 1 s..365 days")
        if not self.output_roots:
            raise InputError(f"{where}: output_roots: at least one root is required")
        for root in self.output_roots:
            check_path_text(root, f"{where}: output_roots")
            if not root.startswith("/") or normalize_abs(root) in ("/", ""):
                raise InputError(f"{where}: output_roots: {root!r} must be absolute and not '/'")
            if normalize_abs(root) != root.rstrip("/"):
                raise InputError(f"{where}: output_roots: {root!r} is not normalized")
        unknown = set(self.allowed_backends) - set(SCHEDULER_KINDS)
        if unknown or not self.allowed_backends:
            raise InputError(
                f"{where}: allowed_backends: {sorted(unknown) or 'none'} "
                f"(known: {', '.join(SCHEDULER_KINDS)})"
            )

    @property
    def unix_user(self) -> str:
        """The unix user the bridge submits as."""
        return self.unix_users[0]


_TENANT_KEYS = frozenset(TenantContract.__dataclass_fields__)
_TUPLE_KEYS = ("slurm_partitions", "unix_users", "output_roots")


def tenant_from_dict(data: object, *, source: str = "<tenant>") -> TenantContract:
    """Build a contract from a decoded mapping; unknown keys are rejected."""
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: a tenant contract must be a mapping")
    unknown = sorted(str(k) for k in data if k not in _TENANT_KEYS)
    if unknown:
        raise InputError(f"{source}: unknown tenant key(s): {', '.join(unknown)}")
    values = dict(data)
    for key in _TUPLE_KEYS:
        if isinstance(values.get(key), str):
            values[key] = [values[key]]
    for key, val in values.items():
        expected = TenantContract.__dataclass_fields__[key].type
        if key in _TUPLE_KEYS or key == "allowed_backends":
            if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
                raise InputError(f"{source}: {key}: expected a list of strings")
            values[key] = frozenset(val) if key == "allowed_backends" else tuple(val)
        elif "int" in str(expected) and not (
            (val is None and "None" in str(expected))
            or (isinstance(val, int) and not isinstance(val, bool))
        ):
            raise InputError(f"{source}: {key}: expected an integer, got {val!r}")
        elif str(expected) == "bool" and not isinstance(val, bool):
            raise InputError(f"{source}: {key}: expected true or false, got {val!r}")
        elif str(expected).startswith("str") and not (
            isinstance(val, str) or (val is None and "None" in str(expected))
        ):
            raise InputError(f"{source}: {key}: expected a string, got {val!r}")
    missing = sorted(
        k
        for k, f in TenantContract.__dataclass_fields__.items()
        if k not in values and f.default is f.default_factory  # both MISSING
    )
    if missing:
        raise InputError(f"{source}: missing tenant key(s): {', '.join(missing)}")
    try:
        return TenantContract(**values)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from exc


def load_tenant_file(path: str | Path) -> TenantContract:
    """Read one tenant contract from a YAML/JSON file (until the state store holds them)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read tenant file: {exc}") from exc
    return tenant_from_dict(decode_document(text, source=str(p)), source=str(p))


@dataclass(frozen=True)
class AdmittedJob:
    """A spec that passed every rule of its tenant's contract; renderers take only this."""

    spec: JobSpec
    tenant: TenantContract
    workdir: str
    outputs: tuple[str, ...]
    log_dir: str  # where Slurm writes stdout/stderr: the (existing) workdir
    gpus_requested: int
    backend: str | None = None
    notes: tuple[str, ...] = field(default=())


def admit(
    spec: JobSpec,
    tenant: TenantContract,
    gpus_in_use: int,
    *,
    backend: str | None = None,
    resolve: Resolver = realpath_resolver,
    nodes_per_nvlink_domain: int = NVL72_NODES_PER_DOMAIN,
) -> AdmittedJob:
    """Apply the tenant contract to ``spec``; raise InputError naming the broken rule.

    ``resolve`` maps an absolute path to its real location (symlinks resolved
    where the path exists); pass :func:`scheduler.guards.lexical_resolver` when
    the paths are not visible from this host.
    """
    check_name(spec.name, DNS_LABEL, "name", "job name (DNS label)")
    if backend is not None and backend not in tenant.allowed_backends:
        raise InputError(
            f"backend: {backend!r} is not allowed for tenant {tenant.name!r} "
            f"(allowed: {', '.join(sorted(tenant.allowed_backends))})"
        )
    if spec.priority_class is PriorityClass.IN_HOUSE and not tenant.in_house:
        raise InputError(
            f"priority_class: 'in-house' is reserved for in-house tenants; "
            f"{tenant.name!r} is a tenant"
        )
    _check_sizes(spec, tenant, nodes_per_nvlink_domain)
    if (spec.command is None) == (spec.script is None):
        raise InputError("command/script: give exactly one of 'command' or 'script'")
    if spec.command is not None:
        check_argv(spec.command)
    if spec.script is not None:
        check_script(spec.script)
    check_env(spec.env)
    if spec.topology.rack is not None:
        check_name(spec.topology.rack, RACK_NAME, "topology.rack", "rack name")
    if spec.image is not None:
        check_name(spec.image, IMAGE_REF, "image", "container image reference")

    if gpus_in_use < 0:
        raise InputError(f"gpus_in_use: must be >= 0, got {gpus_in_use}")
    requested = spec.resources.gpus_total
    if gpus_in_use + requested > tenant.gpu_quota:
        raise QuotaExceededError(
            f"resources: {requested} GPUs requested + {gpus_in_use} in use exceeds tenant "
            f"{tenant.name!r} quota of {tenant.gpu_quota} GPUs"
        )

    roots = tenant.output_roots
    workdir = confine_path(
        spec.workdir or roots[0], roots, base=roots[0], field="workdir", resolve=resolve
    )
    outputs = tuple(
        confine_path(out, roots, base=workdir, field=f"outputs[{i}]", resolve=resolve)
        for i, out in enumerate(spec.outputs)
    )
    return AdmittedJob(
        spec=spec,
        tenant=tenant,
        workdir=workdir,
        outputs=outputs,
        log_dir=workdir,
        gpus_requested=requested,
        backend=backend,
    )


def _check_sizes(spec: JobSpec, tenant: TenantContract, domain_nodes: int) -> None:
    res = spec.resources
    if not 1 <= res.nodes <= tenant.max_nodes_per_job:
        raise InputError(
            f"resources.nodes: {res.nodes} is outside 1..{tenant.max_nodes_per_job} "
            f"for tenant {tenant.name!r}"
        )
    if not 0 <= res.gpus_per_node <= 8:
        raise InputError(f"resources.gpus_per_node: {res.gpus_per_node} is outside 0..8")
    if not 1 <= res.tasks_per_node * res.cpus_per_task <= 1024:
        raise InputError(
            "resources: tasks_per_node x cpus_per_task must be 1..1024 CPUs per node, got "
            f"{res.tasks_per_node * res.cpus_per_task}"
        )
    if not 1 <= res.time_limit_s <= tenant.max_time_limit_s:
        raise InputError(
            f"resources.time_limit: {res.time_limit_s} s is outside 1..{tenant.max_time_limit_s} s "
            f"for tenant {tenant.name!r}"
        )
    if res.memory_mib is not None and not 1 <= res.memory_mib <= 16 * 1024 * 1024:
        raise InputError(f"resources.memory: {res.memory_mib} MiB is outside 1 MiB..16 TiB")
    topo = spec.topology
    if topo.same_nvlink_domain and res.nodes > domain_nodes:
        raise InputError(
            f"topology.same_nvlink_domain: {res.nodes} nodes do not fit one NVLink domain "
            f"of {domain_nodes} nodes"
        )
    if topo.segment is not None:
        if not 1 <= topo.segment <= domain_nodes:
            raise InputError(
                f"topology.segment: {topo.segment} is outside 1..{domain_nodes} "
                "(nodes per NVLink domain)"
            )
        if res.nodes % topo.segment:
            raise InputError(
                f"topology.segment: {topo.segment} does not divide resources.nodes={res.nodes}"
            )
    if spec.retries.max_restarts < 0 or spec.retries.max_restarts > 100:
        raise InputError("retries.max_restarts: must be 0..100")


def check_job_limits(
    tenant: TenantContract, spec: JobSpec, *, pending: int, cpu_nodes_in_use: int
) -> None:
    """The limits beside the GPU quota: pending jobs, and nodes of jobs without GPUs.

    ``pending``: the tenant's jobs not yet started; ``cpu_nodes_in_use``: nodes held
    by its active 0-GPU jobs. Raises :class:`QuotaExceededError` (HTTP 409).
    """
    if pending >= tenant.max_pending_jobs:
        raise QuotaExceededError(
            f"tenant {tenant.name!r} has {pending} pending job(s); its limit "
            f"(max_pending_jobs) is {tenant.max_pending_jobs}"
        )
    if spec.resources.gpus_total == 0:
        nodes = spec.resources.nodes
        if cpu_nodes_in_use + nodes > tenant.cpu_nodes_allowed:
            raise QuotaExceededError(
                f"resources: {nodes} node(s) without GPUs + {cpu_nodes_in_use} in use exceeds "
                f"tenant {tenant.name!r} CPU node quota of {tenant.cpu_nodes_allowed}"
            )

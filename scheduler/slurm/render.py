"""Render an admitted job as the exact Slurm batch script the bridge submits (pure).

Every option comes from the bridge: identity (account, QOS, partition) from
the tenant contract, the rest from the validated spec. The tenant cannot
override them, by construction:

* the backends hand the options to Slurm where a script cannot override them:
  on the ``sbatch`` command line (:attr:`SlurmSubmission.sbatch_args`), which
  Slurm ranks above ``SBATCH_*`` variables and ``#SBATCH`` directives, or as
  slurmrestd/pyslurm job fields;
* the script's ``#SBATCH`` header repeats them for people and tools that read
  the script, and is closed by an executable line (:data:`DIRECTIVES_END`)
  before any tenant text: sbatch stops reading directives at the first line
  that is neither blank nor a comment, so nothing the tenant wrote is ever in
  the directive zone.

Values written into ``#SBATCH`` lines were checked against strict character
sets on admission; everything that reaches the shell body goes through
:func:`shlex.quote`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from dcops.errors import InputError
from scheduler.tenants.contract import NVL72_NODES_PER_DOMAIN, AdmittedJob

#: The executable line that closes sbatch's directive zone, before any tenant text.
DIRECTIVES_END = ": dcops: end of the sbatch directive zone"

#: Slurm release that added ``--segment`` (topology/block); 22.05/23.x lack it.
SEGMENT_SINCE = (24, 5)


@dataclass(frozen=True)
class SlurmSite:
    """What this Slurm installation can do (declared, not probed)."""

    supports_segment: bool = True
    pyxis: bool = False
    nodes_per_nvlink_domain: int = NVL72_NODES_PER_DOMAIN
    rack_is_feature: bool = True

    @classmethod
    def for_version(cls, major: int, minor: int, *, pyxis: bool = False) -> SlurmSite:
        return cls(supports_segment=(major, minor) >= SEGMENT_SINCE, pyxis=pyxis)

    @classmethod
    def parse_version(cls, version: str, *, pyxis: bool = False) -> SlurmSite:
        """``"24.11"`` or ``"22.05.8"`` -> the site's capabilities."""
        parts = version.split(".")
        if len(parts) < 2 or not all(p.isdigit() and p.isascii() for p in parts[:2]):
            raise InputError(f"slurm version: expected MAJOR.MINOR such as 24.11, got {version!r}")
        return cls.for_version(int(parts[0]), int(parts[1]), pyxis=pyxis)


@dataclass(frozen=True)
class SlurmSubmission:
    """What would be handed to ``sbatch`` (as ``user``, script on stdin, env as given)."""

    script: str
    env: dict[str, str]
    user: str
    options: tuple[tuple[str, str | None], ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def sbatch_args(self) -> list[str]:
        """The options as ``sbatch`` command-line arguments (they win over the script's)."""
        return option_args(self.options)


def option_args(
    options: tuple[tuple[str, str | None], ...] | list[tuple[str, str | None]],
) -> list[str]:
    return [f"--{key}" + ("" if val is None else f"={val}") for key, val in options]


def format_time_limit(seconds: int) -> str:
    """Seconds -> Slurm ``D-HH:MM:SS`` (rounded up to whole seconds)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def slurm_options(job: AdmittedJob, site: SlurmSite) -> list[tuple[str, str | None]]:
    """The ordered ``#SBATCH`` options for ``job``."""
    spec, tenant, res = job.spec, job.tenant, job.spec.resources
    opts: list[tuple[str, str | None]] = [
        ("job-name", spec.name),
        ("account", tenant.slurm_account),
        ("qos", tenant.slurm_qos),
        ("partition", ",".join(tenant.slurm_partitions)),
        ("nodes", str(res.nodes)),
        ("ntasks-per-node", str(res.tasks_per_node)),
        ("cpus-per-task", str(res.cpus_per_task)),
    ]
    if res.gpus_per_node:
        opts.append(("gres", f"gpu:{res.gpus_per_node}"))
    if res.memory_mib is not None:
        opts.append(("mem", f"{res.memory_mib}M"))
    opts += [
        ("time", format_time_limit(res.time_limit_s)),
        ("chdir", job.workdir),
        ("output", f"{job.log_dir}/{spec.name}-%j.out"),
        ("error", f"{job.log_dir}/{spec.name}-%j.err"),
    ]
    topo = spec.topology
    segment = topo.segment
    if topo.same_nvlink_domain:
        segment = res.nodes
    if segment is not None:
        if not site.supports_segment:
            field_name = "topology.segment" if topo.segment else "topology.same_nvlink_domain"
            raise InputError(
                f"{field_name}: this Slurm site has no --segment (added in Slurm 24.05 with "
                "topology/block); drop the topology request or use another site"
            )
        if segment > site.nodes_per_nvlink_domain:
            raise InputError(
                f"topology: {segment} nodes exceed one NVLink domain "
                f"({site.nodes_per_nvlink_domain} nodes)"
            )
        opts.append(("segment", str(segment)))
    if topo.rack is not None:
        if not site.rack_is_feature:
            raise InputError("topology.rack: this Slurm site does not tag nodes with rack names")
        opts.append(("constraint", topo.rack))
    requeue = spec.retries.max_restarts > 0 and spec.retries.on_node_failure
    opts.append(("requeue" if requeue else "no-requeue", None))
    if spec.image is not None and spec.script is not None:
        if not site.pyxis:
            raise InputError("image: this Slurm site has no container support (pyxis)")
        opts += _container_options(job)
    return opts


def _container_options(job: AdmittedJob) -> list[tuple[str, str | None]]:
    assert job.spec.image is not None
    mounts = ",".join(f"{root}:{root}" for root in job.tenant.output_roots)
    return [
        ("container-image", job.spec.image),
        ("container-mounts", mounts),
        ("container-workdir", job.workdir),
        ("no-container-mount-home", None),
    ]


def render_slurm(job: AdmittedJob, site: SlurmSite | None = None) -> SlurmSubmission:
    """The batch script, its ``#SBATCH`` options and the environment, for ``job``."""
    site = site or SlurmSite()
    spec = job.spec
    options = slurm_options(job, site)
    lines = ["#!/bin/bash"]
    lines += [f"#SBATCH --{key}" + ("" if val is None else f"={val}") for key, val in options]
    lines.append(f"# dcops: tenant={job.tenant.name} job={spec.name}")
    lines.append(DIRECTIVES_END)
    for key in sorted(spec.env):
        lines.append(f"export {key}={shlex.quote(spec.env[key])}")
    notes: list[str] = []
    if spec.retries.on_exit_codes:
        notes.append("exit-code retries are applied by the bridge when the job ends")
    if spec.command is not None:
        launcher = ["srun"]
        if spec.image is not None:
            if not site.pyxis:
                raise InputError("image: this Slurm site has no container support (pyxis)")
            launcher += [
                f"--{k}" + ("" if v is None else f"={v}") for k, v in _container_options(job)
            ]
        argv = [*launcher, *spec.command]
        lines.append("exec " + " ".join(shlex.quote(a) for a in argv))
    else:
        assert spec.script is not None
        lines.append("# dcops: tenant script follows")
        lines.append(spec.script.rstrip("\n"))
    return SlurmSubmission(
        script="\n".join(lines) + "\n",
        env=dict(spec.env),
        user=job.tenant.unix_user,
        options=tuple(options),
        notes=tuple(notes),
    )


def parse_sbatch_options(script: str) -> list[tuple[str, str | None]]:
    """``#SBATCH`` options as Slurm reads them: up to the first command line."""
    out: list[tuple[str, str | None]] = []
    for number, line in enumerate(script.split("\n")):
        stripped = line.strip()
        if number == 0 and stripped.startswith("#!"):
            continue
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        if stripped.startswith("#SBATCH"):
            for token in shlex.split(stripped[len("#SBATCH") :]):
                if token.startswith("--"):
                    key, eq, val = token[2:].partition("=")
                    out.append((key, val if eq else None))
                else:
                    out.append((token, None))
    return out

"""Suite ports for a burn-in across nodes: pick a launcher, build its engines.

``--launcher`` names: ``slurm`` (allocations and job steps), ``ssh`` (a
:class:`~dcops.ports.RemoteRunner`, SSH from config ``[ssh]``). ``auto`` picks
slurm when ``sbatch`` and ``srun`` are on PATH and ``scontrol ping`` reaches a
slurmctld (with config ``[slurm] conf``), else ssh.

No GPU probe runs on remote nodes yet: the suite then requires only the GEMM
checks per GPU (its params record ``"probe": false``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from burnin.remote.argv import SlurmOptions
from burnin.suite import SuitePorts
from dcops.errors import DcopsError, UnknownNameError
from dcops.inventory import Site
from dcops.ports import RemoteRunner

LAUNCHERS = ("auto", "slurm", "ssh")
PROBE_NOTE = "no remote GPU probe: GEMM checks only per GPU (no XID/ECC/throttle readings)"


@dataclass(frozen=True)
class RemoteOptions:
    """What ``burnin run --nodes/--rack`` needs beyond the suite options."""

    launcher: str = "auto"
    python: str = "python3"  # the interpreter on the nodes (dcops installed there)
    device: str = "auto"  # workers: cuda when torch sees a GPU, else CPU ranks / gloo
    threads: int | None = None  # torch CPU threads per worker (None: torch's default)
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    slurm_conf: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra worker environment (ssh)


def slurm_reachable(slurm_conf: str | None, runner: RemoteRunner | None = None) -> bool:
    """True when Slurm's client tools are here and ``scontrol ping`` finds a slurmctld UP."""
    if not (shutil.which("sbatch") and shutil.which("srun") and shutil.which("scontrol")):
        return False
    from dcops.slurm.commands import SlurmCommands

    try:
        res = SlurmCommands(runner=runner, slurm_conf=slurm_conf).run(
            ["scontrol", "ping"], timeout_s=15.0
        )
    except DcopsError:
        return False
    return res.ok and " is UP" in res.stdout


def choose_launcher(name: str, slurm_conf: str | None) -> str:
    """``auto`` -> ``slurm`` or ``ssh`` (see the module docstring); others checked."""
    if name not in LAUNCHERS:
        raise UnknownNameError("launcher", name, LAUNCHERS)
    if name != "auto":
        return name
    return "slurm" if slurm_reachable(slurm_conf) else "ssh"


def remote_ports(
    site: Site,
    nodes: Sequence[str],
    options: RemoteOptions,
    *,
    on_close: Callable[[Callable[[], Any]], Any],
    ssh_runner: Callable[[], RemoteRunner] | None = None,
    address: Callable[[str], str] | None = None,
) -> SuitePorts:
    """Ports running workers on ``nodes`` through the chosen launcher.

    ``on_close`` registers what must be closed when the ports are done (the Slurm
    allocations, an SSH runner made here). ``ssh_runner`` makes the runner for ``ssh``
    (the CLI's: SshRunner from config, closed by its maker); ``address`` turns a node
    name into the address ranks rendezvous at (ssh).
    """
    launcher = choose_launcher(options.launcher, options.slurm_conf)
    if launcher == "slurm":
        from burnin.remote.slurm import SlurmCollectiveEngine, SlurmGemmEngine, SlurmLauncher

        la = SlurmLauncher(
            site, nodes, options=options.slurm, slurm_conf=options.slurm_conf,
            python=options.python, device=options.device, threads=options.threads,
        )  # fmt: skip
        on_close(la.close)
        return SuitePorts(
            site=site,
            gemm=SlurmGemmEngine(la),
            collectives=SlurmCollectiveEngine(la),
            probe=None,
            backend="slurm",
        )
    from burnin.remote.ssh import SshCollectiveEngine, SshGemmEngine

    runner: RemoteRunner
    if ssh_runner is None:
        from dcops.remote.ssh import SshRunner

        made = SshRunner()
        on_close(made.close)
        runner = made
    else:
        runner = ssh_runner()
    common: dict[str, Any] = {
        "python": options.python, "device": options.device, "threads": options.threads,
        "env": options.env,
    }  # fmt: skip
    return SuitePorts(
        site=site,
        gemm=SshGemmEngine(runner, **common),
        collectives=SshCollectiveEngine(runner, address=address, **common),
        probe=None,
        backend="ssh",
    )

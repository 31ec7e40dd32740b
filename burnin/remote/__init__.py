"""Burn-in across nodes: launchers (Slurm, SSH) and the remote engines they drive.

::

    ports = remote_ports(site, nodes, RemoteOptions(launcher="slurm"), on_close=stack.callback)
    run = run_suite(ports, thresholds, SuiteOptions(nodes=tuple(nodes)))

* :mod:`burnin.remote.argv`: pure argv builders (workers, salloc, srun, env);
* :mod:`burnin.remote.slurm`: :class:`SlurmLauncher` (one allocation per NVLink
  domain), :class:`SlurmGemmEngine`, :class:`SlurmCollectiveEngine`;
* :mod:`burnin.remote.ssh`: :class:`SshGemmEngine`, :class:`SshCollectiveEngine`;
* :mod:`burnin.remote.rank`: the per-task entry point ``srun`` starts;
* :mod:`burnin.remote.results`: worker output -> records or one error;
* :mod:`burnin.remote.ports`: launcher choice and the suite ports.

Workers run ``python3 -m burnin.engines.gemm_worker`` / ``collective_worker`` on
the nodes: dcops (with torch) must be installed there.
"""

from __future__ import annotations

from burnin.remote.argv import SlurmOptions
from burnin.remote.ports import LAUNCHERS, RemoteOptions, choose_launcher, remote_ports

__all__ = ["LAUNCHERS", "RemoteOptions", "SlurmOptions", "choose_launcher", "remote_ports"]

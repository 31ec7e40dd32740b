"""Ports for a burn-in of this machine: its GPUs through torch (CUDA, NCCL) and NVML,
or CPU ranks standing in for GPUs (torch on CPU, gloo). The same suite code runs on
both; only the device and backend names differ, chosen by what is present.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from burnin.engines.collectives import TorchCollectiveEngine
from burnin.engines.gemm import TorchGemmEngine
from burnin.suite import SuitePorts
from dcops.inventory.local import detect_gpus, local_hostname, local_site
from dcops.ports import GpuProbe


def _nvml_probe(on_close: Callable[[Callable[[], Any]], Any]) -> GpuProbe | None:
    try:
        from dcops.nvml.probe import NvmlProbe
    except ImportError:  # pragma: no cover - the NVML adapter ships with dcops
        return None
    probe = NvmlProbe()
    on_close(probe.close)
    return probe


def local_ports(*, ranks: int = 2, on_close: Callable[[Callable[[], Any]], Any]) -> SuitePorts:
    """Ports for this machine. With GPUs: CUDA + NVML probe; without: ``ranks`` CPU ranks.

    ``on_close`` registers what must be closed when the ports are done (the NVML probe).
    """
    gpus = detect_gpus()
    host = local_hostname()
    if gpus.count:
        site = local_site(gpus, hostname=host)
        return SuitePorts(
            site=site,
            gemm=TorchGemmEngine(device="cuda", hostname=host),
            collectives=TorchCollectiveEngine(device="cuda", hostname=host),
            probe=_nvml_probe(on_close),
            backend="local-cuda",
        )
    site = local_site(gpus, hostname=host, cpu_ranks=ranks)
    return SuitePorts(
        site=site,
        gemm=TorchGemmEngine(device="cpu", cpu_ranks=ranks, hostname=host),
        collectives=TorchCollectiveEngine(device="cpu", hostname=host) if ranks > 1 else None,
        probe=None,
        backend="local-cpu",
    )

"""The embedded default site: this machine alone.

With NVML present the node's GPUs are counted and the SKU guessed from the
GPU name; otherwise the machine is a CPU-only node (SKU ``cpu``, one rank).
NVML (nvidia-ml-py) is imported lazily and any failure of it means "no GPU".
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass

from dcops.inventory.model import Rack, Site

#: GPU product-name fragments -> SKU profile, most specific first.
_SKU_BY_NAME = (("GB200", "gb200-nvl72"), ("B200", "b200"), ("H200", "h200"), ("H100", "h100"))


@dataclass(frozen=True)
class LocalGpus:
    count: int
    name: str | None
    driver_version: str | None


def detect_gpus() -> LocalGpus:
    """Count this machine's NVIDIA GPUs through NVML; zero when NVML is absent or fails."""
    try:
        import pynvml
    except ImportError:
        return LocalGpus(0, None, None)
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return LocalGpus(0, None, None)
    try:
        count = int(pynvml.nvmlDeviceGetCount())
        name = (
            str(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))) if count else None
        )
        driver = str(pynvml.nvmlSystemGetDriverVersion())
        return LocalGpus(count, name, driver)
    except pynvml.NVMLError:
        return LocalGpus(0, None, None)
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def sku_for_gpu_name(name: str | None) -> str | None:
    if not name:
        return None
    upper = name.upper()
    for fragment, sku in _SKU_BY_NAME:
        if fragment in upper:
            return sku
    return None


def local_hostname() -> str:
    """This machine's short host name: the node name of the local site."""
    return socket.gethostname().split(".")[0] or "localhost"


def local_site(
    gpus: LocalGpus | None = None, hostname: str | None = None, cpu_ranks: int = 1
) -> Site:
    """A one-node site for this machine (its GPUs through NVML, else a CPU-only node).

    Without GPUs, ``cpu_ranks`` CPU ranks stand in for GPUs (burn-in ``--ranks``).
    """
    gpus = gpus if gpus is not None else detect_gpus()
    host = hostname or local_hostname()
    sku = sku_for_gpu_name(gpus.name) if gpus.count else None
    if gpus.count and sku is None:
        sku = "h100"  # an unknown NVIDIA GPU: closest generic profile; thresholds stay relative
    rack = Rack(
        name="local",
        sku=sku or "cpu",
        nodes=(host,),
        gpus_per_node=gpus.count if gpus.count else cpu_ranks,
        domain=host,
    )
    return Site(
        name="local",
        sku=rack.sku,
        racks=(rack,),
        description=f"this machine ({gpus.name or 'no NVIDIA GPU: CPU ranks stand in'})",
        source="local",
    )

"""SKU profiles: the physics of a kind of machine, loaded from packaged YAML data.

A profile says how many GPUs a node (compute tray) holds, how many nodes a rack
holds, what the NVLink domain is, and nominal per-GPU figures (TFLOPS per dtype,
NVLink bandwidth, power, clocks, temperatures). The simulator measures from
these; burn-in seeds its thresholds from them. Sites may add profiles from a
directory (``sku_dirs`` in config).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dcops.docload import load_yaml
from dcops.errors import InputError, UnknownNameError


@dataclass(frozen=True)
class GpuProfile:
    name: str
    memory_gib: float
    hbm_bandwidth_gbps: float
    tflops: dict[str, float]
    nvlink_gbps: float
    power_w: float
    idle_power_w: float
    max_sm_clock_mhz: float
    temperature_c: float
    slowdown_temperature_c: float
    nvlink_links: int


@dataclass(frozen=True)
class CollectiveProfile:
    all_reduce_busbw_gbps: float
    intra_node_busbw_gbps: float
    inter_domain_busbw_gbps: float


@dataclass(frozen=True)
class SkuProfile:
    name: str
    description: str
    gpus_per_node: int
    nodes_per_rack: int
    nvlink_domain: str  # "rack" (NVL72) or "node" (HGX)
    gpu: GpuProfile
    collectives: CollectiveProfile

    @property
    def gpus_per_rack(self) -> int:
        return self.gpus_per_node * self.nodes_per_rack

    @property
    def cpu_only(self) -> bool:
        """No NVIDIA GPUs: CPU ranks stand in (the ``cpu`` profile)."""
        return self.gpu.name.upper() == "CPU"


def _from_mapping(data: dict[str, Any], origin: str) -> SkuProfile:
    try:
        gpu = GpuProfile(**{**data["gpu"], "tflops": dict(data["gpu"]["tflops"])})
        coll = CollectiveProfile(**data["collectives"])
        profile = SkuProfile(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            gpus_per_node=int(data["gpus_per_node"]),
            nodes_per_rack=int(data["nodes_per_rack"]),
            nvlink_domain=str(data["nvlink_domain"]),
            gpu=gpu,
            collectives=coll,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{origin}: bad SKU profile: {exc}") from exc
    if profile.nvlink_domain not in ("rack", "node"):
        raise InputError(f"{origin}: nvlink_domain must be 'rack' or 'node'")
    return profile


@cache
def _packaged() -> dict[str, SkuProfile]:
    found: dict[str, SkuProfile] = {}
    for entry in resources.files("dcops.data").joinpath("skus").iterdir():
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text(encoding="utf-8"))
            prof = _from_mapping(data, f"dcops/data/skus/{entry.name}")
            found[prof.name] = prof
    return found


def load_sku_dir(path: Path) -> dict[str, SkuProfile]:
    """Read every ``*.yaml`` profile in a site directory."""
    found: dict[str, SkuProfile] = {}
    for file in sorted(path.glob("*.yaml")):
        try:
            data = load_yaml(file.read_text(encoding="utf-8"), source=str(file))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{file}: cannot read SKU profile: {exc}") from exc
        prof = _from_mapping(data, str(file))
        found[prof.name] = prof
    return found


def known_skus() -> list[str]:
    return sorted(_packaged())


def get_sku(name: str, extra: dict[str, SkuProfile] | None = None) -> SkuProfile:
    """The profile called ``name``; site profiles (``extra``) win over packaged ones."""
    table = {**_packaged(), **(extra or {})}
    try:
        return table[name]
    except KeyError:
        raise UnknownNameError("SKU", name, list(table)) from None


def cpu_only(name: str) -> bool:
    """Whether SKU ``name`` has no NVIDIA GPUs (an unknown SKU is assumed to have them)."""
    try:
        return get_sku(name).cpu_only
    except UnknownNameError:
        return False

"""The site model: racks of nodes (compute trays) holding GPUs, grouped in NVLink domains."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from dcops.errors import UnknownNameError, UnknownNodeError
from dcops.hostlist import compress, expand
from dcops.measurements import GpuRef


@dataclass(frozen=True)
class Rack:
    """One rack; ``nodes`` are in tray order (tray 1 first)."""

    name: str
    sku: str
    nodes: tuple[str, ...]
    gpus_per_node: int
    domain: str = ""  # NVLink domain of the whole rack (NVL72); empty: each node is its own
    location: str = ""
    power_capacity_kw: float | None = None


@dataclass(frozen=True)
class NodeInfo:
    """Where a node sits: its rack, tray index (1-based), GPUs and NVLink domain."""

    name: str
    rack: str
    tray: int
    gpus_per_node: int
    sku: str
    domain: str

    @property
    def gpus(self) -> list[GpuRef]:
        return [GpuRef(self.name, i) for i in range(self.gpus_per_node)]


@dataclass(frozen=True)
class CapacitySettings:
    """The site's ``capacity:`` section (docs/capacity.md); None where the site says nothing."""

    segment_sizes: tuple[int, ...] | None = None
    promised_segment: int | None = None
    certificate_max_age_days: float | None = None
    row_power_budget_kw: float | None = None
    spare_trays: int | None = None  # spare trays on the shelf, site-wide


@dataclass(frozen=True)
class Site:
    """A fleet: named racks of nodes. Build with :func:`dcops.inventory.load_site`."""

    name: str
    sku: str
    racks: tuple[Rack, ...]
    description: str = ""
    source: str = ""  # the file it came from, or "local" / "simulated"
    capacity: CapacitySettings = CapacitySettings()

    @cached_property
    def _nodes(self) -> dict[str, NodeInfo]:
        table: dict[str, NodeInfo] = {}
        for rack in self.racks:
            for tray, node in enumerate(rack.nodes, start=1):
                table[node] = NodeInfo(
                    name=node,
                    rack=rack.name,
                    tray=tray,
                    gpus_per_node=rack.gpus_per_node,
                    sku=rack.sku,
                    domain=rack.domain or node,
                )
        return table

    @cached_property
    def _racks(self) -> dict[str, Rack]:
        return {rack.name: rack for rack in self.racks}

    def nodes(self) -> list[str]:
        """Every node, rack by rack, in tray order."""
        return list(self._nodes)

    def node(self, name: str) -> NodeInfo:
        try:
            return self._nodes[name]
        except KeyError:
            raise UnknownNodeError(f"node {name!r} is not in site {self.name!r}") from None

    def rack(self, name: str) -> Rack:
        try:
            return self._racks[name]
        except KeyError:
            raise UnknownNameError("rack", name, list(self._racks)) from None

    def rack_of(self, node: str) -> Rack:
        return self._racks[self.node(node).rack]

    def domain_of(self, node: str) -> str:
        return self.node(node).domain

    def domains(self) -> dict[str, list[str]]:
        """NVLink domain name -> its nodes, in order."""
        out: dict[str, list[str]] = {}
        for info in self._nodes.values():
            out.setdefault(info.domain, []).append(info.name)
        return out

    def gpus(self, node: str) -> list[GpuRef]:
        return self.node(node).gpus

    def all_gpus(self) -> list[GpuRef]:
        return [gpu for info in self._nodes.values() for gpu in info.gpus]

    def select(self, hostlist: str) -> list[str]:
        """The nodes named by a hostlist expression; unknown names are an error, listed."""
        names = expand(hostlist)
        unknown = [n for n in names if n not in self._nodes]
        if unknown:
            raise UnknownNodeError(
                f"not in site {self.name!r}: {compress(unknown)} ({len(unknown)} node(s))"
            )
        return names

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of ``dcops inventory show --json``."""
        racks = []
        for rack in self.racks:
            nodes = []
            for node in rack.nodes:
                info = self._nodes[node]
                nodes.append(
                    {
                        "name": node,
                        "tray": info.tray,
                        "domain": info.domain,
                        "gpus": [{"index": g.index, "name": str(g)} for g in info.gpus],
                    }
                )
            racks.append(
                {
                    "name": rack.name,
                    "sku": rack.sku,
                    "hostlist": compress(rack.nodes),
                    "domain": self._nodes[rack.nodes[0]].domain if rack.nodes else "",
                    "gpus_per_node": rack.gpus_per_node,
                    "location": rack.location or None,
                    "power_capacity_kw": rack.power_capacity_kw,
                    "nodes": nodes,
                }
            )
        return {
            "site": self.name,
            "sku": self.sku,
            "description": self.description or None,
            "source": self.source,
            "totals": {
                "racks": len(self.racks),
                "nodes": len(self._nodes),
                "gpus": sum(i.gpus_per_node for i in self._nodes.values()),
                "nvlink_domains": len(self.domains()),
            },
            "racks": racks,
        }

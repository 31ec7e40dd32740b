"""SimFleet: one simulated fleet handing out the site and the four simulated adapters.

::

    fleet = SimFleet.from_file("examples/scenarios/demo.yaml")
    fleet.site                      # dcops.inventory.Site
    fleet.probe.read("sim-r01-t14") # GpuProbe
    fleet.gemm.run(...)             # GemmEngine
    fleet.collectives.run(...)      # CollectiveEngine
    fleet.runner.run(host, argv, timeout_s=5)   # RemoteRunner
    fleet.clock.advance(60)         # the virtual clock (the default): energy counters grow

Two fleets built from the same scenario give identical measurements for the
same calls; another seed gives other numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from dcops.inventory import Site
from dcops.measurements import GpuRef
from dcops.sim.clock import Clock, VirtualClock
from dcops.sim.collectives import SimCollectiveEngine
from dcops.sim.faults import Fault
from dcops.sim.gemm import DEFAULT_SIZE, SimGemmEngine
from dcops.sim.model import FleetModel
from dcops.sim.probe import SimGpuProbe
from dcops.sim.runner import SimRemoteRunner
from dcops.sim.scenario import Scenario, load_scenario, scenario_from_data


class SimFleet:
    """A simulated fleet. ``clock`` defaults to a virtual clock at the scenario's start."""

    def __init__(
        self, scenario: Scenario, *, clock: Clock | None = None, gemm_size: int = DEFAULT_SIZE
    ) -> None:
        self.scenario = scenario
        self.model = FleetModel(scenario, clock)
        self.probe = SimGpuProbe(self.model)
        self.gemm = SimGemmEngine(self.model, size=gemm_size)
        self.collectives = SimCollectiveEngine(self.model)
        self.runner = SimRemoteRunner(self.model)

    @classmethod
    def from_file(cls, path: Path | str, *, clock: Clock | None = None) -> SimFleet:
        """Build from a scenario file (ScenarioError if it is bad)."""
        return cls(load_scenario(path), clock=clock)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, clock: Clock | None = None, base_dir: Path | None = None
    ) -> SimFleet:
        """Build from a scenario mapping, validated as a file would be."""
        return cls(scenario_from_data(data, base_dir=base_dir), clock=clock)

    @property
    def site(self) -> Site:
        return self.scenario.site

    @property
    def clock(self) -> Clock:
        return self.model.clock

    @property
    def virtual_clock(self) -> VirtualClock:
        """The fleet's virtual clock; TypeError if the fleet runs on another clock."""
        clock = self.model.clock
        if not isinstance(clock, VirtualClock):
            raise TypeError("this fleet does not run on a virtual clock")
        return clock

    def advance(self, seconds: float) -> float:
        """Move the virtual clock forward (faults with ``at_s`` may appear); the new time."""
        now = self.virtual_clock.advance(seconds)
        self.model.refresh()
        return now

    def set_load(self, nodes: Iterable[str] | None, load: float) -> None:
        """Set the utilisation (0..1) of every GPU of ``nodes`` (None: the whole fleet)."""
        if nodes is None:
            self.model.set_load(None, load)
            return
        gpus = [g for node in nodes for g in self.site.gpus(node)]
        self.model.set_load(self.model.gpu_indexes(gpus), load)

    def inject(self, fault: Fault) -> None:
        """Add a fault now (or at ``fault.at_s`` after the scenario start)."""
        self.model.inject(fault)

    def repair(self, node: str, kinds: Iterable[str] | None = None) -> int:
        """Clear ``node``'s faults (of ``kinds`` only, if given); how many were cleared."""
        return self.model.clear_faults(node, kinds)

    def faults(self) -> list[Fault]:
        return self.model.faults()

    def gpus(self, nodes: Sequence[str] | None = None) -> list[GpuRef]:
        """GPUs of ``nodes`` (default: every GPU of the site), in site order."""
        names = self.site.nodes() if nodes is None else list(nodes)
        return [g for n in names for g in self.site.gpus(n)]

    def close(self) -> None:
        """Release callers blocked on hung nodes with no timeout (they get CommandTimeout)."""
        self.model.hangs.release()

    def __enter__(self) -> SimFleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

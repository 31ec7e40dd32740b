"""The fleet simulator: seeded, fault-injectable adapters behind the same ports as real ones.

Detectors never see the simulator's hidden state, only the measurements its
adapters return. See ``docs/simulator.md`` for the scenario format, the fault
kinds and where each shows up.
"""

from dcops.sim.clock import Clock, VirtualClock, WallClock
from dcops.sim.collectives import SimCollectiveEngine
from dcops.sim.faults import FAULT_KINDS, Fault
from dcops.sim.fleet import SimFleet
from dcops.sim.gemm import SimGemmEngine, healthy_checksum
from dcops.sim.model import FleetModel
from dcops.sim.probe import SimGpuProbe
from dcops.sim.runner import SimRemoteRunner
from dcops.sim.scenario import Scenario, load_scenario, scenario_from_data

__all__ = [
    "FAULT_KINDS",
    "Clock",
    "Fault",
    "FleetModel",
    "Scenario",
    "SimCollectiveEngine",
    "SimFleet",
    "SimGemmEngine",
    "SimGpuProbe",
    "SimRemoteRunner",
    "VirtualClock",
    "WallClock",
    "healthy_checksum",
    "load_scenario",
    "scenario_from_data",
]

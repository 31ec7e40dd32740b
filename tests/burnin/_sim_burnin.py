"""Run the product burn-in suite over a SimFleet (shared by the scenario tests and bench)."""

from __future__ import annotations

from burnin.profiles import Thresholds
from burnin.suite import SuiteOptions, SuiteRun, flagged_gpus, run_suite, sim_ports
from dcops.sim import SimFleet

__all__ = ["burnin_sim", "flagged_gpus"]


def burnin_sim(fleet: SimFleet, th: Thresholds, *, probe_timeout_s: float = 0.02) -> SuiteRun:
    options = SuiteOptions(nodes=tuple(fleet.site.nodes()), probe_timeout_s=probe_timeout_s)
    return run_suite(sim_ports(fleet), th, options)

"""An engine context over the simulator, as ``dcops runbook --sim`` builds it (no click)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from burnin.suite import sim_ports
from dcops.actions import ActionSettings, Actuator, ExecContext, topology_of
from dcops.cli.runbook_ports import HealthChecker, SuiteRecertifier
from dcops.node_actions import NodeActions
from dcops.node_actions.stored import StoredNodeActions
from dcops.sim.world import SimWorld, open_world, save_world
from dcops.store import AuditLog, Store
from runbooks.context import EngineContext
from runbooks.evidence import DirectorySink
from runbooks.runs import Limits

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "remediation.yaml"


@dataclass
class SimRig:
    tmp: Path
    store: Store
    world: SimWorld
    ctx: EngineContext
    scenario: Path

    @property
    def node_actions(self) -> NodeActions:
        """The scheduler the engine acts through (``ctx.node_actions``; a rig always has one)."""
        assert self.ctx.node_actions is not None
        return self.ctx.node_actions

    def approve(self, action_id: str) -> Any:
        """What ``dcops actions approve`` does, in another 'process' (its own store and fleet)."""
        with Store(self.tmp / "state.db") as other:
            sched = StoredNodeActions(other, self.world.fleet.site.nodes(), user="bob")
            actuator = Actuator(AuditLog(other, actor="bob"), node_actions=sched)
            result = actuator.approve(action_id, "bob")
        reopened = open_world(self.store, self.scenario)  # the fleet as the approval left it
        if isinstance(self.ctx.node_actions, StoredNodeActions):  # and its scheduler
            fresh = StoredNodeActions(self.store, self.world.fleet.site.nodes())
            self.ctx.node_actions._nodes.update(fresh._nodes)
        self.world.fleet.model.set_faults(reopened.fleet.faults())
        self.world.maintenance.booting_until = reopened.maintenance.booting_until
        return result


def sim_rig(
    tmp: Path,
    *,
    levels: tuple[str, ...] = (),
    limits: Limits | None = None,
    scenario: Path = SCENARIO,
    sched: NodeActions | None = None,
    approval_ttl_s: float = 86400.0,
) -> SimRig:
    store = Store(tmp / "state.db")
    world = open_world(store, scenario)
    audit = AuditLog(store, actor="alice")
    site = world.fleet.site
    if sched is None:
        sched = StoredNodeActions(store, site.nodes(), user="dcops")
    actuator = Actuator(
        audit,
        node_actions=sched,
        settings=ActionSettings(levels=levels, approval_ttl_s=approval_ttl_s),
        topology=topology_of(site),
        lock_dir=tmp / "locks",
        context=ExecContext(node_actions=sched, runner=world.fleet.runner),
    )
    ctx = EngineContext(
        store=store,
        audit=audit,
        actuator=actuator,
        runner=world.fleet.runner,
        sink=DirectorySink(tmp / "tickets"),
        data_dir=tmp,
        requested_by="alice",
        node_actions=sched,
        checker=HealthChecker(world.fleet.runner, site),
        recertifier=SuiteRecertifier(lambda *_: nullcontext(sim_ports(world.fleet))),
        limits=limits or Limits(),
        clock=world.fleet.clock.now,
        sleep=world.maintenance.sleep,
        runner_spec={"kind": "sim", "scenario": str(scenario), "state_db": str(tmp / "state.db")},
        on_change=lambda: save_world(store, world),
        rack_of=lambda node: site.node(node).rack,
    )
    return SimRig(tmp, store, world, ctx, scenario)

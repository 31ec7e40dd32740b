"""The runbook engine's ports from config and mode: the composition root for ``dcops runbook``.

``--sim SCENARIO``: the simulated fleet as the state store keeps it (its
runner answers every command of the library; waits advance its virtual
clock), the stored simulated scheduler, health checks and a burn-in on the
simulator; the fleet is saved after every step. Otherwise: the SSH runner
from ``[ssh]``, the scheduler from ``[slurm] node_actions``, health checks
over SSH, and a burn-in over SSH. Every action goes through the actuator
(config ``[actions]``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import get_config, load_current_site, open_audit, resolve_node_actions
from dcops.verify import Verification

if TYPE_CHECKING:
    from dcops.config import Config
    from dcops.inventory import Site
    from dcops.ports import RemoteRunner
    from dcops.remote.ssh_settings import SshSettings
    from dcops.sim import SimFleet
    from runbooks.context import EngineContext


class HealthChecker:
    """:class:`dcops.verify.NodeChecker` over the health checks (agentless, one node)."""

    def __init__(self, runner: RemoteRunner, site: Site) -> None:
        self.runner = runner
        self.site = site

    def check(self, node: str, checks: Sequence[str], *, timeout_s: float) -> Verification:
        from health.base import CheckStatus, get_checks
        from health.sweep import node_facts
        from health.sweep_collect import collect

        facts = node_facts(self.site, [node], {node: None}, {})
        found = collect(
            self.runner, get_checks(list(checks)), facts, timeout_s=timeout_s, concurrency=1
        )
        result = found[node]
        if result.error:
            return Verification(False, result.error, error=result.error)
        findings = tuple(f.to_dict() for f in result.findings)
        errors = [f for f in result.findings if f.status is CheckStatus.ERROR]
        bad = [f for f in result.findings if f.status in (CheckStatus.FAIL, CheckStatus.WARN)]
        if bad:
            return Verification(False, "; ".join(f"{f.check}: {f.message}" for f in bad), findings)
        if errors:
            why = "; ".join(f"{f.check}: {f.message}" for f in errors)
            return Verification(False, why, findings, error=why)
        return Verification(True, f"{', '.join(checks)}: ok", findings)


def check_commands(node: str, checks: Sequence[str]) -> list[list[str]]:
    """The argv lists the named health checks run on ``node`` (for plans)."""
    from health.base import NodeFacts, get_checks

    facts = NodeFacts(node=node, sku="", expected_gpus=0)  # commands depend on neither
    out: list[list[str]] = []
    for check in get_checks(list(checks)):
        for argv in check.commands(facts):
            if list(argv) not in out:
                out.append(list(argv))
    return out


class SimRecertifier:
    """:class:`dcops.verify.Recertifier`: the burn-in suite on the simulated node."""

    def __init__(self, fleet: SimFleet) -> None:
        self.fleet = fleet

    def recertify(
        self, node: str, *, timeout_s: float, rounds: int | None = None,
        duration_s: float | None = None,
    ) -> Verification:  # fmt: skip
        from burnin.profiles import load_thresholds
        from burnin.suite import SuiteOptions, run_suite, sim_ports

        ports = sim_ports(self.fleet)
        thresholds = load_thresholds(ports.site.sku)
        options = SuiteOptions(
            nodes=(node,), gemm_rounds=rounds, gemm_duration_s=duration_s, localize=False
        )
        return _verdict(run_suite(ports, thresholds, options))


class SshRecertifier:
    """:class:`dcops.verify.Recertifier`: the burn-in suite on one node over SSH."""

    def __init__(self, ctx: click.Context, site_path: str | None) -> None:
        self.ctx = ctx
        self.site_path = site_path

    def recertify(
        self, node: str, *, timeout_s: float, rounds: int | None = None,
        duration_s: float | None = None,
    ) -> Verification:  # fmt: skip
        from burnin.profiles import load_thresholds
        from burnin.suite import SuiteOptions, run_suite
        from dcops.cli.burnin_run import RemoteChoice, _remote_ports

        rb = get_config(self.ctx).runbooks
        closers: list[Any] = []
        try:
            choice = RemoteChoice("ssh", rb.burnin_python, None, False, rounds, duration_s)
            ports = _remote_ports(self.ctx, self.site_path, node, None, choice, closers)
            thresholds = load_thresholds(ports.site.sku, override=rb.burnin_thresholds)
            options = SuiteOptions(
                nodes=(node,), gemm_rounds=rounds, gemm_duration_s=duration_s, localize=False
            )
            run = run_suite(ports, thresholds, options)
        finally:
            for close in closers:
                close()
        return _verdict(run)


def _verdict(run: Any) -> Verification:
    status = str(run.verdict.status.value)
    findings = tuple(
        {"target": f.target, "status": f.status.value, "message": f.message}
        for f in run.findings
        if f.status.value != "pass"
    )[:20]
    backend = run.params.get("backend", "?")
    tflops = [round(v, 3) for v in run.gemm_tflops.values()]
    summary = f"burn-in {status} on {backend} (GEMM TFLOP/s per GPU: {tflops})"
    if status == "error":
        return Verification(False, summary, findings, error="burn-in could not judge")
    return Verification(status == "pass", summary, findings)


def _ssh_settings(cfg: Config) -> SshSettings:
    from dcops.remote.ssh_settings import SshSettings

    return SshSettings.from_config(cfg.ssh)


def build_context(
    ctx: click.Context,
    *,
    scenario: str | None,
    site_path: str | None = None,
    node_actions_name: str | None = None,
    closers: list[Callable[[], None]],
) -> EngineContext:
    """An :class:`EngineContext` for the sim (``scenario``) or the real fleet."""
    from pathlib import Path

    from dcops.actions import Actuator, ExecContext, topology_of
    from runbooks.context import EngineContext
    from runbooks.evidence import make_sink
    from runbooks.runs import Limits

    cfg = get_config(ctx)
    audit = open_audit(ctx)
    store = audit.store
    closers.append(store.close)
    rb = cfg.runbooks
    limits = Limits(rb.max_per_rack, rb.max_fleet, rb.max_remediations_7d)
    sink = make_sink(rb.escalate_webhook, rb.escalate_dir, cfg.data_dir)
    if scenario:
        from dcops.sim.world import open_world, save_world

        world = open_world(store, scenario)
        closers.append(world.fleet.close)
        site = world.fleet.site
        runner: RemoteRunner = world.fleet.runner
        actions = resolve_node_actions(cfg, node_actions_name, site, store, simulated=True)
        spec: dict[str, Any] = {
            "kind": "sim",
            "scenario": str(Path(scenario).resolve()),
            "state_db": str(cfg.state_path.resolve()),
        }
        clock: Callable[[], float] = world.fleet.clock.now
        sleep: Callable[[float], None] = world.maintenance.sleep
        on_change: Callable[[], None] | None = lambda: save_world(store, world)  # noqa: E731
        closers.insert(0, lambda: save_world(store, world))
        recertifier: Any = SimRecertifier(world.fleet)
    else:
        import time

        from dcops.remote.ssh import SshRunner

        site = load_current_site(ctx, site_path)
        settings = _ssh_settings(cfg)
        ssh = SshRunner(settings)
        closers.append(ssh.close)
        runner = ssh
        actions = resolve_node_actions(cfg, node_actions_name, site, store, simulated=False)
        spec = {"kind": "ssh", "settings": dataclasses.asdict(settings)}
        clock, sleep, on_change = time.time, time.sleep, None
        recertifier = SshRecertifier(ctx, site_path)
    actuator = Actuator(
        audit,
        node_actions=actions,
        settings=cfg.actions,
        topology=topology_of(site),
        lock_dir=cfg.data_dir / "locks",
        context=ExecContext(node_actions=actions, runner=runner),
    )

    def rack_of(node: str) -> str | None:
        try:
            return site.node(node).rack
        except Exception:  # noqa: BLE001 - a node outside the site has no rack limit
            return None

    return EngineContext(
        store=store,
        audit=audit,
        actuator=actuator,
        runner=runner,
        sink=sink,
        data_dir=cfg.data_dir,
        requested_by=audit.actor,
        node_actions=actions,
        checker=HealthChecker(runner, site),
        recertifier=recertifier,
        limits=limits,
        clock=clock,
        sleep=sleep,
        runner_spec=spec,
        on_change=on_change,
        rack_of=rack_of,
        management_host=rb.management_host,
    )

"""The composition root: config and mode turned into the ports every command uses.

Every command that reaches the fleet gets its adapters here and nowhere else,
so a command only builds its request, calls the library and renders::

    with Wiring.of(ctx, Where.choose(scenario=scenario, local=local, site_path=site)) as w:
        report = run_sweep(SweepPorts(runner=w.runner(), site=w.site(), ...), ...)

Modes (:class:`Mode`):

``sim``
    ``--sim SCENARIO``: the simulated fleet as the state store keeps it (what
    runbooks did to it persists, :mod:`dcops.sim.world`), its runner, probe and
    engines, and the in-memory scheduler kept in the store
    (:mod:`dcops.node_actions.stored`), so a drain by one command is there for
    the next.
``local``
    ``--local``: this machine alone (its GPUs, or CPU ranks standing in).
``ssh``
    the nodes of the site (``--site`` or config ``site``) over SSH (config
    ``[ssh]``); the scheduler from config ``[slurm] node_actions``.
``slurm``
    burn-in across nodes as Slurm job steps (``burnin run --launcher slurm``);
    commands that run single commands on nodes still use SSH.

What a :class:`Wiring` opens (the store, SSH connections, the fleet) it closes
on exit, newest first.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from dcops.errors import InputError

if TYPE_CHECKING:
    from burnin.suite import SuitePorts
    from dcops.actions import ActionSettings, Actuator, ExecContext
    from dcops.config import Config
    from dcops.inventory import Site
    from dcops.node_actions import NodeActions, SchedulerNodeState
    from dcops.ports import GpuProbe, RemoteRunner
    from dcops.remote.ssh_settings import SshSettings
    from dcops.sim import SimFleet
    from dcops.sim.clock import Clock
    from dcops.sim.world import SimWorld
    from dcops.slurm.commands import SlurmCommands
    from dcops.store import AuditLog, Store
    from runbooks.context import EngineContext
    from scheduler.backends.base import SchedulerBackend


NEEDS_SITE = "--nodes/--rack across nodes need a site: --site FILE or config 'site'"


class Mode(enum.StrEnum):
    """Where a command acts."""

    SIM = "sim"
    LOCAL = "local"
    SSH = "ssh"
    SLURM = "slurm"


@dataclass(frozen=True)
class Where:
    """A command's choice of fleet: its mode and the flags that pick it."""

    mode: Mode
    scenario: str | None = None
    site_path: str | None = None
    node_actions: str | None = None  # --node-actions NAME (None: the mode's default)

    @classmethod
    def choose(
        cls,
        *,
        scenario: str | None = None,
        local: bool = False,
        site_path: str | None = None,
        node_actions: str | None = None,
        remote: Mode = Mode.SSH,
    ) -> Where:
        """``--sim`` -> sim, ``--local`` -> local, else ``remote`` (ssh, or slurm for burn-in)."""
        if scenario and local:
            raise InputError("choose one of --sim SCENARIO or --local")
        mode = Mode.SIM if scenario else Mode.LOCAL if local else remote
        return cls(mode, scenario or None, site_path or None, node_actions or None)

    @property
    def simulated(self) -> bool:
        return self.mode is Mode.SIM


@dataclass(frozen=True)
class RemoteBurnin:
    """How a burn-in across nodes runs: launcher, Python on the nodes, allocation, rounds."""

    launcher: str = "auto"  # auto | slurm | ssh
    python: str = "python3"
    partition: str | None = None
    exclusive: bool = False
    rounds: int | None = None
    duration_s: float | None = None


class Wiring(ExitStack):
    """The ports of one command for one :class:`Where`, built on first use, closed on exit.

    An :class:`contextlib.ExitStack`: what a port opens is closed, last first, when the
    ``with`` block ends (every closer runs even when one fails).
    """

    def __init__(self, cfg: Config, where: Where) -> None:
        super().__init__()
        self.cfg = cfg
        self.where = where
        self._audit: AuditLog | None = None
        self._fleet: SimFleet | None = None
        self._world: SimWorld | None = None
        self._site: Site | None = None
        self._runner: RemoteRunner | None = None

    @classmethod
    def of(cls, ctx: click.Context, where: Where) -> Wiring:
        from dcops.cli.common import get_config

        return cls(get_config(ctx), where)

    def on_close(self, close: Callable[[], Any]) -> None:
        """Call ``close`` when the wiring closes."""
        self.callback(close)

    @property
    def simulated(self) -> bool:
        return self.where.simulated

    # --- the state store ------------------------------------------------------------------

    def audit(self) -> AuditLog:
        """The audit log over the state store of config (opened once)."""
        if self._audit is None:
            self._audit = open_audit(self.cfg)
            self.on_close(self._audit.store.close)
        return self._audit

    def store(self) -> Store:
        return self.audit().store

    # --- the fleet ------------------------------------------------------------------------

    def fleet(self, *, fresh: bool = False, clock: Clock | None = None) -> SimFleet:
        """The simulated fleet (``sim`` only).

        By default as the state store keeps it, read only (what sweeps and burn-ins
        measure: a tray a runbook rebooted is healthy again). ``fresh``: a new fleet of
        the scenario on ``clock`` (default: its virtual clock), as a live sampler runs it.
        """
        scenario = self._scenario()
        if fresh:
            from dcops.sim import SimFleet

            fleet = SimFleet.from_file(scenario, clock=clock)
            self.on_close(fleet.close)
            return fleet
        if self._world is not None:
            return self._world.fleet
        if self._fleet is None:
            from dcops.sim.world import load_fleet

            self._fleet = load_fleet(self.cfg.state_path, scenario)
            self.on_close(self._fleet.close)
        return self._fleet

    def world(self) -> SimWorld:
        """The simulated world that commands change (runbooks): saved back on close."""
        if self._world is None:
            from dcops.sim.world import open_world, save_world

            store = self.store()
            world = open_world(store, self._scenario())
            self.on_close(world.fleet.close)
            self.on_close(lambda: save_world(store, world))
            self._world = world
        return self._world

    def _scenario(self) -> str:
        if not self.where.scenario:
            raise InputError("this needs the simulator: --sim SCENARIO")
        return self.where.scenario

    def configured_site(self) -> Site | None:
        """The site of ``--sim``, ``--site`` or config ``site``; None when none is named."""
        if self._site is not None:
            return self._site
        if self.where.mode is Mode.SIM:
            if self._fleet is not None or self._world is not None:
                self._site = self.fleet().site
            else:
                from dcops.sim.scenario import load_scenario

                self._site = load_scenario(self._scenario()).site
        elif self.where.mode is Mode.LOCAL:
            from dcops.inventory import local_site

            self._site = local_site()
        else:
            path = self.where.site_path or self.cfg.site
            if path:
                from dcops.inventory import load_site

                self._site = load_site(path)
        return self._site

    def site(self, *, required: str | None = None) -> Site:
        """The site; with none named, ``required`` is the error, else this machine alone."""
        site = self.configured_site()
        if site is not None:
            return site
        if required:
            raise InputError(required)
        from dcops.inventory import local_site

        return local_site()

    def use_site(self, site: Site) -> None:
        """Use ``site`` from now on (a command that adjusted it, e.g. ``--expected-gpus``)."""
        self._site = site

    # --- running commands on nodes --------------------------------------------------------

    def ssh_settings(self) -> SshSettings:
        from dcops.remote.ssh_settings import SshSettings

        return SshSettings.from_config(self.cfg.ssh)

    def ssh_runner(self) -> RemoteRunner:
        """A new SSH runner from config ``[ssh]`` (closed with the wiring)."""
        from dcops.remote.ssh import SshRunner

        ssh = SshRunner(self.ssh_settings())
        self.on_close(ssh.close)
        return ssh

    def address(self, node: str) -> str:
        """The address ``node`` is reached at (its ssh_config ``HostName``, else its name)."""
        from dcops.remote.ssh_settings import SshResolver

        return SshResolver(self.ssh_settings()).resolve(node).hostname

    def runner(self) -> RemoteRunner:
        """Runs argv lists on nodes: the simulator's, this machine's, or SSH."""
        if self._runner is None:
            if self.where.mode is Mode.SIM:
                self._runner = self.fleet().runner
            elif self.where.mode is Mode.LOCAL:
                from dcops.remote.local import LocalRunner

                self._runner = LocalRunner()
            else:
                self._runner = self.ssh_runner()
        return self._runner

    def slurm(self, *, timeout_s: float = 60.0) -> SlurmCommands:
        """Slurm's client commands, here, with config ``[slurm] conf``."""
        from dcops.slurm.commands import SlurmCommands

        return SlurmCommands(slurm_conf=self.cfg.slurm.conf, timeout_s=timeout_s)

    def scheduler_states(self, site: Site | None = None) -> dict[str, SchedulerNodeState] | None:
        """Node states from the scheduler (None: no scheduler configured). Errors propagate."""
        actions = self.node_actions(site)
        return None if actions is None else actions.states()

    def gpu_probe(
        self, node: str, *, warn: Callable[[str], None]
    ) -> AbstractContextManager[GpuProbe]:
        """This machine's NVML probe with its XID watcher, as a context (``warn``: no XIDs)."""
        return _nvml_probe(node, warn)

    # --- the scheduler and the actuator ---------------------------------------------------

    def node_actions(self, site: Site | None = None) -> NodeActions | None:
        """The node-actions port: ``--node-actions``, else the mode's default; None: ``none``.

        With the simulator the default is the in-memory ``recording`` scheduler kept in
        the state store. Without a site, ``recording`` is the scheduler as the store holds
        it (every node it has seen).
        """
        from dcops.node_actions import create

        name = self.where.node_actions or (
            "recording" if self.simulated else self.cfg.slurm.node_actions
        )
        if name == "none":
            return None
        if name in ("record", "recording"):
            from dcops.node_actions.stored import StoredNodeActions

            site = site if site is not None else self.configured_site()
            nodes = site.nodes() if site is not None else ()
            return StoredNodeActions(self.store(), nodes, user=self.cfg.actor or "dcops")
        options: dict[str, Any] = {}
        if name.startswith("slurm") and self.cfg.slurm.conf:
            options["slurm_conf"] = self.cfg.slurm.conf
        return create(name, **options)

    def action_settings(self, **flags: Any) -> ActionSettings:
        return action_settings(self.cfg, **flags)

    def actuator(
        self,
        node_actions: NodeActions | None,
        *,
        context: ExecContext | None = None,
        **flags: Any,
    ) -> Actuator:
        """The one actuator: config ``[actions]`` (flags on top), the site's racks, the locks."""
        from dcops.actions import Actuator, topology_of

        site = self.configured_site()
        return Actuator(
            self.audit(),
            node_actions=node_actions,
            settings=self.action_settings(**flags),
            topology=topology_of(site) if site is not None else None,
            lock_dir=self.cfg.data_dir / "locks",
            context=context,
        )

    def action_queue(self) -> Actuator:
        """The actuator for reading and deciding stored actions (no scheduler is reached)."""
        from dcops.actions import Actuator

        return Actuator(self.audit(), node_actions=None, settings=self.cfg.actions)

    # --- the tenant bridge ------------------------------------------------------------------

    def job_backend_options(self) -> dict[str, dict[str, Any]]:
        """Per job backend, its options from config (``[slurm]``, ``[kubernetes]``)."""
        from scheduler.backends.configured import backend_options

        return backend_options(self.cfg)

    def job_backend(self, name: str) -> SchedulerBackend:
        """The job backend ``name`` built from config (the tenant API server shares one)."""
        from scheduler.backends.configured import build_backend

        return build_backend(name, self.cfg)

    # --- burn-in --------------------------------------------------------------------------

    def burnin_ports(
        self, *, nodes: list[str] | None = None, remote: RemoteBurnin | None = None, ranks: int = 2
    ) -> SuitePorts:
        """The burn-in suite's ports: simulator, this machine, or workers on ``nodes``.

        Their site (this machine's as its GPUs were found, for ``local``) is the
        wiring's site from now on: the actuator's breaker counts its racks.
        """
        ports: SuitePorts
        if self.where.mode is Mode.SIM:
            from burnin.suite import sim_ports

            ports = sim_ports(self.fleet())
        elif self.where.mode is Mode.LOCAL:
            from burnin.local import local_ports

            ports = local_ports(ranks=ranks, on_close=self.on_close)
        else:
            ports = self._remote_burnin(nodes, remote or RemoteBurnin())
        self.use_site(ports.site)
        return ports

    def _remote_burnin(self, nodes: list[str] | None, choice: RemoteBurnin) -> SuitePorts:
        from burnin.profiles import load_thresholds
        from burnin.remote import RemoteOptions, SlurmOptions, remote_ports

        site = self.site(required=NEEDS_SITE)
        g = load_thresholds(site.sku).gemm
        rounds = choice.rounds or g.rounds
        duration = choice.duration_s if choice.duration_s is not None else g.duration_s
        # the allocation outlives the GEMM rounds plus a generous margin for collectives
        time_limit_s = rounds * (duration * 3 + 60.0) + 3600.0
        options = RemoteOptions(
            launcher=choice.launcher,
            python=choice.python,
            slurm=SlurmOptions(
                partition=choice.partition, exclusive=choice.exclusive, time_limit_s=time_limit_s
            ),
            slurm_conf=self.cfg.slurm.conf,
        )
        return remote_ports(
            site,
            nodes if nodes is not None else site.nodes(),
            options,
            on_close=self.on_close,
            ssh_runner=self.ssh_runner,
            address=self.address,
        )

    # --- runbooks -------------------------------------------------------------------------

    def runbook_context(self) -> EngineContext:
        """The runbook engine's ports: the world it changes, checks, recertification, actuator."""
        from pathlib import Path

        from dcops.actions import ExecContext
        from dcops.cli.runbook_ports import HealthChecker, SuiteRecertifier
        from runbooks.context import EngineContext
        from runbooks.evidence import make_sink
        from runbooks.runs import Limits

        cfg = self.cfg
        audit = self.audit()
        store = audit.store
        rb = cfg.runbooks
        clock: Callable[[], float]
        sleep: Callable[[float], None]
        on_change: Callable[[], None] | None
        recertifier: Any
        if self.simulated:
            from dcops.sim.world import save_world

            world = self.world()
            spec: dict[str, Any] = {
                "kind": "sim",
                "scenario": str(Path(self._scenario()).resolve()),
                "state_db": str(cfg.state_path.resolve()),
            }
            clock, sleep = world.fleet.clock.now, world.maintenance.sleep
            on_change = lambda: save_world(store, world)  # noqa: E731
            recertifier = SuiteRecertifier(lambda *_: nullcontext(self.burnin_ports()))
        else:
            import time

            spec = {"kind": "ssh", "settings": dataclasses.asdict(self.ssh_settings())}
            clock, sleep, on_change = time.time, time.sleep, None
            recertifier = SuiteRecertifier(self._recertify_over_ssh, rb.burnin_thresholds)
        site = self.site()
        runner = self.runner()
        actions = self.node_actions(site)
        actuator = self.actuator(actions, context=ExecContext(node_actions=actions, runner=runner))

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
            sink=make_sink(rb.escalate_webhook, rb.escalate_dir, cfg.data_dir),
            data_dir=cfg.data_dir,
            requested_by=audit.actor,
            node_actions=actions,
            checker=HealthChecker(runner, site),
            recertifier=recertifier,
            limits=Limits(rb.max_per_rack, rb.max_fleet, rb.max_remediations_7d),
            clock=clock,
            sleep=sleep,
            runner_spec=spec,
            on_change=on_change,
            rack_of=rack_of,
            management_host=rb.management_host,
        )

    @contextmanager
    def _recertify_over_ssh(
        self, node: str, rounds: int | None, duration_s: float | None
    ) -> Iterator[SuitePorts]:
        """A burn-in's ports for one node over SSH, closed after its recertification."""
        python = self.cfg.runbooks.burnin_python
        choice = RemoteBurnin("ssh", python, None, False, rounds, duration_s)
        with Wiring(self.cfg, self.where) as wiring:
            yield wiring.burnin_ports(nodes=[node], remote=choice)


def open_store(cfg: Config) -> Store:
    """The state store named by config (created and migrated if needed)."""
    from dcops.store import Store

    return Store(cfg.state_path, audit_key=cfg.audit_key_path)


def open_audit(cfg: Config) -> AuditLog:
    from dcops.store import AuditLog

    return AuditLog(open_store(cfg), actor=cfg.actor)


def action_settings(cfg: Config, **flags: Any) -> ActionSettings:
    """Config ``[actions]`` with the flags that were given (None: not given) on top."""
    given = {k: v for k, v in flags.items() if v is not None}
    return dataclasses.replace(cfg.actions, **given) if given else cfg.actions


@contextmanager
def _nvml_probe(node: str, warn: Callable[[str], None]) -> Iterator[GpuProbe]:
    from dcops.errors import BackendError
    from dcops.nvml import NvmlProbe, XidWatcher

    watcher: XidWatcher | None = XidWatcher(host=node)
    try:
        assert watcher is not None
        watcher.start()
    except BackendError as exc:
        warn(f"dcops: XIDs will not be collected: {exc}")
        watcher = None
    try:
        with NvmlProbe(hostname=node, watcher=watcher) as probe:
            yield probe
    finally:
        if watcher is not None:
            watcher.stop()

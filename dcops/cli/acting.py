"""How CLI commands get the actuator: config ``[actions]`` plus flags -> :class:`Actuator`.

Every command that acts (burn-in, sweep, ``dcops node``, ``dcops actions``)
builds its actuator here, so they share one breaker, one set of levels and
limits (config ``[actions]``), one lock directory and one audit actor.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import get_config

if TYPE_CHECKING:
    from dcops.actions import ActionSettings, Actuator
    from dcops.inventory import Site
    from dcops.node_actions import NodeActions
    from dcops.store import AuditLog


def action_settings(ctx: click.Context, **flags: Any) -> ActionSettings:
    """Config ``[actions]`` with the flags that were given (None: not given) on top."""
    settings = get_config(ctx).actions
    given = {k: v for k, v in flags.items() if v is not None}
    return dataclasses.replace(settings, **given) if given else settings


def make_actuator(
    ctx: click.Context,
    audit: AuditLog,
    node_actions: NodeActions | None,
    site: Site | None,
    **flags: Any,
) -> Actuator:
    from dcops.actions import Actuator, topology_of

    cfg = get_config(ctx)
    return Actuator(
        audit,
        node_actions=node_actions,
        settings=action_settings(ctx, **flags),
        topology=topology_of(site) if site is not None else None,
        lock_dir=cfg.data_dir / "locks",
    )


def requester(ctx: click.Context, audit: AuditLog) -> str:
    """Who asks: the audit actor (``--actor``, config ``actor``, else the OS user)."""
    return audit.actor


def scheduler_options(func: Any) -> Any:
    """``--sim SCENARIO``, ``--site FILE``, ``--node-actions NAME``: where a command acts."""
    func = click.option(
        "--node-actions",
        "backend",
        help="Node-actions backend: slurm-cli, kubernetes, recording "
        "[recording with --sim, else config slurm.node_actions].",
    )(func)
    func = click.option(
        "--site",
        "site_path",
        type=click.Path(dir_okay=False),
        help="Site file (racks, for the breaker's shares) [config 'site'].",
    )(func)
    return click.option(
        "--sim",
        "scenario",
        type=click.Path(dir_okay=False),
        help="The simulator's scheduler (the same as burnin/sweep --sim; kept in the store).",
    )(func)


def resolve_scheduler(
    ctx: click.Context,
    store: Any,
    *,
    scenario: str | None,
    site_path: str | None,
    backend: str | None,
) -> tuple[NodeActions | None, Site | None]:
    """The node-actions backend and the site (None when no site is configured)."""
    from dcops.cli.common import resolve_node_actions

    cfg = get_config(ctx)
    site: Site | None = None
    if scenario:
        from dcops.sim.scenario import load_scenario

        site = load_scenario(scenario).site
    elif site_path or cfg.site:
        from dcops.inventory import load_site

        site = load_site(site_path or cfg.site or "")
    if site is not None:
        return resolve_node_actions(cfg, backend, site, store, simulated=bool(scenario)), site
    name = backend or cfg.slurm.node_actions
    if name in ("record", "recording"):
        from dcops.node_actions.stored import StoredNodeActions

        return StoredNodeActions(store), None  # the simulator's scheduler as the store holds it
    from dcops.inventory import local_site

    return resolve_node_actions(cfg, backend, local_site(), store, simulated=False), None

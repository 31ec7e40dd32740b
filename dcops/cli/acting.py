"""The flags of commands that act on nodes: where (``--sim``, ``--site``, ``--node-actions``).

Every command that acts (burn-in, sweep, ``dcops node``, ``dcops actions``,
runbooks) gets its node-actions port and its actuator from the composition root
(:mod:`dcops.cli.wiring`), so they share one breaker, one set of levels and
limits (config ``[actions]``), one lock directory and one audit actor.
"""

from __future__ import annotations

from typing import Any

import click

from dcops.cli.wiring import Where


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


def where_of(scenario: str | None, site_path: str | None, backend: str | None) -> Where:
    """The :class:`Where` of :func:`scheduler_options`' flags."""
    return Where.choose(scenario=scenario, site_path=site_path, node_actions=backend)

"""``dcops capacity topology``: scheduler topology from the inventory; ``--check`` for drift.

Exit codes: 0 generated (or no drift), 1 drift found, 2 usage or input error,
3 the scheduler could not be read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dcops.cli.capacity import NEEDS_SITE, fleet_wiring
from dcops.cli.common import emit, json_option
from dcops.errors import ExitCode, InputError

if TYPE_CHECKING:
    from capacity.topology import Domain
    from dcops.cli.wiring import Wiring
    from dcops.inventory import Site
    from dcops.slurm.commands import SlurmCommands


def domains_of(site: Site) -> list[Domain]:
    from capacity.topology import Domain

    return [Domain(r.domain or r.name, r.name, r.nodes) for r in site.racks]


def read_cliques(wiring: Wiring, site: Site) -> dict[str, tuple[str, str]]:
    """(clusterUuid, cliqueId) per tray from ``nvidia-smi -q -x`` (sim or SSH); none if silent."""
    from capacity.topology import fabric_clique
    from dcops.remote.fanout import run_many

    outcomes = run_many(wiring.runner(), site.nodes(), ["nvidia-smi", "-q", "-x"], timeout_s=10.0)
    found: dict[str, tuple[str, str]] = {}
    for node, outcome in outcomes.items():
        if isinstance(outcome, Exception) or not outcome.ok:
            continue
        try:
            clique = fabric_clique(outcome.stdout)
        except ValueError:
            continue
        if clique is not None:
            found[node] = clique
    return found


def _generate(fmt: str, site: Site, cliques: dict[str, tuple[str, str]] | None) -> Any:
    from capacity import topology as t

    domains = domains_of(site)
    if fmt == "slurm-block-conf":
        return t.block_conf(domains)
    if fmt == "slurm-tree-conf":
        return t.tree_conf(domains)
    if fmt == "slurm-topology-yaml":
        return t.topology_yaml(domains)
    return t.k8s_labels(domains, cliques)


@click.command("topology")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["slurm-block-conf", "slurm-tree-conf", "slurm-topology-yaml", "k8s-labels"]),
    help="What to generate (or check).",
)
@click.option("--site", "site_path", type=click.Path(dir_okay=False), help="Site file (YAML).")
@click.option("--sim", "scenario", type=click.Path(dir_okay=False), help="A simulated fleet.")
@click.option(
    "--probe-cliques",
    is_flag=True,
    help="k8s-labels: read each tray's NVLink clique with nvidia-smi -q -x (SSH, or the sim).",
)
@click.option("--check", is_flag=True, help="Compare with the live scheduler and report drift.")
@click.option("--kube-host", help="--check k8s-labels: API server URL (default: kubeconfig).")
@json_option
@click.pass_context
def topology(
    ctx: click.Context,
    fmt: str,
    site_path: str | None,
    scenario: str | None,
    probe_cliques: bool,
    check: bool,
    kube_host: str | None,
    as_json: bool,
) -> None:
    """Slurm block/tree topology, topology.yaml or Kubernetes labels from the inventory."""
    if probe_cliques and fmt != "k8s-labels":
        raise InputError("--probe-cliques goes with --format k8s-labels")
    with fleet_wiring(ctx, site_path, scenario) as wiring:
        site = wiring.site(required=NEEDS_SITE)
        cliques = read_cliques(wiring, site) if probe_cliques else None
        if not check:
            out = _generate(fmt, site, cliques)
            if as_json or fmt == "k8s-labels":
                emit({"format": fmt, "site": site.name, "content": out}, True)
            else:
                click.echo(out, nl=False)
            return
        result = (
            _check_labels(site, cliques, kube_host)
            if fmt == "k8s-labels"
            else _check_slurm(wiring.slurm(timeout_s=30.0), site, fmt)
        )
    emit(result, as_json, render=lambda c: _render_check(c, result))
    if result["drift"]:
        ctx.exit(ExitCode.UNHEALTHY)


def _check_slurm(slurm: SlurmCommands, site: Site, fmt: str) -> dict[str, Any]:
    from capacity.live import read_slurm_topology
    from capacity.topology import parse_show_topology, slurm_drift

    live = read_slurm_topology(slurm)
    kind, groups = parse_show_topology(live.text)
    skipped: list[str] = []
    if not live.supports_block:
        skipped.append(
            f"blocks: Slurm {live.version[0]}.{live.version[1]} has no topology/block "
            "(23.11+); its tree switches were checked instead"
        )
    if fmt == "slurm-topology-yaml" and live.version < (25, 5):
        skipped.append("topology.yaml: needs Slurm 25.05+; the loaded topology was checked")
    drift = slurm_drift(domains_of(site), groups)
    return {
        "site": site.name,
        "scheduler": "slurm",
        "version": f"{live.version[0]}.{live.version[1]}",
        "plugin": live.plugin,
        "checked": kind,
        "groups": len(groups),
        "skipped": skipped,
        "drift": drift,
    }


def _check_labels(
    site: Site, cliques: dict[str, tuple[str, str]] | None, host: str | None
) -> dict[str, Any]:
    from capacity.live import node_labels
    from capacity.topology import k8s_labels, label_drift
    from dcops.node_actions.kubernetes import KubernetesNodeActions

    backend = KubernetesNodeActions(host=host) if host else KubernetesNodeActions()
    live = node_labels(backend.nodes_api.list())
    expected = k8s_labels(domains_of(site), cliques)
    skipped = [] if cliques else ["nvidia.com/gpu.clique: not probed (--probe-cliques)"]
    return {
        "site": site.name,
        "scheduler": "kubernetes",
        "checked": "labels",
        "groups": len(live),
        "skipped": skipped,
        "drift": label_drift(expected, live),
    }


def _render_check(console: Any, result: dict[str, Any]) -> None:
    where = result.get("version", "")
    console.print(
        f"{result['scheduler']} {where} {result.get('plugin', '')}: checked "
        f"{result['checked']} ({result['groups']} groups)"
    )
    for note in result["skipped"]:
        console.print(f"[yellow]skipped[/yellow]: {note}")
    if not result["drift"]:
        console.print("[green]no drift[/green]")
    for d in result["drift"]:
        console.print(
            f"[red]{d['kind']}[/red] {d['node']}: expected {d['expected']}, found {d['found']}"
        )

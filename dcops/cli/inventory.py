"""``dcops inventory``: the site model — racks, trays, GPUs, NVLink domains."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from dcops.cli.common import emit, json_option, load_current_site, site_option

if TYPE_CHECKING:
    from rich.console import Console


@click.group()
def inventory() -> None:
    """Show and check the site inventory (racks, nodes, GPUs, NVLink domains)."""


@inventory.command()
@site_option
@json_option
@click.pass_context
def show(ctx: click.Context, site_path: str | None, as_json: bool) -> None:
    """List racks, their nodes and each node's GPUs."""
    site = load_current_site(ctx, site_path)
    data = site.to_dict()

    def render(console: Console) -> None:
        from rich.table import Table

        totals = data["totals"]
        assert isinstance(totals, dict)
        table = Table(title=f"site {site.name} ({site.source})")
        for col in ("rack", "sku", "nodes", "trays", "GPUs", "NVLink domain", "location"):
            table.add_column(col)
        for rack in site.racks:
            table.add_row(
                rack.name,
                rack.sku,
                (rack.nodes and data_hostlist(rack.nodes)) or "-",
                str(len(rack.nodes)),
                str(len(rack.nodes) * rack.gpus_per_node),
                site.domain_of(rack.nodes[0]) if rack.nodes else "-",
                rack.location or "-",
            )
        console.print(table)
        console.print(
            f"{totals['racks']} rack(s), {totals['nodes']} node(s), {totals['gpus']} GPU(s), "
            f"{totals['nvlink_domains']} NVLink domain(s)"
        )

    emit(data, as_json, render)


def data_hostlist(nodes: tuple[str, ...]) -> str:
    from dcops.hostlist import compress

    return compress(nodes)


@inventory.command()
@click.argument("nodes")
@site_option
@json_option
@click.pass_context
def node(ctx: click.Context, nodes: str, site_path: str | None, as_json: bool) -> None:
    """Where nodes sit: rack, tray, GPUs, NVLink domain (NODES is a hostlist)."""
    site = load_current_site(ctx, site_path)
    infos = [site.node(n) for n in site.select(nodes)]
    data = [
        {
            "node": i.name,
            "rack": i.rack,
            "tray": i.tray,
            "sku": i.sku,
            "domain": i.domain,
            "gpus": [g.index for g in i.gpus],
        }
        for i in infos
    ]

    def render(console: Console) -> None:
        from rich.table import Table

        table = Table()
        for col in ("node", "rack", "tray", "sku", "NVLink domain", "GPUs"):
            table.add_column(col)
        for i in infos:
            gpus = ",".join(str(g.index) for g in i.gpus)
            table.add_row(i.name, i.rack, str(i.tray), i.sku, i.domain, gpus)
        console.print(table)

    emit(data, as_json, render)


@inventory.command()
@click.argument("site_file", type=click.Path(dir_okay=False))
@json_option
def check(site_file: str, as_json: bool) -> None:
    """Validate a site file (exit 0 when valid, 2 with the reason when not)."""
    from dcops.inventory import load_site

    site = load_site(site_file)
    totals = site.to_dict()["totals"]
    emit(
        {"file": site_file, "valid": True, "totals": totals},
        as_json,
        lambda console: console.print(f"{site_file}: valid ({totals})"),
    )


@inventory.command()
def schema() -> None:
    """Print the site file's JSON Schema."""
    from dcops.inventory import site_schema

    click.echo(json.dumps(site_schema(), indent=2))


@inventory.command()
@click.argument("expression")
@json_option
def expand(expression: str, as_json: bool) -> None:
    """Expand a Slurm hostlist expression, one name per line."""
    from dcops.hostlist import expand as expand_hostlist

    names = expand_hostlist(expression)
    emit(names, as_json, lambda console: click.echo("\n".join(names)))

"""``dcops xid``: what an XID line means, by NVIDIA's catalog, and the runbook dcops would pick."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import emit, json_option

if TYPE_CHECKING:
    from rich.console import Console


@click.group()
def xid() -> None:
    """XID knowledge: NVIDIA's catalog, NVLink5 decode, XID 154 recovery actions."""


@xid.command()
@click.argument("line")
@click.option(
    "--layout",
    type=click.Choice(["v1", "v2"]),
    help="NVLink5 message layout: v1 (driver < R575) or v2 (>= R575). Default: from the line.",
)
@click.option(
    "--pci-order",
    help="The node's GPU PCI ids in index order, comma-separated (to name the GPU index).",
)
@json_option
def explain(line: str, layout: str | None, pci_order: str | None, as_json: bool) -> None:
    """Explain one kernel log LINE (``NVRM: Xid (PCI:...): N, ...``)."""
    from dcops.xid.explain import explain as explain_line

    order = [p.strip() for p in pci_order.split(",") if p.strip()] if pci_order else None
    found = explain_line(line, layout=layout, pci_order=order)
    data: dict[str, Any] = found.to_dict()
    data["runbook"] = _runbook_for(data["immediate"], found.xid)

    def render(console: Console) -> None:
        where = f"GPU {data['gpu']} " if data["gpu"] is not None else ""
        console.print(f"XID {data['xid']} {data['mnemonic'] or ''} on {where}PCI {data['pci']}")
        if data.get("description"):
            console.print(f"  what:          {data['description']}")
        if "subcomponent" in data:
            console.print(
                f"  NVLink5:       {data['subcomponent']}, {data['severity']}, "
                f"link {data['link']}, layout {data['layout']}"
            )
        if "recovery_action" in data:
            console.print(f"  recovery:      {data['recovery_action']}")
        console.print(f"  immediate:     {data['immediate']}")
        console.print(f"  investigatory: {data['investigatory']}")
        console.print(f"  action:        {data['action']}")
        console.print(f"  runbook:       {data['runbook'] or '-'}")
        if data.get("note"):
            console.print(f"  note:          {data['note']}")

    emit(data, as_json, render=render)


def _runbook_for(bucket: str, code: int) -> str | None:
    from runbooks.library import pick_for_xid

    return pick_for_xid(code, bucket)

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


@xid.command("incidents")
@click.argument("log", type=click.File("r"))
@click.option("--node", default="localhost", show_default=True, help="Node of lines without one.")
@click.option(
    "--window",
    "window_s",
    type=click.FloatRange(0),
    default=300.0,
    show_default=True,
    help="Repeats of one XID on one GPU within this many seconds are one event.",
)
@click.option(
    "--burst",
    "burst_s",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="Events starting within this many seconds form one burst.",
)
@json_option
def incidents(log: Any, node: str, window_s: float, burst_s: float, as_json: bool) -> None:
    """Group the XID lines of a kernel LOG (file or -) into incidents: repeats counted,
    sympathetic XIDs attached to their origin, one job crash one incident.

    Lines may carry a Unix time and host first (``journalctl -o short-unix``);
    others are taken in order, one second apart, on --node.
    """
    from dcops.xid.events import XidOccurrence, dedupe, group
    from dcops.xid.explain import line_buckets
    from dcops.xid.line import find_xid

    found: list[XidOccurrence] = []
    lines = 0
    for i, raw in enumerate(log):
        line = find_xid(raw)
        if line is None:
            continue
        lines += 1
        parts = raw.split()
        when, host = float(i), node
        if parts and _is_float(parts[0]):
            when = float(parts[0])
            host = parts[1] if len(parts) > 2 and not parts[1].startswith("NVRM") else node
        bucket = line_buckets(line)[0]
        found.append(XidOccurrence(host, line.pci, line.code, when, line.message, bucket))
    groups = group(dedupe(found, window_s), burst_s)
    data: dict[str, Any] = {
        "lines": lines,
        "incidents": [
            {**g.to_dict(), "runbook": _runbook_for(g.immediate, g.codes[0]) if g.codes else None}
            for g in groups
        ],
    }

    def render(console: Console) -> None:
        console.print(f"{lines} XID line(s) -> {len(groups)} incident(s)")
        for item in data["incidents"]:
            where = item["node"] or "(job-wide)"
            console.print(
                f"  {where}: XID {item['xids'] or '-'} -> {item['immediate']} "
                f"[{item['lines']} line(s), {len(item['sympathetic'])} sympathetic] "
                f"runbook {item['runbook'] or '-'}: {item['why']}"
            )

    emit(data, as_json, render=render)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

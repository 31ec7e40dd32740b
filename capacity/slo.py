"""The segment SLO: per rack, the share of time a segment was available, and GPU-hours lost (pure).

Over a window ``[since, until]``, a rack of ``n`` trays holds a segment of
``S`` trays at an instant when at least ``S`` of its trays are not out
(``n - out >= S``). ``available_share`` is the fraction of the window when it
did; ``gpu_hours_lost`` sums, over the rack's trays, hours out inside the
window times the tray's GPUs. Outages must be merged per node first
(:func:`capacity.outages.merge`), so nothing counts twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from capacity.outages import Outage, clip


def rack_slo(
    nodes: Sequence[str],
    gpus_per_tray: int,
    outages: Mapping[str, Sequence[Outage]],
    segment: int,
    since_s: float,
    until_s: float,
) -> dict[str, Any]:
    window = until_s - since_s
    edges: list[tuple[float, int]] = []
    lost_s = 0.0
    for node in nodes:
        for o in outages.get(node, ()):
            part = clip(o, since_s, until_s)
            if part is None:
                continue
            edges.append((part[0], 1))
            edges.append((part[1], -1))
            lost_s += part[1] - part[0]
    edges.sort()
    short_s = 0.0
    out = 0
    last = since_s
    for t, delta in edges:
        if len(nodes) - out < segment:
            short_s += t - last
        out += delta
        last = t
    if len(nodes) - out < segment:
        short_s += until_s - last
    share = 1.0 - short_s / window if window > 0 else 1.0
    return {
        "segment": segment,
        "available_share": share,
        "unavailable_h": short_s / 3600.0,
        "gpu_hours_lost": lost_s / 3600.0 * gpus_per_tray,
        "tray_hours_out": lost_s / 3600.0,
    }


def slo(
    racks: Sequence[tuple[str, Sequence[str], int]],
    outages: Mapping[str, Sequence[Outage]],
    segment: int,
    since_s: float,
    until_s: float,
) -> dict[str, Any]:
    """``racks``: ``(name, nodes, gpus_per_tray)``. Fleet share is the mean over racks."""
    rows = [
        {"rack": name, **rack_slo(nodes, gpus, outages, segment, since_s, until_s)}
        for name, nodes, gpus in racks
    ]
    return {
        "since_s": since_s,
        "until_s": until_s,
        "segment": segment,
        "racks": rows,
        "fleet": {
            "racks": len(rows),
            "available_share": (
                sum(r["available_share"] for r in rows) / len(rows) if rows else None
            ),
            "gpu_hours_lost": sum(r["gpu_hours_lost"] for r in rows),
        },
    }

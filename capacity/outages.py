"""Outages as time intervals per node: merging, clipping and measuring them (pure).

An outage is ``[start_s, end_s)`` with ``end_s`` None while it lasts. Real
records overlap (one outage logged twice, a second failure during a repair):
:func:`merge` joins the outages of a node that overlap or touch, so downtime
is never counted twice, and says how many records were merged away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Outage:
    node: str
    start_s: float
    end_s: float | None  # None: still out
    cause: str = ""
    source: str = ""


@dataclass(frozen=True)
class Merged:
    outages: dict[str, list[Outage]]  # node -> merged outages, by start
    merged_away: int  # records absorbed into an overlapping one


def merge(outages: Iterable[Outage]) -> Merged:
    """Merge overlapping or touching outages per node (an open one absorbs all later ones)."""
    by_node: dict[str, list[Outage]] = {}
    for o in outages:
        by_node.setdefault(o.node, []).append(o)
    out: dict[str, list[Outage]] = {}
    absorbed = 0
    for node, items in by_node.items():
        items.sort(key=lambda o: (o.start_s, float("inf") if o.end_s is None else o.end_s))
        merged: list[Outage] = []
        for o in items:
            if merged:
                last = merged[-1]
                if last.end_s is None or o.start_s <= last.end_s:
                    end = (
                        None
                        if (last.end_s is None or o.end_s is None)
                        else max(last.end_s, o.end_s)
                    )
                    causes = (
                        last.cause if o.cause in ("", last.cause) else f"{last.cause}; {o.cause}"
                    )
                    merged[-1] = Outage(node, last.start_s, end, causes, last.source)
                    absorbed += 1
                    continue
            merged.append(o)
        out[node] = merged
    return Merged(out, absorbed)


def clip(o: Outage, start_s: float, end_s: float) -> tuple[float, float] | None:
    """The part of ``o`` inside ``[start_s, end_s)``, or None."""
    a = max(o.start_s, start_s)
    b = end_s if o.end_s is None else min(o.end_s, end_s)
    return (a, b) if b > a else None


def downtime_s(outages: Sequence[Outage], start_s: float, end_s: float) -> float:
    """Seconds out within the window (outages must be merged: no overlap)."""
    total = 0.0
    for o in outages:
        part = clip(o, start_s, end_s)
        if part:
            total += part[1] - part[0]
    return total


def out_at(outages: Mapping[str, Sequence[Outage]], t: float) -> dict[str, Outage]:
    """The nodes out at instant ``t`` and the outage that holds them."""
    found: dict[str, Outage] = {}
    for node, items in outages.items():
        for o in items:
            if o.start_s <= t and (o.end_s is None or t < o.end_s):
                found[node] = o
                break
    return found


def from_actions(
    events: Iterable[tuple[float, str, str, str]],
) -> list[Outage]:
    """Outages from ``(time_s, action, node, reason)`` drain/resume events, in time order.

    A drain opens an outage (a second drain while out changes nothing), a resume
    closes it; a resume without a drain is ignored.
    """
    open_: dict[str, tuple[float, str]] = {}
    done: list[Outage] = []
    for t, action, node, reason in sorted(events, key=lambda e: e[0]):
        if action == "drain":
            open_.setdefault(node, (t, reason))
        elif action == "resume" and node in open_:
            start, why = open_.pop(node)
            done.append(Outage(node, start, t, why, "lifecycle"))
    done.extend(Outage(n, s, None, why, "lifecycle") for n, (s, why) in open_.items())
    return done

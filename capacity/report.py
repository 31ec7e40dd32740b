"""The capacity report: per rack (= NVLink domain) and fleet, from tray verdicts (pure).

Segments: within one NVL72 rack any set of trays shares the NVLink domain, so
a rack with ``h`` healthy trays holds ``h // S`` disjoint segments of ``S``
trays (``promisable``) and, of its healthy trays that are idle per the
scheduler (``f``), ``f // S`` segments can start right now (``free_now``).

``fabric`` is the NVLink fabric as the latest burn-in of the rack saw it: ``ok``
(its domain-wide collectives passed), ``impaired`` (a domain collective failed;
the trays it blames are out on their own), ``unknown`` (no burn-in yet).

Domain state (after Google Compute Engine's sub-block states, plus ``down``):
``down`` when no tray is healthy;
``degraded`` when some tray is out or degraded; ``running`` when every tray
is healthy and some run work; ``available`` when every tray is healthy and idle.

JSON contract (``dcops capacity report --json``; keys kept stable)::

    {"at", "segment_sizes", "racks": [{"rack", "domain", "state", "fabric",
       "trays_total", "trays_healthy", "trays_degraded", "trays_free",
       "gpus_healthy", "trays_out": [{"node", "owner", "reason", "since"}],
       "trays_degraded_list": [{"node", "reason"}],
       "segments": {"<S>": {"promisable", "free_now"}}}],
     "fleet": {"racks", "trays_total", "trays_healthy", "trays_degraded",
               "trays_out", "trays_free", "gpus_total", "gpus_healthy",
               "out_by_owner": {owner: n}, "racks_by_state": {state: n},
               "segments": {"<S>": {"promisable", "free_now"}}}}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from capacity.trays import OWNER_ORDER, Standing, TrayVerdict

#: Segment sizes reported when the site names none (trays; 16 = NVIDIA's advice, 2 spare).
DEFAULT_SEGMENT_SIZES: tuple[int, ...] = (1, 2, 4, 8, 9, 16, 18)

DOMAIN_STATES = ("available", "running", "degraded", "down")


@dataclass(frozen=True)
class RackCounts:
    """The numbers segments are computed from."""

    rack: str
    total: int
    healthy: int
    free: int


def segments(healthy: int, free: int, sizes: Sequence[int]) -> dict[str, dict[str, int]]:
    """Disjoint segments per size: promisable from healthy trays, free_now from idle healthy."""
    return {str(s): {"promisable": healthy // s, "free_now": free // s} for s in sizes}


def domain_state(total: int, healthy: int, degraded: int, free: int) -> str:
    if healthy == 0:
        return "down"
    if healthy < total or degraded:
        return "degraded"
    return "available" if free == total else "running"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def rack_report(
    rack: str,
    domain: str,
    verdicts: Sequence[TrayVerdict],
    sizes: Sequence[int],
    fabric: str = "unknown",
) -> dict[str, Any]:
    healthy = [v for v in verdicts if v.standing is Standing.HEALTHY]
    degraded = [v for v in verdicts if v.standing is Standing.DEGRADED]
    out = [v for v in verdicts if v.standing is Standing.OUT]
    free = sum(1 for v in healthy if v.free)
    return {
        "rack": rack,
        "domain": domain,
        "state": domain_state(len(verdicts), len(healthy), len(degraded), free),
        "fabric": fabric,
        "trays_total": len(verdicts),
        "trays_healthy": len(healthy),
        "trays_degraded": len(degraded),
        "trays_free": free,
        "gpus_healthy": sum(v.gpus for v in healthy),
        "trays_out": [
            {
                "node": v.node,
                "owner": v.owner.value if v.owner else "unknown",
                "reason": v.reason,
                "since": _iso(v.since_s),
            }
            for v in out
        ],
        "trays_degraded_list": [{"node": v.node, "reason": v.reason} for v in degraded],
        "segments": segments(len(healthy), free, sizes),
    }


def fleet_totals(racks: Sequence[Mapping[str, Any]], sizes: Sequence[int]) -> dict[str, Any]:
    owners: Counter[str] = Counter()
    states: Counter[str] = Counter()
    seg = {str(s): {"promisable": 0, "free_now": 0} for s in sizes}
    for r in racks:
        owners.update(t["owner"] for t in r["trays_out"])
        states[r["state"]] += 1
        for s, v in r["segments"].items():
            seg[s]["promisable"] += v["promisable"]
            seg[s]["free_now"] += v["free_now"]
    return {
        "racks": len(racks),
        "trays_total": sum(r["trays_total"] for r in racks),
        "trays_healthy": sum(r["trays_healthy"] for r in racks),
        "trays_degraded": sum(r["trays_degraded"] for r in racks),
        "trays_out": sum(len(r["trays_out"]) for r in racks),
        "trays_free": sum(r["trays_free"] for r in racks),
        "gpus_healthy": sum(r["gpus_healthy"] for r in racks),
        "out_by_owner": {o: owners.get(o, 0) for o in OWNER_ORDER},
        "racks_by_state": {s: states.get(s, 0) for s in DOMAIN_STATES},
        "segments": seg,
    }


def build_report(
    racks: Sequence[tuple[str, str, Sequence[TrayVerdict]]],
    sizes: Sequence[int],
    *,
    at_s: float,
    fabric: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole report from ``(rack, domain, verdicts)`` triples, in rack order."""
    fab = fabric or {}
    rows = [rack_report(r, d, v, sizes, fab.get(r, "unknown")) for r, d, v in racks]
    fleet = fleet_totals(rows, sizes)
    fleet["gpus_total"] = sum(t.gpus for _, _, v in racks for t in v)
    return {"at": _iso(at_s), "segment_sizes": list(sizes), "racks": rows, "fleet": fleet}

"""Can the fleet place a request now, and if not, which repairs make it fit (pure).

A request is ``trays`` trays in segments of ``segment`` trays, each segment
inside one rack (NVLink domain); ``same_domain`` asks for all trays in one
rack (one segment of ``trays``). A request of ``gpus`` is
``ceil(gpus / gpus_per_tray)`` trays.

*Now* counts healthy trays that are idle per the scheduler. Placement is
best-fit: racks with the fewest free trays first, so whole racks stay whole.

*Repairs*: a rack with ``a`` free trays holds ``a // S`` segments; its next
segment needs ``S - a % S`` repaired trays and every one after that ``S``.
These marginal costs never decrease within a rack, so taking the cheapest
marginal segment across racks, one at a time, gives the smallest number of
repairs (ties go to the rack whose repairs are easier: owner order
``dcops, repair, unreachable, operator, maintenance, unknown``, then the tray
out longest). Within a rack the same order picks which trays.

*Fragmentation left*: after placing (with the repairs, if any), the free trays
per rack that form no segment of the requested size (``stranded``) and the
segments of each reported size still free.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dcops.errors import InputError


@dataclass(frozen=True)
class OutTray:
    node: str
    owner: str
    owner_rank: int
    reason: str = ""
    since_s: float | None = None


@dataclass(frozen=True)
class RackSupply:
    rack: str
    total: int
    free: int  # healthy and idle now
    healthy: int
    out: tuple[OutTray, ...] = field(default_factory=tuple)  # repair order (see repair_order)


@dataclass(frozen=True)
class Request:
    trays: int
    segment: int
    same_domain: bool = False


def repair_order(trays: Sequence[OutTray]) -> tuple[OutTray, ...]:
    """Easiest to get back first: owner order, then out longest (unknown time last)."""
    return tuple(
        sorted(
            trays,
            key=lambda t: (t.owner_rank, t.since_s is None, t.since_s or 0.0, t.node),
        )
    )


def make_request(
    *,
    gpus: int | None,
    trays: int | None,
    segment: int | None,
    same_domain: bool,
    gpus_per_tray: int,
    rack_size: int,
) -> Request:
    """Validate the CLI's numbers into a :class:`Request` (InputError naming what is wrong)."""
    if (gpus is None) == (trays is None):
        raise InputError("give exactly one of --gpus or --trays")
    if gpus is not None:
        if gpus < 1:
            raise InputError("--gpus must be at least 1")
        if gpus_per_tray < 1:
            raise InputError("these trays have no GPUs: ask with --trays")
        count = math.ceil(gpus / gpus_per_tray)
    else:
        assert trays is not None
        if trays < 1:
            raise InputError("--trays must be at least 1")
        count = trays
    if same_domain:
        if count > rack_size:
            raise InputError(
                f"--same-domain: {count} trays do not fit one rack of {rack_size} trays"
            )
        if segment is not None and segment != count:
            raise InputError("--same-domain asks for one segment of all trays; drop --segment")
        return Request(count, count, True)
    size = segment or 1
    if size < 1:
        raise InputError("--segment must be at least 1")
    if size > rack_size:
        raise InputError(f"segment of {size} trays is larger than a rack ({rack_size} trays)")
    if count % size:
        raise InputError(f"{count} trays do not split into segments of {size}")
    return Request(count, size, False)


def _place(free: Mapping[str, int], seg: int, need: int) -> dict[str, int] | None:
    """Best-fit placement: racks with the fewest free trays first; None if it does not fit."""
    placed: dict[str, int] = {}
    left = need
    for rack, count in sorted(free.items(), key=lambda kv: (kv[1], kv[0])):
        if left == 0:
            break
        take = min(count // seg, left)
        if take:
            placed[rack] = take
            left -= take
    return placed if left == 0 else None


def _repairs(racks: Sequence[RackSupply], seg: int, short: int) -> tuple[list[OutTray], int]:
    """The fewest out trays whose repair adds ``short`` segments; (trays, segments still short)."""
    heap: list[tuple[int, int, str, int]] = []
    by_name = {r.rack: r for r in racks}
    used: dict[str, int] = {r.rack: 0 for r in racks}

    def push(r: RackSupply) -> None:
        have = r.free + used[r.rack]
        cost = seg - have % seg
        if used[r.rack] + cost <= len(r.out):
            ease = sum(t.owner_rank for t in r.out[used[r.rack] : used[r.rack] + cost])
            heapq.heappush(heap, (cost, ease, r.rack, cost))

    for r in racks:
        push(r)
    chosen: list[OutTray] = []
    while short > 0 and heap:
        _, _, name, cost = heapq.heappop(heap)
        r = by_name[name]
        chosen.extend(r.out[used[name] : used[name] + cost])
        used[name] += cost
        short -= 1
        push(r)
    return chosen, short


def _fragmentation(free: Mapping[str, int], seg: int, sizes: Sequence[int]) -> dict[str, Any]:
    return {
        "free_trays": sum(free.values()),
        "stranded_trays": sum(n % seg for n in free.values()),
        "racks_with_stranded": sorted(r for r, n in free.items() if n % seg),
        "segments_free": {str(s): sum(n // s for n in free.values()) for s in sizes},
    }


def plan(req: Request, racks: Sequence[RackSupply], sizes: Sequence[int]) -> dict[str, Any]:
    """The plan for ``req`` over ``racks`` (see the module docstring for the JSON shape)."""
    seg = req.segment
    need = req.trays // seg
    free = {r.rack: r.free for r in racks}
    healthy = {r.rack: r.healthy for r in racks}
    placed = _place(free, seg, need)
    out: dict[str, Any] = {
        "request": {
            "trays": req.trays,
            "segment": seg,
            "segments": need,
            "same_domain": req.same_domain,
        },
        "fits_now": placed is not None,
        "fits_when_idle": _place(healthy, seg, need) is not None,
        "segments_free_now": sum(n // seg for n in free.values()),
        "repairs": [],
        "fits_after_repairs": placed is not None,
        "short_segments": 0,
    }
    if placed is None:
        short = need - sum(n // seg for n in free.values())
        chosen, still = _repairs(racks, seg, short)
        out["repairs"] = [
            {
                "node": t.node,
                "rack": rack_of,
                "owner": t.owner,
                "reason": t.reason,
                "since_s": t.since_s,
            }
            for rack_of, t in _with_rack(racks, chosen)
        ]
        out["short_segments"] = still
        out["fits_after_repairs"] = still == 0
        if still == 0:
            after = dict(free)
            for rack_of, _ in _with_rack(racks, chosen):
                after[rack_of] += 1
            placed = _place(after, seg, need)
            free = after
    if placed is not None:
        left = dict(free)
        for rack, n in placed.items():
            left[rack] -= n * seg
        out["placement"] = [
            {"rack": r, "segments": n, "trays": n * seg} for r, n in sorted(placed.items())
        ]
        out["fragmentation"] = _fragmentation(left, seg, sizes)
    else:
        out["placement"] = []
        out["fragmentation"] = None
    return out


def _with_rack(racks: Sequence[RackSupply], trays: Sequence[OutTray]) -> list[tuple[str, OutTray]]:
    where = {t.node: r.rack for r in racks for t in r.out}
    return [(where[t.node], t) for t in trays]

"""Spares for a target availability: a binomial model over trays (pure).

Model (stated in docs/capacity.md):

* a tray is up at a random moment with probability ``A = MTBF / (MTBF + MTTR)``,
  independently of the other trays (failures that take a whole rack, such as
  power or the NVLink fabric, are outside this model);
* a rack of ``n`` trays can hold a segment of ``S`` trays when at least ``S``
  are up: ``P = sum_{k=S..n} C(n, k) A^k (1-A)^(n-k)``;
* ``spares_needed`` is the smallest ``k >= 0`` with
  ``P(at least S of S + k trays up) >= target``: trays beyond the segment a
  rack (or a pool serving one segment) must carry. ``fits_in_rack`` says whether
  ``S + k`` trays fit the rack's ``n``.
* with ``racks`` R, every rack holding its segment at once has probability
  ``P ** R`` (independent racks).
* the site's spares (:func:`with_site_spares`): a rack supplies ``n - S`` of the
  ``spares_needed`` itself (its slack); the rest, ``max(0, spares_needed - (n - S))``
  per rack, must come from the site's shelf (``capacity.spare_trays``), swapped in
  for failed trays: ``shelf_needed`` over all racks, ``shelf_short`` what the
  shelf lacks.
"""

from __future__ import annotations

import math
from typing import Any

from dcops.errors import InputError


def tray_availability(mtbf_h: float, mttr_h: float) -> float:
    if mtbf_h <= 0 or mttr_h < 0:
        raise InputError("--mtbf-h must be > 0 and --mttr-h >= 0")
    return mtbf_h / (mtbf_h + mttr_h)


def at_least(n: int, s: int, a: float) -> float:
    """P(at least ``s`` of ``n`` independent trays up), each up with probability ``a``."""
    if s <= 0:
        return 1.0
    if s > n:
        return 0.0
    return math.fsum(math.comb(n, k) * a**k * (1.0 - a) ** (n - k) for k in range(s, n + 1))


#: Spare counts searched before giving up (a tray that is never up needs infinitely many).
MAX_SPARES = 10_000


def spares_needed(segment: int, target: float, a: float) -> int | None:
    """Smallest k with P(at least ``segment`` of ``segment + k`` up) >= ``target``; None if none."""
    if a >= 1.0:
        return 0
    if a <= 0.0:
        return None
    for k in range(MAX_SPARES + 1):
        if at_least(segment + k, segment, a) >= target:
            return k
    return None


def forecast(
    *,
    segment: int,
    target: float,
    mtbf_h: float,
    mttr_h: float,
    trays: int,
    racks: int = 1,
) -> dict[str, Any]:
    if not 0.0 < target < 1.0:
        raise InputError("--target must be between 0 and 1 (e.g. 0.99)")
    if trays < 1 or segment < 1:
        raise InputError("--trays and --segment must be at least 1")
    if segment > trays:
        raise InputError(f"segment of {segment} trays is larger than a rack ({trays} trays)")
    if racks < 1:
        raise InputError("--racks must be at least 1")
    a = tray_availability(mtbf_h, mttr_h)
    p = at_least(trays, segment, a)
    spares = spares_needed(segment, target, a)
    return {
        "segment": segment,
        "trays": trays,
        "target": target,
        "mtbf_h": mtbf_h,
        "mttr_h": mttr_h,
        "tray_availability": a,
        "probability": p,
        "meets_target": p >= target,
        "spares_needed": spares,
        "fits_in_rack": spares is not None and segment + spares <= trays,
        "racks": racks,
        "probability_all_racks": p**racks,
    }


def with_site_spares(result: dict[str, Any], spare_trays: int | None) -> dict[str, Any]:
    """``result`` plus what the site's shelf of spare trays covers (see the module docstring)."""
    spares = result["spares_needed"]
    slack = result["trays"] - result["segment"]
    per_rack = None if spares is None else max(0, spares - slack)
    needed = None if per_rack is None else per_rack * result["racks"]
    out = dict(result)
    out["rack_slack"] = slack
    out["shelf_needed"] = needed
    out["spares_on_hand"] = spare_trays
    out["shelf_short"] = (
        None if needed is None or spare_trays is None else max(0, needed - spare_trays)
    )
    out["covered"] = needed is not None and (
        needed == 0 or (spare_trays is not None and spare_trays >= needed)
    )
    return out

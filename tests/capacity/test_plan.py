"""The repair plan: fits now, the fewest repairs (checked against brute force), fragmentation."""

from __future__ import annotations

import itertools
from typing import TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capacity.plan import OutTray, RackSupply, Request, make_request, plan, repair_order
from dcops.errors import InputError

SIZES = (1, 2, 4, 8, 16)


class _Shape(TypedDict):
    """make_request's site arguments, the same in every call of a test."""

    gpus_per_tray: int
    rack_size: int
    same_domain: bool


def rack(name: str, free: int, out: int, total: int = 18, rank: int = 0) -> RackSupply:
    trays = tuple(OutTray(f"{name}-o{i}", "dcops", rank, since_s=float(i)) for i in range(out))
    return RackSupply(name, total, free, free, trays)


def test_fits_now_best_fit_keeps_whole_racks() -> None:
    racks = [rack("r01", 18, 0), rack("r02", 16, 2), rack("r03", 17, 1)]
    p = plan(Request(16, 16), racks, SIZES)
    assert p["fits_now"] and p["repairs"] == []
    assert p["placement"] == [{"rack": "r02", "segments": 1, "trays": 16}]
    assert p["fragmentation"]["free_trays"] == 35
    assert p["fragmentation"]["stranded_trays"] == 2 + 1


def test_refused_request_names_the_cheapest_repairs() -> None:
    # 128 GPUs in 16-tray segments: 2 segments; r01 needs 2 repairs, r02 needs 5
    racks = [rack("r01", 14, 4), rack("r02", 11, 7), rack("r03", 15, 3)]
    p = plan(Request(32, 16), racks, SIZES)
    assert not p["fits_now"] and p["fits_after_repairs"]
    assert sorted(r["node"] for r in p["repairs"]) == ["r01-o0", "r01-o1", "r03-o0"]
    assert {x["rack"] for x in p["placement"]} == {"r01", "r03"}


def test_short_even_after_every_repair() -> None:
    p = plan(Request(36, 18), [rack("r01", 10, 2), rack("r02", 18, 0)], SIZES)
    assert not p["fits_after_repairs"] and p["short_segments"] == 1
    assert p["placement"] == [] and p["fragmentation"] is None


def test_repair_order_owner_then_longest_out() -> None:
    trays = [
        OutTray("a", "operator", 3, since_s=1.0),
        OutTray("b", "dcops", 0, since_s=50.0),
        OutTray("c", "dcops", 0, since_s=10.0),
        OutTray("d", "dcops", 0, since_s=None),
    ]
    assert [t.node for t in repair_order(trays)] == ["c", "b", "d", "a"]


def test_requests_are_checked() -> None:
    kw: _Shape = {"gpus_per_tray": 4, "rack_size": 18, "same_domain": False}
    assert make_request(gpus=512, trays=None, segment=16, **kw) == Request(128, 16)
    assert make_request(gpus=6, trays=None, segment=None, **kw) == Request(2, 1)
    with pytest.raises(InputError, match="larger than a rack"):
        make_request(gpus=None, trays=20, segment=20, **kw)
    with pytest.raises(InputError, match="do not split"):
        make_request(gpus=None, trays=20, segment=16, **kw)
    with pytest.raises(InputError, match="exactly one"):
        make_request(gpus=4, trays=1, segment=None, **kw)
    kw["same_domain"] = True
    assert make_request(gpus=None, trays=12, segment=None, **kw) == Request(12, 12, True)
    with pytest.raises(InputError, match="one rack"):
        make_request(gpus=76, trays=None, segment=None, **kw)


def brute_force(racks: list[RackSupply], seg: int, need: int) -> int | None:
    best: int | None = None
    for xs in itertools.product(*(range(len(r.out) + 1) for r in racks)):
        if sum((r.free + x) // seg for r, x in zip(racks, xs, strict=True)) >= need:
            cost = sum(xs)
            best = cost if best is None else min(best, cost)
    return best


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 8), st.integers(0, 5)), min_size=1, max_size=3),
    st.integers(1, 6),
    st.integers(1, 4),
)
def test_repairs_are_the_fewest_and_make_it_fit(
    shape: list[tuple[int, int]], seg: int, need: int
) -> None:
    racks = [rack(f"r{i}", free, out, total=free + out) for i, (free, out) in enumerate(shape)]
    p = plan(Request(seg * need, seg), racks, SIZES)
    best = brute_force(racks, seg, need)
    if best is None:
        assert not p["fits_after_repairs"]
        return
    assert p["fits_after_repairs"]
    assert len(p["repairs"]) == best
    assert p["fits_now"] == (best == 0)
    # resuming exactly the named trays makes the request fit now
    fixed = {r["node"] for r in p["repairs"]}
    after = [
        RackSupply(
            r.rack,
            r.total,
            r.free + sum(t.node in fixed for t in r.out),
            r.healthy,
            tuple(t for t in r.out if t.node not in fixed),
        )
        for r in racks
    ]
    again = plan(Request(seg * need, seg), after, SIZES)
    assert again["fits_now"] and again["repairs"] == []
    placed = sum(x["trays"] for x in again["placement"])
    assert placed == seg * need
    assert again["fragmentation"]["free_trays"] == sum(r.free for r in after) - placed

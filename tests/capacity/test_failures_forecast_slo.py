"""Failure import, availability, forecast and SLO: hand calculations on documented examples."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capacity.failures import availability, parse_failures_csv
from capacity.forecast import at_least, forecast, spares_needed
from capacity.outages import Outage, downtime_s, merge
from capacity.slo import rack_slo
from dcops.errors import InputError, LocatedInputError

H = 3600.0

# The documented example (docs/capacity.md): node a fails twice in a 100 h window,
# the second failure logged twice (overlapping records); node b fails once and is
# still out when the window ends.
EXAMPLE = """node,failed_at,repaired_at,cause
a,2025-01-01T00:00:00Z,2025-01-01T10:00:00Z,xid 79
a,2025-01-02T00:00:00Z,2025-01-02T04:00:00Z,ecc
a,2025-01-02T02:00:00Z,2025-01-02T06:00:00Z,ecc (logged again)
b,2025-01-03T00:00:00Z,,nvlink
c,2025-01-01T00:00:00Z,2025-01-01T00:00:00Z,noise
"""
T0 = 1735689600.0  # 2025-01-01T00:00:00Z


def test_hand_calculation_of_mtbf_and_mttr() -> None:
    rows = parse_failures_csv(EXAMPLE, "ex.csv")
    result = availability(rows, since_s=T0, until_s=T0 + 100 * H)
    assert result["merged"] == 1 and result["records"] == 5
    nodes = {n["node"]: n for n in result["nodes"]}
    # a: outages 0-10 h and 24-30 h (merged 24-28 + 26-30): 2 failures, 16 h down, 84 h up
    assert nodes["a"]["failures"] == 2
    assert nodes["a"]["downtime_h"] == 16
    assert nodes["a"]["mtbf_h"] == 42  # 84 / 2
    assert nodes["a"]["mttr_h"] == 8  # 16 / 2
    # b: out from 48 h to the end of the window (still out): 52 h down, 48 h up, 1 failure
    assert (nodes["b"]["failures"], nodes["b"]["mtbf_h"], nodes["b"]["mttr_h"]) == (1, 48, 52)
    # c: a zero-length outage is a failure with no downtime
    assert (nodes["c"]["failures"], nodes["c"]["downtime_h"]) == (1, 0)
    fleet = result["fleet"]
    # up 84 + 48 + 100 = 232 h, down 16 + 52 = 68 h, failures 4
    assert fleet["failures"] == 4
    assert fleet["mtbf_h"] == 58 and fleet["mttr_h"] == 17
    assert fleet["availability"] == pytest.approx(232 / 300)


def test_default_window_is_first_to_last_event() -> None:
    rows = parse_failures_csv(EXAMPLE, "ex.csv")
    w = availability(rows)["window"]
    assert (w["since_s"], w["until_s"]) == (T0, T0 + 48 * H)


def test_racks_when_a_site_maps_nodes() -> None:
    rows = parse_failures_csv(EXAMPLE, "ex.csv")
    result = availability(
        rows, since_s=T0, until_s=T0 + 100 * H, nodes=["a", "b", "c", "d"],
        rack_of={"a": "r1", "b": "r1", "c": "r2", "d": "r2"},
    )  # fmt: skip
    racks = {r["rack"]: r for r in result["racks"]}
    assert racks["r1"]["failures"] == 3 and racks["r1"]["downtime_h"] == 68
    assert racks["r2"]["failures"] == 1 and racks["r2"]["uptime_h"] == 200


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("node,failed_at,repaired_at,cause\nx,2025-01-02,2025-01-01,c\n", ":2", "before failed_at"),
        ("node,failed_at,repaired_at,cause\nx,yesterday,,c\n", ":2", "bad failed_at"),
        ("node,failed_at,cause\nx,2025-01-01,c\n", ":1", "missing column(s) repaired_at"),
        ("node,failed_at,repaired_at,cause\n\nunknown-1,2025-01-01,,c\n", ":3", "not in the site"),
        ("node,failed_at,repaired_at,cause\n,2025-01-01,,c\n", ":2", "empty node"),
    ],
)
def test_bad_rows_name_file_and_line(text: str, where: str, what: str) -> None:
    with pytest.raises(LocatedInputError) as err:
        parse_failures_csv(text, "f.csv", known_nodes=["x"])
    assert str(err.value).startswith(f"f.csv{where}: ") and what in str(err.value)


intervals = st.lists(
    st.tuples(st.integers(0, 100), st.integers(0, 30), st.booleans()), min_size=1, max_size=12
)


@given(intervals)
def test_merge_never_double_counts(items: list[tuple[int, int, bool]]) -> None:
    outages = [Outage("n", float(s), None if open_ else float(s + d)) for s, d, open_ in items]
    merged = merge(outages)
    got = merged.outages["n"]
    assert merged.merged_away + len(got) == len(outages)
    # downtime equals the measure of the union, computed on a unit grid
    covered = {
        t
        for o in outages
        for t in range(int(o.start_s), int(o.end_s if o.end_s is not None else 200))
    }
    assert downtime_s(got, 0.0, 200.0) == len(covered)
    for x, y in itertools.pairwise(got):
        assert x.end_s is not None and x.end_s < y.start_s


def test_forecast_hand_calculation() -> None:
    # A = 990 / (990 + 10) = 0.99; P(at least 16 of 18 up)
    #   = 0.99^18 + 18 * 0.99^17 * 0.01 + 153 * 0.99^16 * 0.01^2
    hand = 0.99**18 + 18 * 0.99**17 * 0.01 + 153 * 0.99**16 * 0.0001
    r = forecast(segment=16, target=0.99, mtbf_h=990, mttr_h=10, trays=18)
    assert r["tray_availability"] == pytest.approx(0.99)
    assert r["probability"] == pytest.approx(hand, rel=1e-12)
    assert r["probability"] == pytest.approx(0.99927084, abs=1e-8)
    # spares: 16 of 16 -> 0.99^16 = 0.851; 16 of 17 -> 0.99^17 + 17 * 0.99^16 * 0.01 = 0.98767;
    # 16 of 18 -> 0.99927 >= 0.99: two spares
    assert 0.99**17 + 17 * 0.99**16 * 0.01 < 0.99
    assert r["spares_needed"] == 2 and r["fits_in_rack"] and r["meets_target"]
    assert (
        forecast(segment=16, target=0.9999, mtbf_h=990, mttr_h=10, trays=18)["fits_in_rack"]
        is False
    )


def test_forecast_bad_input() -> None:
    with pytest.raises(InputError, match="larger than a rack"):
        forecast(segment=20, target=0.9, mtbf_h=1, mttr_h=1, trays=18)
    with pytest.raises(InputError, match="between 0 and 1"):
        forecast(segment=16, target=1.5, mtbf_h=1, mttr_h=1, trays=18)


@given(st.integers(1, 30), st.floats(0.5, 0.9999), st.floats(0.5, 0.999))
def test_spares_reach_the_target_and_one_less_does_not(seg: int, a: float, target: float) -> None:
    k = spares_needed(seg, target, a)
    assert k is not None
    assert at_least(seg + k, seg, a) >= target
    if k > 0:
        assert at_least(seg + k - 1, seg, a) < target
    assert math.isclose(at_least(seg, 0, a), 1.0)


def test_slo_hand_calculation() -> None:
    # A rack of 18 trays (4 GPUs each), 16-tray segment, window 0-10 h.
    # t1 out 1-5 h, t2 out 2-4 h, t3 out 3-8 h: 3 out (segment lost) during 3-4 h only.
    nodes = [f"t{i}" for i in range(1, 19)]
    outs = {
        "t1": [Outage("t1", 1 * H, 5 * H)],
        "t2": [Outage("t2", 2 * H, 4 * H)],
        "t3": [Outage("t3", 3 * H, 8 * H)],
    }
    r = rack_slo(nodes, 4, outs, 16, 0.0, 10 * H)
    assert r["unavailable_h"] == pytest.approx(1.0)
    assert r["available_share"] == pytest.approx(0.9)
    assert r["tray_hours_out"] == pytest.approx(4 + 2 + 5)
    assert r["gpu_hours_lost"] == pytest.approx(44.0)
    # an outage still open at the end runs to the window's end; before the window, nothing
    open_ = {"t1": [Outage("t1", -5 * H, None)], "t2": [Outage("t2", 9 * H, None)]}
    r2 = rack_slo(nodes, 4, open_, 17, 0.0, 10 * H)
    assert r2["unavailable_h"] == pytest.approx(1.0) and r2["tray_hours_out"] == pytest.approx(11)

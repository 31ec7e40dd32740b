"""Collective judge: correctness, scale-aware busbw floors, peer outliers, errors."""

from __future__ import annotations

from burnin.profiles import load_thresholds
from burnin.verdicts import Status, collective_error, judge_collectives, scope_of
from dcops.errors import BackendError
from dcops.measurements import CollectiveResult, GpuRef
from tests.burnin._verdict_helpers import gpus, sweep

TH = load_thresholds("gb200-nvl72").collectives
RACK = gpus(18, prefix="r1t")
DOMAIN = {f"r1t{i:02d}": "r1" for i in range(18)} | {f"r2t{i:02d}": "r2" for i in range(18)}


def _tray(i: int) -> list[GpuRef]:
    return RACK[4 * i : 4 * i + 4]


def test_scopes() -> None:
    assert scope_of(_tray(0), DOMAIN) == "node"
    assert scope_of(RACK, DOMAIN) == "domain"
    assert scope_of([*RACK[:4], GpuRef("r2t00", 0)], DOMAIN) == "inter_domain"


def test_domain_floors_are_scale_aware() -> None:
    # 700 GB/s is healthy for one tray but fails a whole NVL72 domain.
    out = judge_collectives([sweep(_tray(0), 700.0), sweep(RACK, 700.0)], TH, domain_of=DOMAIN)
    assert [f.status for f in out if f.nodes == ("r1t00",)] == [Status.PASS]
    rack = [f for f in out if len(f.nodes) == 18]
    assert [(f.status, f.reason.threshold) for f in rack] == [(Status.FAIL, 745.0)]
    warn = judge_collectives([sweep(RACK, 790.0)], TH, domain_of=DOMAIN)
    assert [f.status for f in warn] == [Status.WARN]
    ok = judge_collectives([sweep(RACK, 840.0)], TH, domain_of=DOMAIN)
    assert [(f.status, f.reason.value) for f in ok] == [(Status.PASS, 840.0)]


def test_wrong_values_fail_and_na_warns() -> None:
    out = judge_collectives([sweep(RACK, 840.0, wrong=3)], TH, domain_of=DOMAIN)
    assert [(f.reason.metric, f.status) for f in out] == [("wrong", Status.FAIL)]
    out = judge_collectives([sweep(RACK, 840.0, wrong=None)], TH, domain_of=DOMAIN)
    assert [(f.reason.metric, f.status) for f in out] == [("wrong", Status.WARN)]


def test_missing_or_small_rows_are_errors_not_passes() -> None:
    empty = CollectiveResult("all_reduce", tuple(RACK), (), "test")
    small = sweep(RACK, 840.0, sizes=(1024,))
    out = judge_collectives([empty, small], TH, domain_of=DOMAIN)
    assert [f.status for f in out] == [Status.ERROR, Status.ERROR]
    err = collective_error("all_reduce", RACK, BackendError("NCCL: unhandled system error"))
    assert err.status is Status.ERROR and "NCCL" in err.reason.message


def test_tray_outlier_among_peers_above_the_floor() -> None:
    results = [sweep(_tray(i), 700.0 + i % 3) for i in range(18)]
    results[7] = sweep(_tray(7), 600.0)  # above the 560 warn floor, 14 % below peers
    results[9] = sweep(_tray(9), 672.0)  # 4 % below: not material
    out = judge_collectives(results, TH, domain_of=DOMAIN)
    bad = [f for f in out if f.status is not Status.PASS]
    assert [(f.nodes, f.reason.metric, f.status) for f in bad] == [
        (("r1t07",), "busbw_vs_peers", Status.FAIL)
    ]
    assert sum(1 for f in out if f.status is Status.PASS) == 17


def test_other_ops_skip_all_reduce_floors() -> None:
    out = judge_collectives([sweep(RACK, 100.0, op="all_gather")], TH, domain_of=DOMAIN)
    assert [f.status for f in out] == [Status.PASS]

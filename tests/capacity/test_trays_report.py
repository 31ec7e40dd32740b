"""Tray classification and the per-rack report: owners, domain states, segments (pure)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from capacity.report import build_report, domain_state, segments
from capacity.trays import (
    Observation,
    Owner,
    SchedulerFacts,
    Standing,
    TrayFacts,
    TrayVerdict,
    classify,
)

NOW = 1_000_000.0


def facts(**kw: Any) -> TrayFacts:
    base: dict[str, Any] = {"node": "n1", "rack": "r01", "gpus": 4}
    base.update(kw)
    return TrayFacts(**base)


def test_in_service_and_clean_is_healthy_and_free() -> None:
    v = classify(facts(observation=Observation("pass", "bi-1", NOW - 10)), now_s=NOW)
    assert v.standing is Standing.HEALTHY and v.free and v.owner is None


def test_busy_healthy_tray_is_not_free() -> None:
    v = classify(facts(scheduler=SchedulerFacts(busy=True)), now_s=NOW)
    assert v.standing is Standing.HEALTHY and not v.free


def test_each_owner() -> None:
    cases = {
        Owner.DCOPS: facts(
            scheduler=SchedulerFacts(drain=True, reason="dcops: burnin x", by_dcops=True)
        ),
        Owner.OPERATOR: facts(scheduler=SchedulerFacts(drain=True, reason="cable swap, bob")),
        Owner.REPAIR: facts(
            lifecycle="repair",
            scheduler=SchedulerFacts(drain=True, reason="dcops: sweep", by_dcops=True),
        ),
        Owner.MAINTENANCE: facts(scheduler=SchedulerFacts(drain=True, reason="maint: firmware")),
        Owner.UNREACHABLE: facts(observation=Observation("error", "sw-1", NOW, "unreachable")),
        Owner.UNKNOWN: facts(scheduler=None),
    }
    for owner, f in cases.items():
        v = classify(f, now_s=NOW)
        assert (v.standing, v.owner) == (Standing.OUT, owner), (owner, v)
    rma = classify(facts(scheduler=SchedulerFacts(drain=True, reason="RMA 4411")), now_s=NOW)
    assert rma.owner is Owner.REPAIR
    down = classify(facts(scheduler=SchedulerFacts(down=True)), now_s=NOW)
    assert down.owner is Owner.UNREACHABLE


def test_unreachable_until_a_later_observation_reaches_it() -> None:
    drained = SchedulerFacts(drain=True, reason="dcops: burnin: unreachable", by_dcops=True)
    hung = classify(
        facts(scheduler=drained, observation=Observation("error", "bi-1", NOW, "hung")), now_s=NOW
    )
    assert hung.owner is Owner.UNREACHABLE and "hung" in hung.reason
    later = classify(
        facts(scheduler=drained, observation=Observation("fail", "bi-2", NOW)), now_s=NOW
    )
    assert later.owner is Owner.DCOPS


def test_disagreement_and_failed_observation_and_certificate() -> None:
    disagree = classify(facts(lifecycle="drained", lifecycle_reason="dcops: x"), now_s=NOW)
    assert disagree.owner is Owner.UNKNOWN and "scheduler in service" in disagree.reason
    failed = classify(
        facts(observation=Observation("fail", "bi-1", NOW, message="gemm")), now_s=NOW
    )
    assert failed.owner is Owner.DCOPS
    no_cert = classify(facts(), now_s=NOW, certificate_max_age_s=86400)
    assert no_cert.owner is Owner.DCOPS and "certificate" in no_cert.reason
    old = classify(
        facts(certificate_time_s=NOW - 2 * 86400), now_s=NOW, certificate_max_age_s=86400
    )
    assert old.reason == "burn-in certificate expired"
    fresh = classify(facts(certificate_time_s=NOW - 3600), now_s=NOW, certificate_max_age_s=86400)
    assert fresh.standing is Standing.HEALTHY


def test_suspect_or_warned_is_degraded_not_promised() -> None:
    assert classify(facts(lifecycle="suspect"), now_s=NOW).standing is Standing.DEGRADED
    warn = classify(facts(observation=Observation("warn", "bi-1", NOW)), now_s=NOW)
    assert warn.standing is Standing.DEGRADED
    r = build_report([("r01", "r01", [warn])], (1,), at_s=NOW)
    assert r["racks"][0]["segments"]["1"]["promisable"] == 0
    assert r["racks"][0]["state"] == "down"


def test_domain_states() -> None:
    assert domain_state(18, 18, 0, 18) == "available"
    assert domain_state(18, 18, 0, 10) == "running"
    assert domain_state(18, 17, 0, 10) == "degraded"
    assert domain_state(18, 18, 1, 10) == "degraded"
    assert domain_state(18, 0, 3, 0) == "down"


@given(st.integers(0, 18), st.integers(0, 18), st.lists(st.integers(1, 18), min_size=1))
def test_segments_are_disjoint_and_bounded(healthy: int, busy: int, sizes: list[int]) -> None:
    free = max(0, healthy - busy)
    seg = segments(healthy, free, sizes)
    for s in sizes:
        p, f = seg[str(s)]["promisable"], seg[str(s)]["free_now"]
        assert p * s <= healthy < (p + 1) * s
        assert f <= p and f * s <= free


owners = st.sampled_from(list(Owner))


@given(
    st.lists(
        st.tuples(st.sampled_from(list(Standing)), owners, st.booleans()), min_size=1, max_size=40
    )
)
def test_fleet_totals_add_up(trays: list[tuple[Standing, Owner, bool]]) -> None:
    vs = [
        TrayVerdict(
            f"n{i}",
            "r01" if i % 2 else "r02",
            4,
            st_,
            owner if st_ is Standing.OUT else None,
            free=free and st_ is Standing.HEALTHY,
        )
        for i, (st_, owner, free) in enumerate(trays)
    ]
    racks = [(r, r, [v for v in vs if v.rack == r]) for r in ("r01", "r02")]
    rep = build_report(racks, (1, 2, 16), at_s=NOW)
    fleet = rep["fleet"]
    assert fleet["trays_total"] == len(vs)
    assert fleet["trays_healthy"] + fleet["trays_degraded"] + fleet["trays_out"] == len(vs)
    assert sum(fleet["out_by_owner"].values()) == fleet["trays_out"]
    assert fleet["gpus_healthy"] == 4 * fleet["trays_healthy"]
    for s in ("1", "2", "16"):
        assert fleet["segments"][s]["promisable"] == sum(
            r["segments"][s]["promisable"] for r in rep["racks"]
        )

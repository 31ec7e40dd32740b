"""Localization by stages (and the bisection it replaced): a fake engine, then the simulator."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from burnin.localize import Localization, localize, reference_from
from burnin.localize_bisect import bisect
from burnin.profiles import load_thresholds
from burnin.verdicts import Status
from dcops.collective_batch import check_disjoint
from dcops.errors import BackendError
from dcops.measurements import CollectiveOutcome, CollectiveResult, GpuRef
from dcops.sim import SimFleet
from tests.burnin._verdict_helpers import sweep

TH = load_thresholds("gb200-nvl72")
TRAYS = {f"t{i:02d}": [GpuRef(f"t{i:02d}", j) for j in range(4)] for i in range(1, 19)}


class FakeEngine:
    """A collective runs at its slowest member; scripted per-GPU factors, optional noise.

    ``wobble``: multipliers handed out in call order (one per test). Every test
    holds its GPUs for 1 s; ``batches`` records each batch's group sizes.
    """

    def __init__(self, factors: dict[GpuRef, float], *, wobble: Sequence[float] = ()) -> None:
        self.factors = factors
        self.wobble = list(wobble)
        self.calls = 0
        self.batches: list[list[int]] = []

    def run(
        self,
        op: str,
        members: Sequence[GpuRef],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> CollectiveResult:
        self.calls += 1
        factor = min(self.factors.get(g, 1.0) for g in members)
        if factor == 0:
            raise BackendError("NCCL: unhandled system error")
        noise = self.wobble.pop(0) if self.wobble else 1.0
        nodes = {g.node for g in members}
        peak = 700.0 if len(nodes) == 1 else 840.0
        return sweep(members, peak * factor * noise, sizes=sizes_bytes)

    def run_batch(
        self,
        op: str,
        groups: Sequence[Sequence[GpuRef]],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> list[CollectiveOutcome]:
        check_disjoint(groups)
        self.batches.append([len(g) for g in groups])
        out = []
        for g in groups:
            try:
                res = self.run(op, g, sizes_bytes=sizes_bytes)
                out.append(CollectiveOutcome(tuple(g), res, None, 1.0))
            except BackendError as exc:
                out.append(CollectiveOutcome(tuple(g), None, exc, 1.0))
        return out


def _targets(loc: Localization) -> list[tuple[str, str]]:
    return sorted((c.target, c.kind) for c in loc.culprits)


def test_healthy_group_costs_one_stage() -> None:
    engine = FakeEngine({})
    loc = localize(engine, TRAYS, TH)
    assert loc.culprits == () and (loc.stages, loc.tests) == (1, 1)
    assert loc.gpu_seconds == 72.0
    assert "all_pairs" not in str(loc.to_dict())


@pytest.mark.parametrize("bad", ["t01", "t09", "t18"])
def test_one_bad_tray_in_two_stages(bad: str) -> None:
    engine = FakeEngine(dict.fromkeys(TRAYS[bad], 0.5))
    loc = localize(engine, TRAYS, TH, known_short=True)
    assert _targets(loc) == [(bad, "tray")]
    # stage 1: every tray alone at once; stage 2: the suspect's 4 GPUs with 4 partners
    assert engine.batches == [[4] * 18, [5] * 4]
    assert (loc.stages, loc.tests) == (2, 22) and loc.tests == engine.calls
    assert loc.gpu_seconds == 18 * 4 + 4 * 5
    partners = {m.nodes[0] for m in loc.measurements if m.gpus == 5}
    assert len(partners) == 4 and bad not in partners
    rec = loc.records()[0]
    assert {"stages", "tests", "gpu_seconds"} <= set(rec) and rec["stages"] == 2
    assert [f.status for f in loc.findings()] == [Status.FAIL]
    assert "2 stages" in loc.findings()[0].reason.message


def test_one_bad_gpu_and_a_crashing_one() -> None:
    g = TRAYS["t05"][2]
    loc = localize(FakeEngine({g: 0.6}), TRAYS, TH, known_short=True)
    assert _targets(loc) == [("t05:gpu2", "gpu")]
    assert loc.findings()[0].gpus == (g,)
    loc = localize(FakeEngine({TRAYS["t12"][0]: 0.0}), TRAYS, TH, known_short=True)
    assert _targets(loc) == [("t12:gpu0", "gpu")]
    assert "NCCL" in loc.culprits[0].evidence["error"]


def test_two_bad_trays_still_two_stages() -> None:
    for bad in (("t02", "t03"), ("t04", "t15")):
        factors = {g: 0.7 for t in bad for g in TRAYS[t]}
        engine = FakeEngine(factors)
        loc = localize(engine, TRAYS, TH, known_short=True)
        assert _targets(loc) == [(t, "tray") for t in bad]
        assert loc.stages == 2 and engine.batches[1] == [5] * 8


def test_many_suspects_need_more_waves_than_partners_allow() -> None:
    bad = [f"t{i:02d}" for i in range(1, 16)]  # 15 bad trays, 3 partners: 60 GPU tests
    engine = FakeEngine({g: 0.5 for t in bad for g in TRAYS[t]})
    loc = localize(engine, TRAYS, TH, known_short=True)
    assert _targets(loc) == [(t, "tray") for t in bad]
    assert loc.stages == 1 + 20 and max(len(b) for b in engine.batches[1:]) == 3


def test_ambiguous_gpu_test_is_remeasured_alone() -> None:
    # screen: t07 4 % .. 8 % short (ambiguous: a suspect); its GPU tests: the first
    # ambiguous, the rest healthy; the re-measure (a third stage, one test) says healthy.
    wobble = [1.0] * 6 + [0.94] + [1.0] * 11 + [0.94, 1.0, 1.0, 1.0, 1.0]
    engine = FakeEngine({}, wobble=wobble)
    loc = localize(engine, TRAYS, TH, known_short=True)
    assert loc.culprits == () and loc.unresolved == ()
    assert engine.batches == [[4] * 18, [5] * 4, [5]]


def test_short_tray_alone_but_fine_with_partners_is_unresolved_if_short_again() -> None:
    wobble = [1.0] * 6 + [0.5] + [1.0] * 11 + [1.0] * 4 + [0.5]
    loc = localize(FakeEngine({}, wobble=wobble), TRAYS, TH, known_short=True)
    assert loc.culprits == () and loc.unresolved == (("t07",),)
    wobble[-1] = 1.0  # healthy the second time: cleared
    loc = localize(FakeEngine({}, wobble=wobble), TRAYS, TH, known_short=True)
    assert loc.culprits == () and loc.unresolved == ()


def test_fault_only_visible_as_a_whole_is_unresolved() -> None:
    engine = FakeEngine({}, wobble=[0.5] + [1.0] * 18 + [0.5])
    loc = localize(engine, TRAYS, TH)
    assert loc.culprits == () and loc.unresolved == (tuple(TRAYS),)
    assert loc.stages == 3


def test_every_tray_short_alone_has_no_partner_and_is_unresolved() -> None:
    trays = {k: TRAYS[k] for k in ("t01", "t02")}
    loc = localize(FakeEngine({g: 0.5 for t in trays for g in trays[t]}), trays, TH)
    assert loc.culprits == () and loc.unresolved == (("t01", "t02"),)


def test_reference_from_healthy_groups() -> None:
    results = [sweep(TRAYS["t01"] + TRAYS["t02"], b) for b in (800.0, 810.0, 820.0)]
    assert reference_from(results, 0) == 810.0
    assert reference_from([], 0) is None


# -- the bisection it replaced: one test per stage --------------------------------------


def test_bisection_one_test_per_stage() -> None:
    engine = FakeEngine(dict.fromkeys(TRAYS["t09"], 0.5))
    loc = bisect(engine, TRAYS, TH)
    assert _targets(loc) == [("t09", "tray")] and loc.method == "bisect"
    assert loc.stages == loc.tests == engine.calls <= 16
    assert all(b == [b[0]] for b in engine.batches)
    loc = bisect(FakeEngine({TRAYS["t05"][2]: 0.6}), TRAYS, TH)
    assert _targets(loc) == [("t05:gpu2", "gpu")]


def test_bisection_ambiguous_is_remeasured_and_whole_fault_unresolved() -> None:
    loc = bisect(FakeEngine({}, wobble=[0.95, 1.0]), TRAYS, TH)
    assert loc.culprits == () and loc.tests == 2
    loc = bisect(FakeEngine({}, wobble=[0.5, 1.0, 1.0, 0.5]), TRAYS, TH)
    assert loc.culprits == () and loc.unresolved == (tuple(TRAYS),)


# -- on the simulator ---------------------------------------------------------------


def _sim(faults: list[dict[str, object]], seed: int) -> tuple[SimFleet, dict[str, list[GpuRef]]]:
    fleet = SimFleet.from_dict(
        {"sku": "gb200-nvl72", "racks": 1, "seed": seed, "noise": 0.02, "faults": faults}
    )
    return fleet, {n: fleet.site.gpus(n) for n in fleet.site.nodes()}


@pytest.mark.parametrize("seed", range(6))
def test_sim_one_bad_tray_among_18(seed: int) -> None:
    bad = f"sim-r01-t{(seed * 5) % 18 + 1:02d}"
    fleet, trays = _sim([{"node": bad, "kind": "nvlink_degraded", "factor": 0.8}], seed)
    loc = localize(fleet.collectives, trays, TH, timeout_s=60, known_short=True)
    assert _targets(loc) == [(bad, "tray")]
    assert loc.stages <= 4 and loc.gpu_seconds > 0


@pytest.mark.parametrize("seed", range(6))
def test_sim_two_bad_trays_among_18(seed: int) -> None:
    a, b = (seed * 7) % 18 + 1, (seed * 11 + 4) % 18 + 1
    if a == b:
        b = b % 18 + 1
    bad = sorted({f"sim-r01-t{a:02d}", f"sim-r01-t{b:02d}"})
    faults: list[dict[str, object]] = [
        {"node": bad[0], "kind": "nvlink_degraded", "factor": 0.85},
        {"node": bad[1], "kind": "nvlink_degraded", "factor": 0.5},
    ]
    fleet, trays = _sim(faults, seed)
    loc = localize(fleet.collectives, trays, TH, timeout_s=60, known_short=True)
    assert _targets(loc) == [(t, "tray") for t in bad]
    assert loc.stages <= 4
    # cheaper than the bisection on the same fleet (GPU-time and stages)
    fleet2, _ = _sim(faults, seed)
    old = bisect(fleet2.collectives, trays, TH, timeout_s=60, known_short=True)
    assert loc.stages < old.stages and loc.gpu_seconds < old.gpu_seconds


def test_sim_one_bad_gpu_link() -> None:
    fleet, trays = _sim(
        [{"node": "sim-r01-t08", "gpu": 1, "kind": "nvlink_degraded", "factor": 0.6}], 9
    )
    loc = localize(fleet.collectives, trays, TH, timeout_s=60, known_short=True)
    assert _targets(loc) == [("sim-r01-t08:gpu1", "gpu")]


def test_sim_healthy_rack_no_culprit() -> None:
    for seed in range(5):
        fleet, trays = _sim([], seed)
        loc = localize(fleet.collectives, trays, TH, timeout_s=60, known_short=True)
        assert loc.culprits == ()


def test_sim_batch_groups_must_be_disjoint() -> None:
    fleet, trays = _sim([], 1)
    a = trays["sim-r01-t01"]
    with pytest.raises(ValueError, match="disjoint"):
        fleet.collectives.run_batch("all_reduce", [a, a[:2]], sizes_bytes=[1 << 20])
    out = fleet.collectives.run_batch(
        "all_reduce", [a, trays["sim-r01-t02"]], sizes_bytes=[1 << 30]
    )
    alone = fleet.collectives.run("all_reduce", a, sizes_bytes=[1 << 30])
    assert [o.error for o in out] == [None, None]
    assert out[0].elapsed_s > 0 and out[0].gpu_seconds == pytest.approx(4 * out[0].elapsed_s)
    # concurrency costs nothing: each group's figure is what it gets alone (same model)
    assert out[0].result is not None
    ratio = out[0].result.peak_busbw_gbps / alone.peak_busbw_gbps
    assert 0.9 < ratio < 1.1

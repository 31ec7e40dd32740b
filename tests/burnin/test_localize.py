"""Localization by bisection: a fake engine for the logic, the simulator for the scenarios."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from burnin.localize import all_pairs_rounds, localize, reference_from
from burnin.profiles import load_thresholds
from burnin.verdicts import Status
from dcops.errors import BackendError
from dcops.measurements import CollectiveResult, GpuRef
from dcops.sim import SimFleet
from tests.burnin._verdict_helpers import sweep

TH = load_thresholds("gb200-nvl72")
TRAYS = {f"t{i:02d}": [GpuRef(f"t{i:02d}", j) for j in range(4)] for i in range(1, 19)}


class FakeEngine:
    """A collective runs at its slowest member; scripted per-GPU factors, optional noise."""

    def __init__(self, factors: dict[GpuRef, float], *, wobble: Sequence[float] = ()) -> None:
        self.factors = factors
        self.wobble = list(wobble)
        self.calls = 0

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


def test_healthy_group_costs_one_round() -> None:
    loc = localize(FakeEngine({}), TRAYS, TH)
    assert loc.culprits == () and loc.rounds == 1
    assert loc.all_pairs_rounds == all_pairs_rounds(18) == 153


@pytest.mark.parametrize("bad", ["t01", "t09", "t10", "t18"])
def test_one_bad_tray(bad: str) -> None:
    engine = FakeEngine(dict.fromkeys(TRAYS[bad], 0.5))
    loc = localize(engine, TRAYS, TH)
    assert [(c.target, c.kind) for c in loc.culprits] == [(bad, "tray")]
    assert loc.rounds == engine.calls <= 16
    assert loc.records()[0]["evidence"]["all_pairs_rounds"] == 153
    assert [f.status for f in loc.findings()] == [Status.FAIL]


def test_one_bad_gpu_and_a_crashing_one() -> None:
    g = TRAYS["t05"][2]
    loc = localize(FakeEngine({g: 0.6}), TRAYS, TH)
    assert [(c.target, c.kind) for c in loc.culprits] == [("t05:gpu2", "gpu")]
    assert loc.findings()[0].gpus == (g,)
    loc = localize(FakeEngine({TRAYS["t12"][0]: 0.0}), TRAYS, TH)
    assert [(c.target, c.kind) for c in loc.culprits] == [("t12:gpu0", "gpu")]
    assert "NCCL" in loc.culprits[0].evidence["error"]


def test_two_bad_trays_in_one_half_and_across_halves() -> None:
    for bad in (("t02", "t03"), ("t04", "t15")):
        factors = {g: 0.7 for t in bad for g in TRAYS[t]}
        loc = localize(FakeEngine(factors), TRAYS, TH)
        assert sorted(c.target for c in loc.culprits) == list(bad)
        assert loc.rounds < 40 < loc.all_pairs_rounds


def test_ambiguous_measurement_is_remeasured() -> None:
    # First (whole-group) measurement 5 % short: ambiguous; the re-measure says healthy.
    engine = FakeEngine({}, wobble=[0.95, 1.0])
    loc = localize(engine, TRAYS, TH)
    assert loc.culprits == () and loc.rounds == 2
    assert loc.measurements[0].rounds == 2 and not loc.measurements[0].short


def test_fault_only_visible_as_a_whole_is_unresolved() -> None:
    # Short as a group of 18, healthy in every part: reported, not blamed on a tray.
    engine = FakeEngine({}, wobble=[0.5, 1.0, 1.0, 0.5])
    loc = localize(engine, TRAYS, TH)
    assert loc.culprits == ()
    assert loc.unresolved == (tuple(TRAYS),)


def test_no_partner_falls_back_to_one_tray_expectation() -> None:
    trays = {k: TRAYS[k] for k in ("t01", "t02")}
    factors = {g: 0.5 for t in trays for g in trays[t]}
    loc = localize(FakeEngine(factors), trays, TH)
    assert sorted(c.target for c in loc.culprits) == ["t01", "t02"]
    assert all(c.evidence["partner"] is None for c in loc.culprits)


def test_reference_from_healthy_groups() -> None:
    results = [sweep(TRAYS["t01"] + TRAYS["t02"], b) for b in (800.0, 810.0, 820.0)]
    assert reference_from(results, 0) == 810.0
    assert reference_from([], 0) is None


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
    loc = localize(fleet.collectives, trays, TH, timeout_s=60)
    assert [(c.target, c.kind) for c in loc.culprits] == [(bad, "tray")]
    assert loc.rounds < loc.all_pairs_rounds
    assert loc.rounds <= 16


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
    loc = localize(fleet.collectives, trays, TH, timeout_s=60)
    assert sorted(c.target for c in loc.culprits) == bad
    assert loc.rounds < 40 < loc.all_pairs_rounds


def test_sim_one_bad_gpu_link() -> None:
    fleet, trays = _sim(
        [{"node": "sim-r01-t08", "gpu": 1, "kind": "nvlink_degraded", "factor": 0.6}], 9
    )
    loc = localize(fleet.collectives, trays, TH, timeout_s=60)
    assert [(c.target, c.kind) for c in loc.culprits] == [("sim-r01-t08:gpu1", "gpu")]


def test_sim_healthy_rack_no_culprit() -> None:
    for seed in range(5):
        fleet, trays = _sim([], seed)
        loc = localize(fleet.collectives, trays, TH, timeout_s=60, known_short=True)
        assert loc.culprits == ()

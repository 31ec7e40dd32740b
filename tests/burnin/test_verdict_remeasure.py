"""Adaptive GEMM re-measurement: which GPUs burn again, how they are judged, what it costs."""

from __future__ import annotations

import dataclasses
import random

import pytest

from burnin.profiles import load_thresholds
from burnin.profiles.model import GemmThresholds, PeerRule, RemeasureRule
from burnin.suite import flagged_gpus
from burnin.verdicts import Status, judge_gemm
from burnin.verdicts.remeasure import precision_factor, undecided
from dcops.errors import InputError
from dcops.measurements import GemmResult, GpuRef
from dcops.sim import SimFleet
from tests.burnin._sim_burnin import burnin_sim
from tests.burnin._verdict_helpers import gemm, gpus

PEERS = PeerRule(z_cut=3.5, warn_deficit=0.03, fail_deficit=0.05, min_peers=8)
RULE = RemeasureRule(z_low=1.5, z_high=5.0, max_rounds=4, min_deficit=0.015)
TH = GemmThresholds(peers=PEERS, remeasure=RULE)
FLEET = gpus(10)  # 40 GPUs


def _rounds(values: dict[GpuRef, list[float]]) -> dict[GpuRef, list[GemmResult]]:
    return {g: [gemm(g, v) for v in vs] for g, vs in values.items()}


def _fleet(special: dict[GpuRef, list[float]], k: int = 3) -> dict[GpuRef, list[float]]:
    # peers spread 1000 +- ~10 (MAD 10 -> sigma 14.8); identical over rounds
    base = {g: [1000.0 + (-10.0 if i % 2 else 10.0) * (i % 3)] * k for i, g in enumerate(FLEET)}
    return {**base, **special}


def test_only_the_ambiguous_band_is_remeasured() -> None:
    a, b, c, d = FLEET[0], FLEET[1], FLEET[2], FLEET[3]
    # peers: median 1000, sigma 14.8. a: 2.5 sigma, 3.7 % low (ambiguous); b: 10 sigma
    # (flagged already); c: 0.5 sigma (clear); d: 1.6 sigma, 2.4 % low (ambiguous)
    values = _fleet({a: [963.0] * 3, b: [850.0] * 3, c: [993.0] * 3, d: [976.0] * 3})
    todo = undecided(_rounds(values), TH, fixed_rounds=3, extra={})
    assert todo == sorted([a, d])
    # nothing when the profile asks for no re-measurement
    off = dataclasses.replace(TH, remeasure=dataclasses.replace(RULE, max_rounds=0))
    assert undecided(_rounds(values), off, fixed_rounds=3, extra={}) == []


def test_sequential_stop_rules_and_the_cap() -> None:
    a, b, c = FLEET[0], FLEET[1], FLEET[2]
    # after one more round (4 in all, sigma 14.8 x sqrt(3/4)): a far lower: z 6.1 >= z_high,
    # decided;
    # b back at the median: cleared; c in between: burns again, until the cap
    values = _fleet({a: [963.0] * 3 + [800.0], b: [963.0] * 3 + [1100.0], c: [963.0] * 4})
    extra = {a: 1, b: 1, c: 1}
    assert undecided(_rounds(values), TH, fixed_rounds=3, extra=extra) == [c]
    assert undecided(_rounds(values), TH, fixed_rounds=3, extra={**extra, c: 4}) == []


def test_precision_factor() -> None:
    assert precision_factor(3, 3) == 1.0 and precision_factor(3, 2) == 1.0
    assert precision_factor(3, 12) == pytest.approx(0.5)


def test_more_rounds_judged_at_their_precision_and_kept_out_of_the_vote() -> None:
    a = FLEET[0]
    fixed = [[gemm(g, v[0]) for g, v in _fleet({a: [960.0] * 3}).items()] for _ in range(3)]
    # 4 % low at 2.7 sigma over 3 rounds: not flagged
    assert all(f.status is Status.PASS for f in judge_gemm(fixed, TH) if f.gpus == (a,))
    # 4 more rounds, same figure, another checksum (another seed): 2.7 x sqrt(7/3) = 4.1 sigma
    extra = [[gemm(a, 960.0, checksum="other")] for _ in range(4)]
    found = [f for f in judge_gemm(fixed, TH, extra=extra) if f.gpus == (a,)]
    assert [f.reason.metric for f in found if f.status is not Status.PASS] == ["tflops_vs_peers"]
    assert "7 round" not in found[0].reason.message  # the finding is the speed one
    assert not any(f.reason.metric == "checksum" for f in found)


def test_profile_carries_the_rule_and_refuses_a_bad_band() -> None:
    rule = load_thresholds("gb200-nvl72").gemm.remeasure
    assert rule.max_rounds >= 1 and rule.z_low < rule.z_high
    bad = "version: 1\nprofiles:\n  h100:\n    gemm: {remeasure: {z_low: 3.0, z_high: 2.0}}\n"
    with pytest.raises(InputError, match="z_high must be above z_low"):
        load_thresholds("h100", override_text=bad)
    neg = "version: 1\nprofiles:\n  h100:\n    gemm: {remeasure: {max_rounds: -1}}\n"
    with pytest.raises(InputError, match="negative"):
        load_thresholds("h100", override_text=neg)


# -- on the simulator: the scenario at 3 % noise -----------------------------------


def _scenario(seed: int) -> tuple[dict[str, object], list[str]]:
    rng = random.Random(seed)
    nodes = [f"sim-r01-t{t:02d}" for t in range(1, 19)]
    slow = [f"{n}:gpu{rng.randrange(4)}" for n in rng.sample(nodes, 6)]
    faults = [
        {"node": s.split(":")[0], "gpu": int(s[-1]), "kind": "slow_gemm", "factor": 0.93}
        for s in slow
    ]
    return {"sku": "gb200-nvl72", "racks": 2, "seed": seed, "noise": 0.03, "faults": faults}, slow


def test_sim_adaptive_finds_the_slow_gpus_the_fixed_rounds_miss() -> None:
    th = load_thresholds("gb200-nvl72")
    off = dataclasses.replace(th.gemm.remeasure, max_rounds=0)
    fixed = dataclasses.replace(th, gemm=dataclasses.replace(th.gemm, remeasure=off))
    found = {"fixed": 0, "adaptive": 0}
    gpu_s = {"fixed": 0.0, "adaptive": 0.0}
    false_pos = 0
    total = 0
    for seed in range(4242, 4250):
        data, slow = _scenario(seed)
        for label, prof in (("fixed", fixed), ("adaptive", th)):
            fleet = SimFleet.from_dict(data)
            try:
                run = burnin_sim(fleet, prof)
            finally:
                fleet.close()
            flagged = flagged_gpus(run.verdict)
            found[label] += sum(s in flagged for s in slow)
            gpu_s[label] += run.params["gpu_seconds_by_phase"]["gemm"]
            p = run.params
            assert p["gemm_rounds"] == p["gemm_fixed_rounds"] + p["gemm_remeasure_rounds"]
            if label == "adaptive":
                false_pos += len(flagged - set(slow))
                assert p["gemm_remeasured_gpus"] < 0.2 * 144
        total += len(slow)
    assert found["adaptive"] >= 0.9 * total > found["fixed"]
    assert gpu_s["adaptive"] <= 1.3 * gpu_s["fixed"]
    assert false_pos <= 2  # of 8 x 138 healthy GPUs

"""GEMM judge: floors, peers, baseline, SDC by checksum majority, rel_error, NaN, missing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from burnin.profiles import load_thresholds
from burnin.profiles.model import GemmThresholds
from burnin.verdicts import Finding, Spread, Status, judge_gemm, slow_gpus
from dcops.measurements import GemmResult, GpuRef
from tests.burnin._verdict_helpers import gemm, gpus

TH = load_thresholds("gb200-nvl72").gemm  # bf16 floors 1375 warn / 1125 fail
FLEET = gpus(6)  # 24 GPUs


def _by(findings: list[Finding], gpu: GpuRef) -> list[Finding]:
    return [f for f in findings if f.gpus == (gpu,)]


def _status(findings: list[Finding], gpu: GpuRef) -> Status:
    return max((f.status for f in _by(findings, gpu)), default=Status.PASS)


def _round(speeds: dict[GpuRef, float], base: float = 2000.0) -> list[GemmResult]:
    return [gemm(g, speeds.get(g, base)) for g in FLEET]


def test_healthy_fleet_all_pass_with_evidence() -> None:
    rounds = [[gemm(g, 2000.0 + (i % 5)) for i, g in enumerate(FLEET)] for _ in range(3)]
    out = judge_gemm(rounds, TH)
    assert {f.status for f in out} == {Status.PASS}
    assert len(out) == len(FLEET)
    assert out[0].reason.metric == "tflops" and out[0].reason.threshold is not None


def test_gpu_far_below_peers_is_flagged_even_above_the_floor() -> None:
    slow = FLEET[5]
    rounds = [
        [gemm(g, (1850.0 if g == slow else 2000.0) + (i % 7)) for i, g in enumerate(FLEET)]
        for _ in range(3)
    ]
    out = judge_gemm(rounds, TH)
    assert TH.floor_warn_tflops["bf16"] < 1850
    assert _status(out, slow) is Status.FAIL  # 7.5 % below peers
    assert {f.reason.metric for f in _by(out, slow)} == {"tflops_vs_peers"}
    assert slow_gpus(out) == {slow}
    assert all(_status(out, g) is Status.PASS for g in FLEET if g != slow)


def test_small_deficit_warns_and_tiny_one_passes() -> None:
    warn_gpu, ok_gpu = FLEET[1], FLEET[2]
    speeds = {warn_gpu: 2000.0 * 0.96, ok_gpu: 2000.0 * 0.985}
    rounds = [[gemm(g, speeds.get(g, 2000.0) + (i % 3) * 0.5) for i, g in enumerate(FLEET)]]
    out = judge_gemm(rounds, TH)
    assert _status(out, warn_gpu) is Status.WARN
    assert _status(out, ok_gpu) is Status.PASS


def test_absolute_floors() -> None:
    rounds = [_round({FLEET[0]: 1000.0, FLEET[1]: 1300.0})]
    out = judge_gemm(rounds, TH)
    assert any(f.reason.metric == "tflops" and f.status is Status.FAIL for f in _by(out, FLEET[0]))
    assert any(f.reason.metric == "tflops" and f.status is Status.WARN for f in _by(out, FLEET[1]))


def test_whole_slow_fleet_caught_by_floor_and_baseline_not_by_peers() -> None:
    rounds = [_round({}, base=1900.0)]
    assert {f.status for f in judge_gemm(rounds, TH)} == {Status.PASS}
    out = judge_gemm(rounds, TH, baseline=Spread(median=2000.0, mad=10.0, count=500))
    assert {f.reason.metric for f in out} == {"tflops_vs_baseline"}
    assert {f.status for f in out} == {Status.FAIL}


def test_checksum_minority_fails() -> None:
    bad = FLEET[3]
    rounds = [[gemm(g, 2000.0, checksum="bad" if g == bad else "good") for g in FLEET]]
    out = judge_gemm(rounds, TH)
    assert _status(out, bad) is Status.FAIL
    assert [f.reason.metric for f in _by(out, bad)] == ["checksum"]
    assert _by(out, bad)[0].reason.threshold == "good"
    assert all(_status(out, g) is Status.PASS for g in FLEET if g != bad)


def test_checksum_without_majority_is_error_for_all() -> None:
    pair = [GpuRef("a", 0), GpuRef("a", 1)]
    out = judge_gemm(
        [[gemm(pair[0], 1.0, checksum="x"), gemm(pair[1], 1.0, checksum="y")]], GemmThresholds()
    )
    assert {f.status for f in out} == {Status.ERROR}


def test_rel_error_and_nan_fail() -> None:
    rounds = [
        [
            gemm(FLEET[0], 2000.0, rel_error=0.2),
            gemm(FLEET[1], 2000.0, rel_error=float("nan")),
            gemm(FLEET[2], 2000.0, has_nan=True),
            *(gemm(g, 2000.0) for g in FLEET[3:]),
        ]
    ]
    out = judge_gemm(rounds, TH)
    assert [f.reason.metric for f in _by(out, FLEET[0])] == ["rel_error"]
    assert [f.reason.metric for f in _by(out, FLEET[1])] == ["nan"]
    assert [f.reason.metric for f in _by(out, FLEET[2])] == ["nan"]
    assert all(_status(out, g) is Status.FAIL for g in FLEET[:3])


def test_unknown_dtype_bound_is_error() -> None:
    out = judge_gemm([[gemm(FLEET[0], 1.0, dtype="int4")]], TH)
    assert _status(out, FLEET[0]) is Status.ERROR


def test_expected_gpu_without_result_is_error() -> None:
    missing = GpuRef("zz", 0)
    out = judge_gemm([_round({})], TH, expected=[*FLEET, missing])
    assert _status(out, missing) is Status.ERROR
    assert judge_gemm([], TH, expected=[missing])[0].status is Status.ERROR


def test_nan_never_passes_even_alone() -> None:
    out = judge_gemm([[gemm(FLEET[0], 2000.0, has_nan=True)]], GemmThresholds())
    assert _status(out, FLEET[0]) is Status.FAIL


@given(st.floats(min_value=1e-3, max_value=1e3))
def test_scaling_speeds_keeps_relative_verdicts(c: float) -> None:
    th = GemmThresholds()  # no absolute floors
    speeds = [2000.0 + (i % 5) for i in range(len(FLEET))]
    speeds[4] = 1800.0
    speeds[9] = 1930.0
    a = judge_gemm([[gemm(g, s) for g, s in zip(FLEET, speeds, strict=True)]], th)
    b = judge_gemm([[gemm(g, s * c) for g, s in zip(FLEET, speeds, strict=True)]], th)
    assert [(f.gpus, f.status) for f in a] == [(f.gpus, f.status) for f in b]

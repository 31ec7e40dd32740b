"""GPU-health judge over NVML-like readings: XIDs, lost/missing GPUs, ECC, throttling, NVLink."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from burnin.profiles.model import HealthThresholds
from burnin.verdicts import Finding, Status, classify_xid, judge_readings
from burnin.verdicts.xid import xid_status
from dcops.measurements import ClocksEventReason, GpuReading, GpuRef, XidEvent
from tests.burnin._verdict_helpers import node_reading, reading

TH = HealthThresholds()
NODE = "n01"
G = [GpuRef(NODE, i) for i in range(4)]


def _judge(
    *gpu_readings: GpuReading, slow: Collection[GpuRef] = (), expected: int = 4
) -> list[Finding]:
    return judge_readings(
        [node_reading(NODE, gpu_readings)], TH, expected_gpus={NODE: expected}, slow=slow
    )


def _of(out: list[Finding], gpu: GpuRef) -> list[tuple[str, Status]]:
    return [(f.reason.metric, f.status) for f in out if f.gpus == (gpu,)]


def test_healthy_node_passes() -> None:
    out = _judge(*(reading(g) for g in G))
    assert {f.status for f in out} == {Status.PASS} and len(out) == 4


def test_lost_and_missing_gpus_fail() -> None:
    out = _judge(reading(G[0], lost=True, xids=[XidEvent(79, 1.0)]), reading(G[1]), reading(G[2]))
    assert ("lost", Status.FAIL) in _of(out, G[0])
    assert ("xid", Status.FAIL) in _of(out, G[0])
    assert _of(out, G[3]) == [("gpu_count", Status.FAIL)]


def test_node_without_reading_is_error() -> None:
    out = judge_readings([], TH, expected_gpus={NODE: 4})
    assert [f.status for f in out] == [Status.ERROR]


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        (13, "", Status.WARN),
        (45, "", Status.PASS),
        (48, "", Status.FAIL),
        (63, "", Status.WARN),
        (79, "", Status.FAIL),
        (92, "", Status.WARN),
        (95, "", Status.FAIL),
        (145, "", Status.FAIL),
        (154, "recovery action: NONE", Status.WARN),
        (154, "GPU recovery action changed to DRAIN_AND_RESET", Status.FAIL),
        (999, "", Status.FAIL),
    ],
)
def test_xid_classification(code: int, message: str, status: Status) -> None:
    rule = classify_xid(code, message)
    assert xid_status(rule) is status
    out = _judge(reading(G[0], xids=[XidEvent(code, 5.0, message)]), *(reading(g) for g in G[1:]))
    xid = [f for f in out if f.reason.metric == "xid"]
    assert xid[0].status is status and xid[0].action
    assert classify_xid(154, "DRAIN_AND_RESET").action.endswith("DRAIN_AND_RESET")


def test_xids_merged_across_snapshots() -> None:
    x = XidEvent(48, 3.0)
    snaps = [node_reading(NODE, [reading(G[0], xids=[x])], t) for t in (1.0, 2.0)]
    out = judge_readings(snaps, TH, expected_gpus={NODE: 1})
    assert sum(1 for f in out if f.reason.metric == "xid") == 1


def test_memory_and_nvlink_health() -> None:
    out = _judge(
        reading(G[0], ecc_uncorrectable=1),
        reading(G[1], failed=True),
        reading(G[2], pending=True, ecc_correctable=20_000),
        reading(G[3], links_active=16, nvlink_errors=500),
    )
    assert _of(out, G[0]) == [("ecc_uncorrectable", Status.FAIL)]
    assert _of(out, G[1]) == [("remapped_rows", Status.FAIL)]
    assert sorted(_of(out, G[2])) == [
        ("ecc_correctable", Status.WARN),
        ("remapped_rows", Status.WARN),
    ]
    assert sorted(_of(out, G[3])) == [
        ("nvlink_errors", Status.WARN),
        ("nvlink_links_active", Status.FAIL),
    ]


def test_throttle_warns_and_fails_when_also_slow() -> None:
    hot = ClocksEventReason.HW_THERMAL_SLOWDOWN
    policy = ClocksEventReason.SW_POWER_CAP | ClocksEventReason.GPU_IDLE
    out = _judge(
        reading(G[0], reasons=hot, temperature_c=91.0),
        reading(G[1], reasons=hot, temperature_c=91.0),
        reading(G[2], reasons=policy),
        reading(G[3]),
        slow={G[1]},
    )
    assert sorted(_of(out, G[0])) == [
        ("clocks_event_reasons", Status.WARN),
        ("temperature_c", Status.WARN),
    ]
    assert ("clocks_event_reasons", Status.FAIL) in _of(out, G[1])
    assert _of(out, G[2]) == [("readings", Status.PASS)]  # policy reasons are not faults


def test_temperature_fail_point() -> None:
    th = HealthThresholds(temperature_fail_c=95.0)
    out = judge_readings(
        [node_reading(NODE, [reading(G[0], temperature_c=99.0)])], th, expected_gpus={}
    )
    assert [(f.reason.metric, f.status) for f in out] == [("temperature_c", Status.FAIL)]

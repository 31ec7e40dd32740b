"""Each fault kind shows up in the measurements it should, and only there.

Method: a faulted fleet and its healthy twin (same seed, no fault) are measured
with the same calls; since noise is keyed per GPU and per call, every
measurement the fault does not touch is bit-for-bit identical.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from dcops.errors import DcopsError
from dcops.measurements import HARDWARE_THROTTLE, ClocksEventReason
from dcops.sim import FAULT_KINDS, SimFleet, healthy_checksum

RACK = [f"sim-r01-t{t:02d}" for t in range(1, 19)]
NODE = "sim-r01-t05"
TIMEOUT_S = 0.05


def fleet(*faults: dict[str, Any], load: float = 0.8) -> SimFleet:
    return SimFleet.from_dict(
        {
            "sku": "gb200-nvl72",
            "racks": 1,
            "seed": 11,
            "noise": 0.02,
            "load": load,
            "faults": list(faults),
        }
    )


def _try(call: Any) -> Any:
    try:
        return call()
    except DcopsError as exc:
        return f"{type(exc).__name__}: {exc}"


def observe(f: SimFleet) -> dict[tuple[str, ...], Any]:
    seen: dict[tuple[str, ...], Any] = {}
    sizes = [1 << 20, 1 << 30]
    for node in RACK:
        gpus = f.site.gpus(node)
        seen[("probe", node)] = _try(partial(f.probe.read, node, timeout_s=TIMEOUT_S))
        seen[("gemm", node)] = _try(
            partial(f.gemm.run, gpus, dtype="bf16", duration_s=0.01, seed=3, timeout_s=TIMEOUT_S)
        )
        seen[("coll_node", node)] = _try(
            partial(f.collectives.run, "all_reduce", gpus, sizes_bytes=sizes, timeout_s=TIMEOUT_S)
        )
    everyone = f.gpus(RACK)
    seen[("coll_rack",)] = _try(
        partial(f.collectives.run, "all_reduce", everyone, sizes_bytes=sizes, timeout_s=TIMEOUT_S)
    )
    return seen


def differences(fault: dict[str, Any]) -> tuple[set[tuple[str, ...]], dict[tuple[str, ...], Any]]:
    healthy = observe(fleet())
    faulted = observe(fleet(fault))
    return {k for k in healthy if healthy[k] != faulted[k]}, faulted


ALL_N = {("probe", NODE), ("gemm", NODE), ("coll_node", NODE), ("coll_rack",)}
CASES: list[tuple[dict[str, Any], set[tuple[str, ...]]]] = [
    ({"kind": "slow_gemm", "gpu": 2, "factor": 0.9}, {("gemm", NODE)}),
    ({"kind": "slow_node", "factor": 0.8}, {("gemm", NODE)}),
    ({"kind": "sdc", "gpu": 0}, {("gemm", NODE), ("coll_node", NODE), ("coll_rack",)}),
    ({"kind": "xid", "gpu": 1, "code": 79}, ALL_N),
    ({"kind": "xid", "gpu": 1, "code": 48}, {("probe", NODE)}),
    ({"kind": "thermal_throttle", "gpu": 3}, {("probe", NODE), ("gemm", NODE)}),
    ({"kind": "power_brake"}, {("probe", NODE), ("gemm", NODE)}),
    ({"kind": "ecc", "gpu": 0, "uncorrectable": 1}, {("probe", NODE)}),
    ({"kind": "remapped_rows", "gpu": 0, "state": "failed"}, {("probe", NODE)}),
    ({"kind": "missing_gpu", "gpu": 2}, ALL_N),
    ({"kind": "nvlink_degraded", "factor": 0.5}, {("coll_node", NODE), ("coll_rack",)}),
    (
        {"kind": "nvlink_down", "gpu": 1, "links": 9},
        {("probe", NODE), ("coll_node", NODE), ("coll_rack",)},
    ),
    ({"kind": "unreachable"}, ALL_N),
    ({"kind": "hang"}, ALL_N),
]


def test_every_kind_is_covered() -> None:
    assert {case["kind"] for case, _ in CASES} == set(FAULT_KINDS)


@pytest.mark.parametrize(
    ("fault", "expected"), CASES, ids=[f"{c['kind']}-{i}" for i, (c, _) in enumerate(CASES)]
)
def test_fault_shows_only_where_it_should(
    fault: dict[str, Any], expected: set[tuple[str, ...]]
) -> None:
    changed, _ = differences({"node": NODE, **fault})
    assert changed == expected


def test_slow_gemm_lowers_that_gpu_only() -> None:
    f = fleet({"node": NODE, "gpu": 2, "kind": "slow_gemm", "factor": 0.5}, load=0.0)
    results = f.gemm.run(f.site.gpus(NODE), dtype="bf16", duration_s=5, seed=1)
    tflops = [r.tflops for r in results]
    assert tflops[2] < 0.6 * 2500
    assert all(t > 0.85 * 2500 for i, t in enumerate(tflops) if i != 2)
    assert len({r.checksum for r in results}) == 1


def test_sdc_gives_wrong_checksum_and_error() -> None:
    f = fleet({"node": NODE, "gpu": 0, "kind": "sdc"})
    results = f.gemm.run(f.gpus(), dtype="bf16", duration_s=1, seed=5)
    good = healthy_checksum(5, "bf16", results[0].m, results[0].n, results[0].k)
    bad = [r for r in results if r.checksum != good]
    assert [str(r.gpu) for r in bad] == [f"{NODE}:gpu0"]
    assert bad[0].rel_error > 0.01
    assert all(r.rel_error < 1e-2 for r in results if r.checksum == good)
    coll = f.collectives.run("all_reduce", f.site.gpus(NODE), sizes_bytes=[1 << 20])
    assert coll.rows[0].out_of_place.wrong and coll.rows[0].out_of_place.wrong > 0


def test_xid_79_loses_gpu() -> None:
    f = fleet({"node": NODE, "gpu": 1, "kind": "xid", "code": 79})
    reading = f.probe.read(NODE)
    lost = [g for g in reading.gpus if g.lost]
    assert [g.gpu.index for g in lost] == [1]
    assert [x.code for x in lost[0].xids] == [79]
    assert lost[0].power_w is None
    ran = f.gemm.run(f.site.gpus(NODE), dtype="bf16", duration_s=1, seed=1)
    assert [r.gpu.index for r in ran] == [0, 2, 3]


def test_thermal_throttle_reading() -> None:
    f = fleet({"node": NODE, "gpu": 3, "kind": "thermal_throttle"})
    gpu = f.probe.read(NODE).gpus[3]
    assert gpu.clocks_event_reasons & ClocksEventReason.HW_THERMAL_SLOWDOWN
    assert gpu.clocks_event_reasons & ClocksEventReason.SW_THERMAL_SLOWDOWN
    assert gpu.temperature_c is not None and gpu.temperature_c > 87
    assert gpu.sm_clock_mhz is not None and gpu.sm_clock_mhz < 0.8 * 2062
    others = f.probe.read(NODE).gpus[:3]
    assert not any(g.clocks_event_reasons & HARDWARE_THROTTLE for g in others)


def test_power_brake_reading() -> None:
    f = fleet({"node": NODE, "kind": "power_brake"})
    for gpu in f.probe.read(NODE).gpus:
        assert gpu.clocks_event_reasons & ClocksEventReason.HW_POWER_BRAKE_SLOWDOWN


def test_missing_gpu_is_absent() -> None:
    f = fleet({"node": NODE, "gpu": 2, "kind": "missing_gpu"})
    assert [g.gpu.index for g in f.probe.read(NODE).gpus] == [0, 1, 3]


def test_counters_ecc_remap_nvlink() -> None:
    f = fleet(
        {"node": NODE, "gpu": 0, "kind": "ecc", "uncorrectable": 2, "correctable": 7},
        {"node": NODE, "gpu": 1, "kind": "remapped_rows"},
        {"node": NODE, "gpu": 2, "kind": "nvlink_down"},
    )
    g = f.probe.read(NODE).gpus
    assert (g[0].ecc_uncorrectable, g[0].ecc_correctable) == (2, 7)
    assert g[1].remapped_rows_pending and not g[1].remapped_rows_failed
    assert (g[2].nvlink_links_active, g[2].nvlink_links_total) == (0, 18)
    with pytest.raises(DcopsError, match="no active NVLink"):
        f.collectives.run("all_reduce", f.site.gpus(NODE), sizes_bytes=[1024])


def test_nvlink_degraded_halves_busbw() -> None:
    healthy = fleet(load=0.0)
    slow = fleet({"node": NODE, "kind": "nvlink_degraded", "factor": 0.5}, load=0.0)
    size = [8 << 30]
    a = healthy.collectives.run("all_reduce", healthy.gpus(RACK), sizes_bytes=size).peak_busbw_gbps
    b = slow.collectives.run("all_reduce", slow.gpus(RACK), sizes_bytes=size).peak_busbw_gbps
    assert b / a == pytest.approx(0.5, rel=0.1)

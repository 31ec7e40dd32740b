"""The simulated adapters: ports, determinism, noise, timeouts, runner, clock and energy."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.errors import (
    BackendError,
    CommandTimeout,
    ConnectError,
    UnknownNameError,
    UnknownNodeError,
)
from dcops.measurements import GpuRef, NodeReading, bus_factor
from dcops.ports import CollectiveEngine, GemmEngine, GpuProbe, RemoteRunner
from dcops.sim import Fault, SimFleet, VirtualClock, WallClock
from dcops.sim.noise import normals, uniforms

DEMO = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "demo.yaml"


def small(seed: int = 1, noise: float = 0.02, **extra: Any) -> SimFleet:
    return SimFleet.from_dict(
        {"sku": "gb200-nvl72", "racks": 2, "seed": seed, "noise": noise, **extra}
    )


def measure(f: SimFleet) -> list[Any]:
    nodes = ["sim-r01-t01", "sim-r01-t05", "sim-r02-t10"]
    out: list[Any] = [f.probe.read(n) for n in nodes]
    out.append(f.gemm.run(f.gpus(nodes), dtype="fp8", duration_s=2, seed=9))
    out.append(f.collectives.run("all_gather", f.gpus(nodes), sizes_bytes=[1 << 10, 1 << 28]))
    out.append(f.runner.run("sim-r01-t01", ["nvidia-smi", "-q", "-x"], timeout_s=5).stdout)
    return out


def test_adapters_satisfy_ports() -> None:
    f = small()
    assert isinstance(f.probe, GpuProbe)
    assert isinstance(f.gemm, GemmEngine)
    assert isinstance(f.collectives, CollectiveEngine)
    assert isinstance(f.runner, RemoteRunner)
    assert f.site.nodes()[0] == "sim-r01-t01"


def test_same_seed_same_measurements() -> None:
    assert measure(small(seed=4)) == measure(small(seed=4))
    assert measure(SimFleet.from_file(DEMO))[:4] == measure(SimFleet.from_file(DEMO))[:4]


def test_other_seed_other_measurements() -> None:
    a, b = measure(small(seed=4)), measure(small(seed=5))
    assert all(x != y for x, y in zip(a[:5], b[:5], strict=True))


def test_order_of_calls_does_not_matter() -> None:
    a, b = small(seed=3), small(seed=3)
    first = [a.probe.read("sim-r01-t01"), a.probe.read("sim-r01-t02")]
    second = [b.probe.read("sim-r01-t02"), b.probe.read("sim-r01-t01")]
    assert first == second[::-1]
    # and repeated calls draw fresh noise
    assert a.probe.read("sim-r01-t01") != first[0]


def test_noise_distribution_is_roughly_right() -> None:
    f = SimFleet.from_dict({"sku": "gb200-nvl72", "racks": 10, "seed": 2, "noise": 0.03})
    results = f.gemm.run(f.gpus(), dtype="bf16", duration_s=1, seed=1)
    rel = np.array([r.tflops for r in results]) / 2500.0 - 1.0
    assert abs(rel.mean()) < 0.003
    assert rel.std() == pytest.approx(0.03, rel=0.1)
    readings = [r for r in f.probe.read_many(f.site.nodes()) if isinstance(r, NodeReading)]
    assert len(readings) == 10 * 18  # no faults: every node answers
    power = np.array([g.power_w for r in readings for g in r.gpus])
    assert power.std() / power.mean() == pytest.approx(0.03, rel=0.1)


def test_raw_generator_is_normal_and_uniform() -> None:
    keys = np.arange(20_000, dtype=np.uint64)
    z = normals(7, 2, keys, np.zeros_like(keys), 3)
    assert abs(z.mean()) < 0.02
    assert z.std() == pytest.approx(1.0, abs=0.02)
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 0.03
    assert np.mean(np.abs(z) < 1.96) == pytest.approx(0.95, abs=0.01)
    u = uniforms(7, 2, keys, np.ones_like(keys), 1)
    assert u.min() > 0 and u.max() < 1
    hist, _ = np.histogram(u, bins=10, range=(0, 1))
    assert hist.min() > 1_800


def test_zero_noise_gives_profile_figures() -> None:
    f = small(noise=0.0)
    r = f.gemm.run([GpuRef("sim-r01-t01", 0)], dtype="bf16", duration_s=1, seed=1)[0]
    assert r.tflops == pytest.approx(2500.0)


def test_hang_times_out_after_timeout_not_before() -> None:
    f = small(faults=[{"node": "sim-r01-t02", "kind": "hang"}])
    for call in (
        lambda: f.probe.read("sim-r01-t02", timeout_s=0.2),
        lambda: f.gemm.run(
            f.site.gpus("sim-r01-t02"), dtype="bf16", duration_s=0.1, seed=1, timeout_s=0.2
        ),
        lambda: f.collectives.run(
            "all_reduce", f.gpus(["sim-r01-t01", "sim-r01-t02"]), sizes_bytes=[8], timeout_s=0.2
        ),
        lambda: f.runner.run("sim-r01-t02", ["hostname"], timeout_s=0.2),
    ):
        start = time.monotonic()
        with pytest.raises(CommandTimeout) as info:
            call()
        assert time.monotonic() - start >= 0.2
        assert info.value.host == "sim-r01-t02"


def test_hang_without_timeout_blocks_until_close() -> None:
    f = small(faults=[{"node": "sim-r01-t02", "kind": "hang"}])
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            f.probe.read("sim-r01-t02")
        except CommandTimeout as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    worker.join(0.2)
    assert worker.is_alive()
    f.close()
    worker.join(2)
    assert not worker.is_alive()
    assert outcome


def test_unreachable_raises_connect_error_everywhere() -> None:
    f = small(faults=[{"node": "sim-r01-t03", "kind": "unreachable"}])
    gpus = f.site.gpus("sim-r01-t03")
    with pytest.raises(ConnectError):
        f.probe.read("sim-r01-t03")
    with pytest.raises(ConnectError):
        f.gemm.run(gpus, dtype="bf16", duration_s=1, seed=1)
    with pytest.raises(ConnectError):
        f.collectives.run("all_reduce", gpus, sizes_bytes=[8])
    with pytest.raises(ConnectError):
        f.runner.run("sim-r01-t03", ["hostname"], timeout_s=1)


def test_read_many_returns_errors_in_place() -> None:
    f = small(
        faults=[
            {"node": "sim-r01-t03", "kind": "unreachable"},
            {"node": "sim-r01-t04", "kind": "hang"},
        ]
    )
    start = time.monotonic()
    got = f.probe.read_many(["sim-r01-t02", "sim-r01-t03", "sim-r01-t04"], timeout_s=0.1)
    assert time.monotonic() - start >= 0.1
    assert [type(x).__name__ for x in got] == ["NodeReading", "ConnectError", "CommandTimeout"]
    assert got[0] == small(faults=[]).probe.read("sim-r01-t02")


def test_unknown_names() -> None:
    f = small()
    with pytest.raises(UnknownNodeError):
        f.probe.read("nope")
    with pytest.raises(UnknownNodeError):
        f.gemm.run([GpuRef("sim-r01-t01", 9)], dtype="bf16", duration_s=1, seed=1)
    with pytest.raises(UnknownNameError):
        f.gemm.run([GpuRef("sim-r01-t01", 0)], dtype="int3", duration_s=1, seed=1)
    with pytest.raises(UnknownNameError):
        f.collectives.run("all_sing", f.site.gpus("sim-r01-t01"), sizes_bytes=[8])
    with pytest.raises(ConnectError):
        f.runner.run("elsewhere", ["hostname"], timeout_s=1)


@settings(max_examples=40, deadline=None)
@given(
    op=st.sampled_from(
        ["all_reduce", "all_gather", "reduce_scatter", "alltoall", "broadcast", "reduce"]
    ),
    nodes=st.integers(min_value=1, max_value=36),
    size=st.integers(min_value=8, max_value=1 << 34),
)
def test_collective_rows_are_consistent(op: str, nodes: int, size: int) -> None:
    f = FLEET
    members = f.gpus(f.site.nodes()[:nodes])
    result = f.collectives.run(op, members, sizes_bytes=[size])
    row = result.rows[0]
    for s in (row.out_of_place, row.in_place):
        assert s is not None
        assert s.time_us > 0
        assert s.algbw_gbps == pytest.approx(size / (s.time_us * 1e-6) / 1e9)
        assert s.busbw_gbps == pytest.approx(s.algbw_gbps * bus_factor(op, len(members)))
        assert s.busbw_gbps <= 840 * 1.2
        assert s.wrong == 0


FLEET = small(noise=0.02)


def test_collective_scope_and_latency() -> None:
    f = small(noise=0.0)
    rack = f.gpus(f.site.nodes()[:18])
    two = f.gpus(f.site.nodes())
    one = f.site.gpus("sim-r01-t01")
    big = [8 << 30]
    assert f.collectives.run("all_reduce", rack, sizes_bytes=big).peak_busbw_gbps == pytest.approx(
        840, rel=0.02
    )
    assert f.collectives.run("all_reduce", two, sizes_bytes=big).peak_busbw_gbps == pytest.approx(
        400, rel=0.02
    )
    assert f.collectives.run("all_reduce", one, sizes_bytes=big).peak_busbw_gbps == pytest.approx(
        700, rel=0.02
    )
    sweep = f.collectives.run("all_reduce", rack, sizes_bytes=[8, 1 << 20, 1 << 30]).rows
    busbw = [r.out_of_place.busbw_gbps for r in sweep]
    assert busbw == sorted(busbw)
    assert busbw[0] < 1


def test_lost_gpu_fails_collective() -> None:
    f = small(faults=[{"node": "sim-r01-t01", "gpu": 0, "kind": "xid", "code": 79}])
    with pytest.raises(BackendError, match="fell off the bus"):
        f.collectives.run("all_reduce", f.site.gpus("sim-r01-t01"), sizes_bytes=[8])


def test_runner_commands_and_xml() -> None:
    f = SimFleet.from_file(DEMO)
    assert f.runner.run("sim-r01-t01", ["hostname"], timeout_s=1).stdout == "sim-r01-t01\n"
    assert f.runner.run("sim-r01-t01", ["false"], timeout_s=1).returncode == 1
    assert f.runner.run("sim-r01-t01", ["reboot-now"], timeout_s=1).returncode == 127
    listing = f.runner.run("sim-r01-t01", ["nvidia-smi", "-L"], timeout_s=1).stdout
    assert listing.count("NVIDIA GB200") == 4
    res = f.runner.run("sim-r01-t14", ["nvidia-smi", "-q", "-x"], timeout_s=1)
    assert res.ok
    root = ET.fromstring(res.stdout.split("\n", 2)[2])  # skip the XML and DOCTYPE lines
    assert root.tag == "nvidia_smi_log"
    gpus = root.findall("gpu")
    assert len(gpus) == 4
    hot = gpus[3]
    assert hot.findtext("clocks_event_reasons/clocks_event_reason_hw_thermal_slowdown") == "Active"
    assert (
        gpus[0].findtext("clocks_event_reasons/clocks_event_reason_hw_thermal_slowdown")
        == "Not Active"
    )
    assert int(hot.findtext("temperature/gpu_temp", "0 C").split()[0]) > 87
    ecc = f.runner.run("sim-r02-t16", ["nvidia-smi", "-q", "-x"], timeout_s=1).stdout
    ecc_root = ET.fromstring(ecc.split("\n", 2)[2])
    assert ecc_root.findtext("gpu/ecc_errors/volatile/dram_uncorrectable") == "1"
    lost = f.runner.run("sim-r02-t03", ["nvidia-smi", "-q", "-x"], timeout_s=1)
    assert lost.returncode == 15
    assert "Unable to determine the device handle" in lost.stdout


def test_runner_does_not_disturb_probe_noise() -> None:
    a, b = small(seed=8), small(seed=8)
    a.runner.run("sim-r01-t01", ["nvidia-smi", "-q", "-x"], timeout_s=1)
    assert a.probe.read("sim-r01-t01") == b.probe.read("sim-r01-t01")


def test_energy_grows_with_power_times_virtual_time() -> None:
    f = small(noise=0.0, load=1.0)
    before = f.probe.read("sim-r01-t01").gpus[0].energy_mj
    f.advance(10.0)
    after = f.probe.read("sim-r01-t01").gpus[0]
    assert before is not None and after.energy_mj is not None
    assert after.energy_mj - before == pytest.approx(1200 * 10 * 1000, abs=2)
    f.set_load(["sim-r01-t01"], 0.0)
    f.advance(10.0)
    idle = f.probe.read("sim-r01-t01").gpus[0]
    assert idle.energy_mj is not None
    assert idle.energy_mj - after.energy_mj == pytest.approx(180 * 10 * 1000, abs=2)


def test_virtual_clock_moves_timestamps_and_faults_appear_on_time() -> None:
    f = small(faults=[{"node": "sim-r01-t01", "gpu": 0, "kind": "xid", "code": 48, "at_s": 60}])
    start = f.probe.read("sim-r01-t01")
    assert start.gpus[0].xids == ()
    f.advance(61)
    later = f.probe.read("sim-r01-t01")
    assert later.timestamp_s == start.timestamp_s + 61
    assert [x.code for x in later.gpus[0].xids] == [48]
    assert later.gpus[0].xids[0].timestamp_s == start.timestamp_s + 60


def test_inject_and_repair() -> None:
    f = small()
    f.inject(Fault(kind="unreachable", node="sim-r01-t01"))
    with pytest.raises(ConnectError):
        f.probe.read("sim-r01-t01")
    assert f.repair("sim-r01-t01") == 1
    assert f.probe.read("sim-r01-t01").node == "sim-r01-t01"


def test_wall_clock_option() -> None:
    f = SimFleet(small().scenario, clock=WallClock())
    assert abs(f.probe.read("sim-r01-t01").timestamp_s - time.time()) < 5
    with pytest.raises(TypeError):
        f.advance(1)
    assert isinstance(small().clock, VirtualClock)


def test_hundred_racks_fit_and_measure() -> None:
    f = SimFleet.from_dict({"sku": "gb200-nvl72", "racks": 100, "seed": 1})
    gpus = f.gpus()
    assert len(gpus) == 7200
    results = f.gemm.run(gpus, dtype="bf16", duration_s=1, seed=1)
    assert len(results) == 7200
    readings = f.probe.read_many(f.site.nodes())
    answered = [r for r in readings if isinstance(r, NodeReading)]
    assert len(answered) == len(readings)  # no faults: every node answers
    assert sum(len(r.gpus) for r in answered) == 7200

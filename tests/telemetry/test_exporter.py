"""The exporter scraped over real HTTP on loopback, parsed with prometheus-client's parser."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dcops.sim import SimFleet
from telemetry.collect import Sampler, SimClock
from telemetry.exporter import KNOWN_XIDS, GpuCollector, start_server, xid_label
from telemetry.jobmap import Allocation

DEMO = Path(__file__).parents[2] / "examples" / "scenarios" / "demo.yaml"
NODES = ["sim-r01-t01", "sim-r01-t14", "sim-r01-t17", "sim-r02-t03", "sim-r02-t16"]
UNITS = ("_watts", "_joules", "_celsius", "_hertz", "_ratio", "_bytes", "_seconds")


@pytest.fixture
def sampler() -> Sampler:
    fleet = SimFleet.from_file(DEMO)
    fleet.set_load(["sim-r01-t01"], 0.9)
    racks = {n: fleet.site.rack_of(n).name for n in NODES}
    s = Sampler(fleet.probe, NODES, 10, SimClock(fleet), racks=racks)
    s.sample_once()
    fleet.advance(10)
    s.sample_once()
    return s


def scrape(collector: GpuCollector) -> str:
    server, thread = start_server(collector, port=0, address="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            return str(response.read().decode())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams: dict[str, Any], name: str) -> Iterator[Any]:
    yield from fams[name].samples


def test_naming_rules(sampler: Sampler) -> None:
    fams = families(scrape(GpuCollector(sampler.snapshot)))
    assert fams, "nothing exported"
    for name, fam in fams.items():
        assert name.startswith("dcops_"), name
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", name), name
        for s in fam.samples:
            if s.name.endswith("_total"):
                assert fam.type == "counter", s.name
            if fam.type == "counter":
                assert s.name == name + "_total", s.name
        # No unit abbreviations; base units only.
        assert not re.search(r"_(mw|w|mj|kwh|mhz|mib|pct|percent|ms|c)(_|$)", name), name
    for name in (
        "dcops_gpu_power_watts",
        "dcops_gpu_energy_joules",
        "dcops_gpu_temperature_celsius",
        "dcops_gpu_sm_clock_hertz",
        "dcops_gpu_utilization_ratio",
        "dcops_gpu_memory_used_bytes",
        "dcops_gpu_ecc_errors",
        "dcops_gpu_xid_events",
        "dcops_gpu_throttle_reasons",
        "dcops_gpu_nvlink_errors",
        "dcops_exporter_scrape_duration_seconds",
    ):
        assert name in fams, name
    for name in ("dcops_gpu_energy_joules", "dcops_gpu_ecc_errors", "dcops_gpu_xid_events"):
        assert fams[name].type == "counter"
    for name, fam in fams.items():
        if fam.type == "gauge" and any(name.endswith(u) for u in UNITS):
            continue
        assert fam.type == "counter" or name in {
            "dcops_gpu_throttle_reasons",
            "dcops_gpu_remapped_rows_pending",
            "dcops_gpu_remapped_rows_failed",
            "dcops_gpu_nvlink_links_active",
            "dcops_gpu_lost",
            "dcops_node_up",
        }, f"{name}: a gauge without a base unit suffix"


def test_values_are_in_base_units(sampler: Sampler) -> None:
    fams = families(scrape(GpuCollector(sampler.snapshot)))
    snap = sampler.snapshot()
    reading = next(g for r, g in snap.gpus.items() if r.node == "sim-r01-t01" and r.index == 0)

    def value(name: str, **labels: str) -> float:
        want = {"node": "sim-r01-t01", "gpu": "0", **labels}
        for s in fams[name].samples:
            if all(s.labels.get(k) == v for k, v in want.items()):
                return float(s.value)
        raise AssertionError(f"no {name} {want}")

    assert reading.energy_mj is not None and reading.sm_clock_mhz is not None
    assert value("dcops_gpu_energy_joules") == pytest.approx(reading.energy_mj / 1000)
    assert value("dcops_gpu_power_watts") == pytest.approx(reading.power_w)
    assert value("dcops_gpu_sm_clock_hertz") == pytest.approx(reading.sm_clock_mhz * 1e6)
    assert 0.8 <= value("dcops_gpu_utilization_ratio") <= 1.0
    assert value("dcops_gpu_memory_used_bytes") > 1e9
    assert value("dcops_gpu_throttle_reasons", reason="gpu_idle") == 0.0
    sample = next(iter(fams["dcops_gpu_power_watts"].samples))
    assert set(sample.labels) == {"node", "rack", "gpu", "uuid", "job", "tenant"}
    assert sample.labels["rack"] == "r01"


def test_faults_show(sampler: Sampler) -> None:
    fams = families(scrape(GpuCollector(sampler.snapshot)))
    throttled = [
        s.labels
        for s in fams["dcops_gpu_throttle_reasons"].samples
        if s.value == 1.0 and s.labels["reason"] != "gpu_idle"
    ]
    assert {(t["node"], t["gpu"]) for t in throttled} == {("sim-r01-t14", "3")}
    xids = [
        (s.labels["node"], s.labels["gpu"], s.labels["xid"], s.value)
        for s in fams["dcops_gpu_xid_events"].samples
    ]
    assert xids == [("sim-r02-t03", "1", "79", 1.0)]  # read twice, counted once
    lost = {(s.labels["node"], s.labels["gpu"]) for s in fams["dcops_gpu_lost"].samples if s.value}
    assert lost == {("sim-r02-t03", "1")}
    ecc = [
        s
        for s in fams["dcops_gpu_ecc_errors"].samples
        if s.labels["type"] == "uncorrectable" and s.value > 0
    ]
    assert {(s.labels["node"], s.labels["gpu"]) for s in ecc} == {("sim-r02-t16", "0")}
    up = {s.labels["node"]: s.value for s in fams["dcops_node_up"].samples}
    assert up["sim-r01-t17"] == 0.0 and up["sim-r01-t01"] == 1.0


def test_job_labels_only_for_running_jobs(sampler: Sampler) -> None:
    now = sampler.snapshot().time_s
    assert now is not None
    allocations = [
        Allocation("sim-r01-t01", 0, "101", start_s=now - 60, tenant="acme"),
        Allocation("sim-r01-t01", 1, "100", start_s=now - 600, end_s=now - 60, tenant="old"),
        Allocation("sim-r02-t16", None, "ns/pod", start_s=now - 5, gpus=4, source="kubernetes"),
    ]
    fams = families(scrape(GpuCollector(sampler.snapshot, lambda: allocations)))
    jobs = {
        (s.labels["node"], s.labels["gpu"]): (s.labels["job"], s.labels["tenant"])
        for s in fams["dcops_gpu_power_watts"].samples
    }
    assert jobs[("sim-r01-t01", "0")] == ("101", "acme")
    assert jobs[("sim-r01-t01", "1")] == ("", "")  # job 100 ended: no label
    assert all(jobs[("sim-r02-t16", str(i))] == ("ns/pod", "") for i in range(4))
    all_jobs = {s.labels["job"] for f in fams.values() for s in f.samples if "job" in s.labels}
    assert all_jobs == {"", "101", "ns/pod"}


def test_xid_label_is_bounded() -> None:
    assert xid_label(79) == "79"
    assert xid_label(4242) == "other"
    assert {xid_label(c) for c in range(1000)} <= {str(c) for c in KNOWN_XIDS} | {"other"}

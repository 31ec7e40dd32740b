"""Sampler over the simulated fleet (virtual clock) and over NvmlProbe's autospec fakes."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.compute as pc
import pytest

from dcops.errors import StoreError
from dcops.nvml import NvmlProbe
from dcops.sim import SimFleet
from telemetry.collect import SAMPLE_COLUMNS, Sampler, SimClock, sample_schema, sample_store
from tests.nvml.fake_nvml import FakeNvml

START = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
NODES = ["sim-r01-t01", "sim-r01-t02"]


def fleet(**extra: object) -> SimFleet:
    return SimFleet.from_dict({"sku": "gb200-nvl72", "racks": 1, "seed": 3, **extra})


def test_rows_columns_and_racks(tmp_path: Path) -> None:
    f = fleet()
    store = sample_store(tmp_path)
    racks = {n: f.site.rack_of(n).name for n in NODES}
    sampler = Sampler(f.probe, NODES, 10, SimClock(f), store=store, racks=racks)
    result = sampler.run(duration_s=60)
    assert result.ticks == 6  # t = 0, 10, ..., 50: the interval is half-open
    assert result.rows == 6 * 2 * 4
    table = store.read()
    assert table.schema.equals(sample_schema(), check_metadata=False)
    assert tuple(table.column_names) == SAMPLE_COLUMNS
    assert table.num_rows == 48
    assert set(table.column("node").to_pylist()) == set(NODES)
    assert set(table.column("rack").to_pylist()) == {"r01"}
    times = sorted({t.timestamp() for t in table.column("time").to_pylist()})
    assert times == [START + 10 * k for k in range(6)]
    assert not list(tmp_path.rglob(".*.tmp"))


def test_energy_counter_follows_power_times_time(tmp_path: Path) -> None:
    f = fleet(noise=0.0)
    f.set_load(["sim-r01-t01"], 1.0)
    f.set_load(["sim-r01-t02"], 0.0)
    store = sample_store(tmp_path)
    sampler = Sampler(f.probe, NODES, 60, SimClock(f), store=store)
    sampler.run(duration_s=3600)
    rows = store.read().to_pylist()
    grown: dict[str, list[int]] = {node: [] for node in NODES}
    for node in NODES:
        for gpu in range(4):
            series = sorted(
                (r["time"].timestamp(), r["energy_mj"], r["power_w"])
                for r in rows
                if r["node"] == node and r["gpu"] == gpu
            )
            assert len(series) == 60
            for (t0, e0, p0), (t1, e1, _) in itertools.pairwise(series):
                assert e1 > e0  # a counter never goes back
                # Load is constant: the counter grows by power x time (mJ = W x s x 1000).
                assert (e1 - e0) == pytest.approx(p0 * (t1 - t0) * 1000, rel=1e-3)
            grown[node].append(series[-1][1] - series[0][1])
    # A busy GB200 draws several times its idle power.
    assert min(grown["sim-r01-t01"]) > 3 * max(grown["sim-r01-t02"])


def test_partitions_by_day_across_midnight(tmp_path: Path) -> None:
    f = fleet()
    f.virtual_clock.set(START + 86_400 - 30)  # 2025-01-01T23:59:30Z
    store = sample_store(tmp_path)
    sampler = Sampler(f.probe, NODES[:1], 10, SimClock(f), store=store)
    sampler.run(duration_s=60)  # one flush, rows on both sides of midnight
    assert store.days() == [date(2025, 1, 1), date(2025, 1, 2)]
    assert (tmp_path / "telemetry/samples/date=2025-01-01").is_dir()
    first = store.read(end=datetime(2025, 1, 2, tzinfo=UTC))
    second = store.read(start=datetime(2025, 1, 2, tzinfo=UTC))
    assert first.num_rows == 3 * 4  # 23:59:30, :40, :50
    assert second.num_rows == 3 * 4  # 00:00:00, :10, :20
    for day in store.days():
        for part in store.parts(day):
            import pyarrow.parquet as pq

            days = {t.date() for t in pq.read_table(part).column("time").to_pylist()}
            assert days == {day}


class OneShotClock:
    """An injected clock: the loop's first sleep stops it (a daemon run in a test)."""

    def __init__(self, start: float) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        stop.set()  # as SIGTERM would during the wait


def test_daemon_loop_runs_once_and_flushes_on_stop(tmp_path: Path) -> None:
    f = fleet()
    clock = OneShotClock(START + 3)
    store = sample_store(tmp_path)
    sampler = Sampler(f.probe, NODES, 10, clock, store=store, flush_every_s=1e9)
    result = sampler.run()  # no duration: runs until stopped
    assert result.ticks == 1
    assert clock.sleeps == [7]  # aligned to the next multiple of the interval
    assert store.read().num_rows == 8
    assert len(result.files) == 1


def test_buffer_is_bounded(tmp_path: Path) -> None:
    f = fleet()
    store = sample_store(tmp_path)
    sampler = Sampler(f.probe, NODES, 10, SimClock(f), store=store, max_buffer_rows=8)
    result = sampler.run(duration_s=50)
    assert len(result.files) == result.ticks == 5  # every tick filled the buffer
    assert len(sampler.buffer) == 0


def test_xids_counted_once_and_lost_gpus_kept(tmp_path: Path) -> None:
    f = SimFleet.from_file(Path(__file__).parents[2] / "examples/scenarios/demo.yaml")
    store = sample_store(tmp_path)
    sampler = Sampler(f.probe, ["sim-r02-t03"], 10, SimClock(f), store=store)
    sampler.run(duration_s=30)
    table = store.read()
    gpu1 = table.filter(pc.equal(table.column("gpu"), 1)).to_pylist()
    assert [r["xids"] for r in gpu1] == [[79], [], []]
    assert all(r["lost"] and r["power_w"] is None for r in gpu1)
    snap = sampler.snapshot()
    assert dict(snap.xid_counts)[next(iter(snap.xid_counts))] == {79: 1}


def test_unreachable_node_is_reported_and_others_stored(tmp_path: Path) -> None:
    f = fleet(faults=[{"node": "sim-r01-t02", "kind": "unreachable"}])
    store = sample_store(tmp_path)
    sampler = Sampler(f.probe, NODES, 10, SimClock(f), store=store)
    result = sampler.run(max_ticks=1)
    assert set(result.errors) == {"sim-r01-t02"}
    assert set(store.read().column("node").to_pylist()) == {"sim-r01-t01"}


def test_failed_write_keeps_the_buffer(tmp_path: Path) -> None:
    f = fleet()
    (tmp_path / "telemetry").mkdir()
    (tmp_path / "telemetry" / "samples").write_text("not a folder")
    sampler = Sampler(f.probe, NODES, 10, SimClock(f), store=sample_store(tmp_path))
    sampler.sample_once()
    with pytest.raises(StoreError):
        sampler.flush()
    assert len(sampler.buffer) == 8


def test_sampler_over_nvml_probe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeNvml(gpu_count=4).install(monkeypatch)
    fake.gpus[1].reasons = 0x40  # HW thermal slowdown
    clock = OneShotClock(START)
    store = sample_store(tmp_path)
    with NvmlProbe(hostname="gb200-r01-t01", clock=clock.now) as probe:
        sampler = Sampler(probe, ["gb200-r01-t01"], 10, clock, store=store)
        sampler.run()
    rows = store.read().to_pylist()
    assert [r["gpu"] for r in rows] == [0, 1, 2, 3]
    r = rows[1]
    assert r["power_w"] == pytest.approx(982.345)
    assert r["energy_mj"] == 7_318_222_451
    assert r["clocks_event_reasons"] == 0x40
    assert r["uuid"] == fake.gpus[1].uuid
    assert r["driver_version"] == "570.133.20"
    assert (r["nvlink_links_active"], r["nvlink_links_total"]) == (18, 18)


def test_hung_nodes_cost_a_tick_one_timeout_not_one_each(tmp_path: Path) -> None:
    import time

    hung = ["sim-r01-t01", "sim-r01-t03", "sim-r01-t05"]
    f = fleet(faults=[{"node": n, "kind": "hang"} for n in hung])
    nodes = [f"sim-r01-t{i:02d}" for i in range(1, 9)]
    answered: list[str] = []
    sampler = Sampler(
        f.probe, nodes, 10, SimClock(f), store=sample_store(tmp_path), timeout_s=0.5,
        on_answer=answered.append,
    )  # fmt: skip
    started = time.monotonic()
    result = sampler.sample_once()
    took = time.monotonic() - started
    assert took < 1.2  # in series: 3 x 0.5 s
    assert set(result.errors) == set(hung)
    assert list(result.nodes_read) == [n for n in nodes if n not in hung]  # in node order
    assert sorted(answered) == sorted(nodes) and set(answered[-3:]) == set(hung)

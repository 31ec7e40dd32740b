"""Energy accounting: counters, resets, wraps, fallback, exact reconciliation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcops.errors import InputError
from telemetry.energy import (
    MJ_PER_KWH,
    EnergyFigure,
    FacilityRates,
    account_energy,
    intervals_from_samples,
    period_windows,
    to_gpu_samples,
)
from tests.telemetry.energy_sim import DAY0, simulated_day

U64 = 2**64


def frame(rows: Sequence[tuple[str, int, float, float | None, int | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "node": [r[0] for r in rows],
            "gpu": [r[1] for r in rows],
            "ts_s": [r[2] for r in rows],
            "power_w": pd.array([r[3] for r in rows], dtype="Float64"),
            "energy_mj": pd.array([r[4] for r in rows], dtype="UInt64"),
        }
    )


def allocs(rows: Sequence[tuple[str, int, str, str | None, float, float | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["node", "gpu", "job_id", "tenant", "start_s", "end_s"])


NO_ALLOC = allocs([])


def test_energy_per_job_and_tenant_from_a_simulated_day_reconciles_exactly() -> None:
    samples, alloc, info = simulated_day(step_s=300.0)
    acc = account_energy(samples, alloc, period="day")
    assert acc.reconciles
    # allocated + idle == metered, to the mJ, overall, per GPU and per period
    assert acc.allocated.total_mj + acc.idle.total_mj == acc.metered.total_mj
    assert int(acc.jobs["energy_mj"].sum()) == acc.allocated.total_mj
    assert int(acc.tenants["energy_mj"].sum()) == acc.allocated.total_mj
    g = acc.gpus
    assert (g["allocated_mj"] + g["idle_mj"] == g["metered_mj"]).all()
    assert (g["idle_mj"] >= 0).all()
    assert int(acc.periods["metered_mj"].sum()) == acc.metered.total_mj
    # the metered measured energy is exactly the counters' last minus first reading
    counted = samples[samples["energy_mj"].notna()]
    first_last = counted.groupby(["node", "gpu"])["energy_mj"].agg(["first", "last"])
    expected = int((first_last["last"].astype("int64") - first_last["first"].astype("int64")).sum())
    assert acc.metered.measured_mj == expected
    # GPUs without a counter are integrated from power and flagged
    assert sorted(acc.estimated_gpus()) == sorted(
        f"{n}/{g}" for n in info["no_counter"] for g in range(4)
    )
    assert acc.metered.provenance == "mixed"
    # 72 GPUs for a day between idle (180 W) and 0.9 load: between 311 and 1,740 kWh
    assert 72 * 0.180 * 24 < acc.metered.kwh < 72 * 1.2 * 24
    assert set(acc.tenants["tenant"]) == {"acme", "globex", "initech"}
    assert acc.tenants["period"].tolist() == ["2025-01-01"] * 3


def test_chunks_by_hour_give_the_same_account_as_one_frame() -> None:
    samples, alloc, _ = simulated_day(step_s=600.0, hours=6)
    whole = account_energy(samples, alloc, period="all")
    hour = ((samples["ts_s"] - DAY0) // 3600).astype(int)
    chunked = account_energy((c for _, c in samples.groupby(hour)), alloc, period="all")
    assert chunked.metered == whole.metered
    assert chunked.allocated == whole.allocated
    pd.testing.assert_frame_equal(chunked.jobs, whole.jobs)
    pd.testing.assert_frame_equal(chunked.gpus, whole.gpus)


def test_window_edges_are_apportioned_by_time() -> None:
    s = frame([("n1", 0, 0.0, 100.0, 0), ("n1", 0, 10.0, 100.0, 1_000_000)])
    acc = account_energy(s, allocs([("n1", 0, "j", "t", 2.5, 5.0)]), period="all")
    assert acc.jobs["energy_mj"].tolist() == [250_000]
    assert acc.idle.total_mj == 750_000
    assert acc.jobs["gpu_hours"].iloc[0] == pytest.approx(2.5 / 3600)


def test_counter_reset_is_estimated_from_power() -> None:
    s = frame(
        [
            ("n1", 0, 0.0, 100.0, 5_000_000),
            ("n1", 0, 10.0, 100.0, 6_000_000),
            ("n1", 0, 20.0, 300.0, 400),  # driver reload: the counter restarted
            ("n1", 0, 30.0, 300.0, 3_000_400),
        ]
    )
    iv, _ = intervals_from_samples(to_gpu_samples(s))
    assert iv.resets == 1 and iv.wraps == 0
    assert iv.energy_mj.tolist() == [1_000_000, 2_000_000, 3_000_000]
    assert iv.measured.tolist() == [True, False, True]
    acc = account_energy(s, NO_ALLOC, period="all")
    assert acc.metered == EnergyFigure(4_000_000, 2_000_000)
    assert acc.metered.provenance == "mixed"
    assert acc.resets == 1


def test_counter_reset_without_power_counts_energy_since_reload() -> None:
    s = frame([("n1", 0, 0.0, None, 9_000_000), ("n1", 0, 10.0, None, 700)])
    iv, _ = intervals_from_samples(to_gpu_samples(s))
    assert iv.energy_mj.tolist() == [700] and not iv.measured[0]


def test_uint64_wrap_is_a_measured_delta() -> None:
    s = frame(
        [
            ("n1", 0, 0.0, 1000.0, U64 - 4_000_000),
            ("n1", 0, 10.0, 1000.0, 6_000_000),  # wrapped past 2**64
        ]
    )
    iv, _ = intervals_from_samples(to_gpu_samples(s))
    assert (iv.wraps, iv.resets) == (1, 0)
    assert iv.energy_mj.tolist() == [10_000_000] and iv.measured.all()


def test_counter_stored_as_int64_wraps_too() -> None:
    before = np.array([U64 - 1000], dtype=np.uint64).view(np.int64)[0]
    s = pd.DataFrame(
        {
            "node": ["a", "a"],
            "gpu": [0, 0],
            "ts_s": [0.0, 1.0],
            "power_w": [np.nan, np.nan],
            "energy_mj": [before, 500],
        }
    )
    acc = account_energy(s, NO_ALLOC, period="all")
    assert acc.metered == EnergyFigure(1500, 0) and acc.wraps == 1


def test_gpu_without_counter_falls_back_to_trapezoid_and_is_flagged() -> None:
    s = frame(
        [("n2", 1, 0.0, 100.0, None), ("n2", 1, 2.0, 300.0, None), ("n2", 1, 3.0, 300.0, None)]
    )
    acc = account_energy(s, allocs([("n2", 1, "j1", "t", 0.0, 3.0)]), period="all")
    assert acc.metered == EnergyFigure(0, 400_000 + 300_000)
    assert acc.estimated_gpus() == ["n2/1"]
    assert acc.as_dict()["jobs"][0]["provenance"] == "estimated"
    assert acc.as_dict()["metered"]["provenance"] == "estimated"


def test_missing_power_and_counter_is_unmetered() -> None:
    s = frame([("n", 0, 0.0, None, None), ("n", 0, 5.0, None, None)])
    acc = account_energy(s, NO_ALLOC, period="all")
    assert acc.metered.total_mj == 0 and acc.unmetered_intervals == 1


def test_overlapping_allocations_are_trimmed_not_billed_twice() -> None:
    s = frame([("n", 0, 0.0, 100.0, 0), ("n", 0, 10.0, 100.0, 1_000_000)])
    a = allocs([("n", 0, "a", "t1", 0.0, 6.0), ("n", 0, "b", "t2", 4.0, 10.0)])
    acc = account_energy(s, a, period="all")
    assert acc.jobs.set_index("job_id")["energy_mj"].to_dict() == {"a": 600_000, "b": 400_000}
    assert acc.trimmed_overlap_s == 2.0 and acc.idle.total_mj == 0


def test_day_periods_split_a_job_at_midnight() -> None:
    s = frame([("n", 0, DAY0 - 100.0, 100.0, 0), ("n", 0, DAY0 + 100.0, 100.0, 20_000_000)])
    acc = account_energy(s, allocs([("n", 0, "j", "t", DAY0 - 50, DAY0 + 50)]), period="day")
    assert acc.tenants[["period", "energy_mj"]].values.tolist() == [
        ["2024-12-31", 5_000_000],
        ["2025-01-01", 5_000_000],
    ]
    assert acc.periods["metered_mj"].tolist() == [10_000_000, 10_000_000]


def test_since_until_bound_the_account() -> None:
    s = frame([("n", 0, 0.0, 100.0, 0), ("n", 0, 100.0, 100.0, 10_000_000)])
    acc = account_energy(s, NO_ALLOC, since=10.0, until=60.0, period="all")
    assert acc.metered.total_mj == 5_000_000


def test_month_periods() -> None:
    jan31 = DAY0 + 30 * 86400
    assert [w[0] for w in period_windows(jan31, jan31 + 2 * 86400, "month")] == [
        "2025-01",
        "2025-02",
    ]


def test_facility_view() -> None:
    fig = EnergyFigure(MJ_PER_KWH * 100, 0)
    view = FacilityRates(pue=1.5, carbon_g_per_kwh=56.0, price_per_kwh=0.2).view(fig)
    assert view == pytest.approx(
        {"it_kwh": 100.0, "facility_kwh": 150.0, "co2_kg": 8.4, "cost": 30.0}
    )
    assert FacilityRates().view(fig)["facility_kwh"] == 100.0  # default PUE 1.0
    with pytest.raises(ValueError):
        FacilityRates(pue=0.9)


def test_bad_inputs_are_input_errors() -> None:
    with pytest.raises(InputError, match="energy_mj"):
        account_energy(pd.DataFrame({"node": [], "gpu": [], "ts_s": [], "power_w": []}), NO_ALLOC)
    with pytest.raises(InputError, match="tenant"):
        account_energy(frame([]), pd.DataFrame({"node": [], "gpu": []}))
    s = frame([("n", 0, 0.0, 1.0, 0), ("n", 0, 10.0, 1.0, 10)])
    with pytest.raises(InputError, match="out of order"):
        account_energy([s, s], NO_ALLOC)
    with pytest.raises(InputError, match="period"):
        account_energy(s, NO_ALLOC, period="week")


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    rows = []
    expected = 0
    for g in range(draw(st.integers(1, 3))):
        n = draw(st.integers(2, 12))
        times = sorted(
            draw(st.lists(st.floats(0, 1000, allow_nan=False), min_size=n, max_size=n, unique=True))
        )
        counter = draw(st.integers(0, 2**40))
        has = draw(st.booleans())
        for i, t in enumerate(times):
            if i:
                step = draw(st.integers(0, 10**9))
                counter += step
                if has:
                    expected += step
            p = draw(st.floats(0, 1500, allow_nan=False))
            rows.append(("n", g, t, p, counter if has else None))
    a = []
    for j in range(draw(st.integers(0, 6))):
        s0 = draw(st.floats(-50, 1050, allow_nan=False))
        d = draw(st.floats(0, 600, allow_nan=False))
        a.append(
            (
                "n",
                draw(st.integers(0, 3)),
                f"j{j}",
                draw(st.sampled_from(["x", "y", None])),
                s0,
                s0 + d,
            )
        )
    return frame(rows), allocs(a), expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_scenario(), st.sampled_from(["all", "day"]), st.integers(1, 4))
def test_property_allocated_plus_idle_is_metered_exactly(
    case: tuple[pd.DataFrame, pd.DataFrame, int], period: str, chunks: int
) -> None:
    samples, alloc, expected_measured = case
    whole = account_energy(samples, alloc, period=period)
    assert whole.metered.measured_mj == expected_measured
    assert whole.allocated + whole.idle == whole.metered
    assert int(whole.jobs["energy_mj"].sum()) == whole.allocated.total_mj
    assert (whole.jobs["energy_mj"] >= 0).all() and (whole.gpus["idle_mj"] >= 0).all()
    # any split of the samples in time gives the same figures
    order = samples.sort_values("ts_s")
    parts = np.array_split(np.arange(len(order)), chunks)
    split = account_energy([order.iloc[p] for p in parts if len(p)], alloc, period=period)
    assert (split.metered, split.allocated) == (whole.metered, whole.allocated)


@pytest.mark.parametrize("layout", ["as-generated", "time-major", "shuffled"])
def test_arrow_tables_give_the_same_account_as_pandas_frames(layout: str) -> None:
    import pyarrow as pa

    samples, alloc, _ = simulated_day(step_s=300.0)
    if layout == "time-major":
        samples = samples.sort_values(["ts_s", "node", "gpu"], kind="stable")
    elif layout == "shuffled":
        samples = samples.sample(frac=1.0, random_state=3)
    samples = samples.reset_index(drop=True)
    chunks = [samples.iloc[i : i + 700] for i in range(0, len(samples), 700)]
    if layout == "shuffled":
        chunks = [samples]  # chunks must be in time order per GPU
    want = account_energy(chunks, alloc, period="day").as_dict()
    tables = [pa.Table.from_pandas(c, preserve_index=False) for c in chunks]
    got = account_energy(tables, alloc, period="day").as_dict()
    assert got == want


def test_arrow_grid_layout_with_a_counterless_gpu_and_a_reset() -> None:
    import pyarrow as pa

    rows = []
    for t in range(4):
        for node, gpu in (("a", 0), ("a", 1), ("b", 0)):
            counter = None if node == "b" else 1000 * (t + 1) * (gpu + 1)
            if node == "a" and gpu == 1 and t == 3:
                counter = 5  # driver reload: the counter restarts
            rows.append((node, gpu, DAY0 + float(t), 100.0 + t, counter))
    df = frame(rows)
    want = account_energy(df, NO_ALLOC, period="all").as_dict()
    table = pa.table(
        {
            "node": pa.array(df["node"]).dictionary_encode(),
            "gpu": pa.array(df["gpu"], pa.int16()),
            "ts_s": pa.array(df["ts_s"]),
            "power_w": pa.array(df["power_w"].astype("float64"), pa.float32()),
            "energy_mj": pa.array(df["energy_mj"], pa.uint64()),
        }
    )
    got = account_energy(table, NO_ALLOC, period="all").as_dict()
    assert got == want
    assert got["counter_resets"] == 1
    assert got["estimated_gpus"] == ["a/1", "b/0"]

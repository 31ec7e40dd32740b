"""Stability analytics: hand-checked examples, property tests, and the Alibaba trace."""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.importers import ImportOptions, get_importer
from telemetry.jobs import FAILURE_STATES, STATES, JobRecord, jobs_frame
from telemetry.stability import (
    SIZE_BUCKETS,
    failure_rate,
    filter_jobs,
    mttf_by_size,
    outcome_shares,
    outcome_summary,
    size_bucket,
    stability_report,
)
from tests.conftest import data_file
from tests.telemetry.test_alibaba_import import POD_LIST

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def job(
    i: int,
    state: str,
    *,
    gpus: float | None = 8.0,
    hours: float | None = 1.0,
    num_nodes: int | None = 1,
    tenant: str | None = None,
    submit: datetime | None = T0,
) -> JobRecord:
    start = None if hours is None else T0
    end = None if hours is None else T0 + timedelta(hours=hours)
    return JobRecord(
        job_id=f"j{i}",
        source="test",
        backend="slurm",
        state=state,
        tenant=tenant,
        gpus=gpus,
        num_nodes=num_nodes,
        submit_time=submit,
        start_time=start,
        end_time=end,
    )


# --- hand-checked examples ---------------------------------------------------


def test_outcome_summary_by_count_gpus_and_gpu_hours() -> None:
    jobs = jobs_frame(
        [
            job(0, "completed", gpus=8, hours=3),  # 24 GPU-h
            job(1, "completed", gpus=0.5, hours=2),  # 1 GPU-h
            job(2, "failed", gpus=4, hours=0.25),  # 1 GPU-h
            job(3, "pending", gpus=2, hours=None),  # no GPU-h
        ]
    )
    s = outcome_summary(jobs)
    assert (s.jobs, s.gpus_requested, s.gpu_hours, s.jobs_with_gpu_hours) == (4, 14.5, 26.0, 3)
    assert [r.state for r in s.by_state] == list(STATES)
    c, f, p = s.state("completed"), s.state("failed"), s.state("pending")
    assert (c.jobs, c.share, c.gpus_requested, c.gpu_hours) == (2, 0.5, 8.5, 25.0)
    assert c.gpu_hours_share == pytest.approx(25 / 26)
    assert (f.jobs, f.share, f.gpus_requested_share, f.gpu_hours) == (1, 0.25, 4 / 14.5, 1.0)
    assert (p.jobs, p.gpus_requested, p.gpu_hours, p.gpu_hours_share) == (1, 2.0, 0.0, 0.0)
    assert s.state("timeout").jobs == 0
    assert set(s.as_dict()["by_state"]) == set(STATES)


def test_empty_frame_gives_zeros_not_nans() -> None:
    s = outcome_summary(jobs_frame([]))
    assert s.jobs == 0
    assert all(r.share == r.gpu_hours_share == r.gpus_requested_share == 0 for r in s.by_state)
    fr = failure_rate(jobs_frame([]))
    assert (fr.failures, fr.node_days, fr.per_1000_node_days) == (0, 0.0, None)
    assert all(b.jobs == 0 and b.mttf_hours is None for b in mttf_by_size(jobs_frame([])))


def test_failure_rate_per_1000_node_days() -> None:
    jobs = jobs_frame(
        [
            job(0, "completed", num_nodes=18, hours=48),  # 36 node-days
            job(1, "node_fail", num_nodes=2, hours=24),  # 2 node-days
            job(2, "out_of_memory", num_nodes=1, hours=24),  # 1 node-day
            job(3, "cancelled", num_nodes=1, hours=24),  # 1 node-day, not a failure
            job(4, "failed", num_nodes=None, hours=24),  # node-days unknown: left out
            job(5, "failed", num_nodes=4, hours=None),  # node-days unknown: left out
        ]
    )
    fr = failure_rate(jobs)
    assert (fr.jobs, fr.failures, fr.node_days) == (4, 2, 40.0)
    assert fr.per_1000_node_days == pytest.approx(50.0)
    only_hw = failure_rate(jobs, ["node_fail"])
    assert only_hw.per_1000_node_days == pytest.approx(25.0)


def test_mttf_by_size_bucket() -> None:
    jobs = jobs_frame(
        [
            job(0, "completed", gpus=72, hours=10),
            job(1, "failed", gpus=64, hours=5),
            job(2, "node_fail", gpus=16, hours=5),
            job(3, "running", gpus=576, hours=100),  # exposure without a failure
            job(4, "failed", gpus=1, hours=2),
            job(5, "failed", gpus=1, hours=None),  # no runtime: left out
        ]
    )
    by = {b.bucket: b for b in mttf_by_size(jobs)}
    assert [b for b in by] == list(SIZE_BUCKETS)
    assert (by["(8,72]"].jobs, by["(8,72]"].failures, by["(8,72]"].mttf_hours) == (3, 2, 10.0)
    assert (by["(72,576]"].runtime_hours, by["(72,576]"].mttf_hours) == (100.0, None)
    assert (by["1"].jobs, by["1"].mttf_hours) == (1, 2.0)


@pytest.mark.parametrize(
    ("gpus", "bucket"),
    [
        (0, "0"),
        (0.23, "(0,1)"),
        (0.999, "(0,1)"),
        (1, "1"),
        (1.5, "(1,8]"),
        (8, "(1,8]"),
        (9, "(8,72]"),
        (72, "(8,72]"),
        (73, "(72,576]"),
        (576, "(72,576]"),
        (1024, ">576"),
    ],
)
def test_size_buckets(gpus: float, bucket: str) -> None:
    assert size_bucket(gpus) == bucket


def test_filter_by_tenant_and_since() -> None:
    jobs = jobs_frame(
        [
            job(0, "completed", tenant="acme", submit=T0 - timedelta(days=1)),
            job(1, "completed", tenant="acme", submit=T0 + timedelta(days=1)),
            job(2, "failed", tenant="globex", submit=T0 + timedelta(days=1)),
            job(3, "failed", tenant=None, submit=None),  # first seen at start = T0
            job(4, "pending", tenant=None, submit=None, hours=None),  # never seen
        ]
    )
    assert filter_jobs(jobs, tenant="acme")["job_id"].tolist() == ["j0", "j1"]
    assert filter_jobs(jobs, since=T0)["job_id"].tolist() == ["j1", "j2", "j3"]
    assert filter_jobs(jobs, since=T0, tenant="acme")["job_id"].tolist() == ["j1"]
    assert len(filter_jobs(jobs)) == 5
    report = stability_report(jobs, tenant="nobody")
    assert report.outcomes.jobs == 0
    assert report.sources == ()


def test_unknown_state_in_frame_is_refused() -> None:
    jobs = jobs_frame([job(0, "completed")])
    jobs.loc[0, "state"] = "exploded"
    with pytest.raises(ValueError, match="exploded"):
        outcome_summary(jobs)


# --- property tests ----------------------------------------------------------

amounts = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(st.dictionaries(st.sampled_from(STATES), amounts))
def test_outcome_shares_are_fractions_that_sum_to_one(values: dict[str, float]) -> None:
    shares = outcome_shares(values)
    assert set(shares) == set(values)
    assert all(0.0 <= s <= 1.0 for s in shares.values())
    total = sum(values.values())
    if total > 0:
        assert math.isclose(sum(shares.values()), 1.0, rel_tol=1e-9)
        for key, value in values.items():
            assert math.isclose(shares[key], value / total, rel_tol=1e-9, abs_tol=1e-12)
    else:
        assert all(s == 0.0 for s in shares.values())


jobs_strategy = st.lists(
    st.tuples(
        st.sampled_from(STATES),
        st.one_of(st.none(), st.sampled_from([0, 0.25, 0.46, 1, 2, 8, 72, 144, 1024])),
        st.one_of(st.none(), st.integers(min_value=0, max_value=10_000)),  # runtime minutes
        st.one_of(st.none(), st.integers(min_value=1, max_value=288)),  # nodes
    ),
    max_size=40,
)


def build(spec: list[tuple[str, float | None, int | None, int | None]]) -> list[JobRecord]:
    return [
        job(i, state, gpus=gpus, hours=None if minutes is None else minutes / 60, num_nodes=nodes)
        for i, (state, gpus, minutes, nodes) in enumerate(spec)
    ]


@settings(max_examples=60, deadline=None)
@given(jobs_strategy)
def test_outcome_summary_agrees_with_plain_python(
    spec: list[tuple[str, float | None, int | None, int | None]],
) -> None:
    s = outcome_summary(jobs_frame(build(spec)))
    counts = Counter(state for state, *_ in spec)
    gpus: dict[str, float] = defaultdict(float)
    gpu_h: dict[str, float] = defaultdict(float)
    for state, g, minutes, _ in spec:
        gpus[state] += g or 0.0
        if g is not None and minutes is not None:
            gpu_h[state] += g * minutes / 60
    assert s.jobs == len(spec) == sum(r.jobs for r in s.by_state)
    for row in s.by_state:
        assert row.jobs == counts[row.state]
        assert row.share == pytest.approx(counts[row.state] / len(spec) if spec else 0.0)
        assert row.gpus_requested == pytest.approx(gpus[row.state])
        assert row.gpu_hours == pytest.approx(gpu_h[row.state])
    for attr in ("share", "gpus_requested_share", "gpu_hours_share"):
        total = sum(getattr(r, attr) for r in s.by_state)
        assert total == pytest.approx(1.0) or total == 0.0
    assert s.gpus_requested == pytest.approx(sum(gpus.values()))
    assert s.gpu_hours == pytest.approx(sum(gpu_h.values()))


@settings(max_examples=60, deadline=None)
@given(jobs_strategy)
def test_failure_rate_and_mttf_agree_with_plain_python(
    spec: list[tuple[str, float | None, int | None, int | None]],
) -> None:
    frame = jobs_frame(build(spec))
    known = [(s, m / 60 / 24 * n) for s, _, m, n in spec if m is not None and n is not None]
    fr = failure_rate(frame)
    node_days = sum(d for _, d in known)
    failures = sum(1 for s, _ in known if s in FAILURE_STATES)
    assert (fr.jobs, fr.failures) == (len(known), failures)
    assert fr.node_days == pytest.approx(node_days)
    if node_days > 0:
        assert fr.per_1000_node_days == pytest.approx(1000 * failures / node_days)
    else:
        assert fr.per_1000_node_days is None

    buckets = mttf_by_size(frame)
    timed = [(s, g, m) for s, g, m, _ in spec if g is not None and m is not None]
    assert sum(b.jobs for b in buckets) == len(timed)
    assert sum(b.failures for b in buckets) == sum(1 for s, *_ in timed if s in FAILURE_STATES)
    for b in buckets:
        mine = [(s, m / 60) for s, g, m in timed if size_bucket(g) == b.bucket]
        fails = sum(1 for s, _ in mine if s in FAILURE_STATES)
        assert b.runtime_hours == pytest.approx(sum(h for _, h in mine))
        assert b.mttf_hours == (pytest.approx(b.runtime_hours / fails) if fails else None)


# --- the Alibaba GPU 2023 trace ----------------------------------------------

PHASE_TO_STATE = {
    "Succeeded": "completed",
    "Failed": "failed",
    "Running": "running",
    "Pending": "pending",
}


def test_report_reproduces_the_alibaba_trace_counts() -> None:
    path: Path = data_file(POD_LIST)
    # Expected numbers straight from the CSV, with the csv module only.
    pods: Counter[str] = Counter()
    gpu_milli: Counter[str] = Counter()  # GPUs requested, in thousandths
    gpu_seconds_milli: Counter[str] = Counter()
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            phase = row["pod_phase"]
            milli = int(row["num_gpu"]) * int(row["gpu_milli"])
            pods[phase] += 1
            gpu_milli[phase] += milli
            if row["scheduled_time"] and row["deletion_time"]:
                runtime_s = int(row["deletion_time"]) - int(row["scheduled_time"])
                gpu_seconds_milli[phase] += milli * runtime_s
    assert sum(pods.values()) == 8152
    assert pods == {"Running": 5193, "Failed": 1870, "Pending": 897, "Succeeded": 192}
    assert gpu_milli == {
        "Running": 3_373_300,
        "Failed": 1_877_630,
        "Pending": 601_870,
        "Succeeded": 234_000,
    }

    jobs = get_importer("alibaba-gpu-2023").read(path, ImportOptions())
    report = stability_report(jobs)
    out = report.outcomes
    assert report.sources == ("alibaba-gpu-2023",)
    assert out.jobs == 8152
    assert round(out.gpus_requested * 1000) == sum(gpu_milli.values()) == 6_086_800
    for phase, state in PHASE_TO_STATE.items():
        got = out.state(state)
        assert got.jobs == pods[phase]
        assert got.share == pytest.approx(pods[phase] / 8152)
        assert round(got.gpus_requested * 1000) == gpu_milli[phase]
        assert got.gpu_hours == pytest.approx(gpu_seconds_milli[phase] / 1000 / 3600)
    for state in set(STATES) - set(PHASE_TO_STATE.values()):
        assert out.state(state).jobs == 0
    # Pending pods were never scheduled: no runtime, no GPU-hours, no node-days.
    assert out.jobs_with_gpu_hours == 8152 - pods["Pending"]
    assert report.failures.jobs == 8152 - pods["Pending"]
    assert report.failures.failures == pods["Failed"]

"""The node lifecycle state machine: examples and hypothesis properties."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from health.base import CheckResult, CheckStatus
from health.lifecycle import (
    Action,
    LifecyclePolicy,
    NodeRecord,
    NodeState,
    Outcome,
    SchedulerView,
    drain_reason,
    fold,
    transition,
)

N = "sim-r01-t01"
POLICY = LifecyclePolicy()
FAIL = [CheckResult("ecc", N, CheckStatus.FAIL, "3 correctable errors", metric="ecc", value=3)]
FATAL = [CheckResult("xid", N, CheckStatus.FAIL, "XID 79 on gpu1", fatal=True, gpu=1)]


def step(
    rec: NodeRecord, outcome: Outcome, view: SchedulerView = SchedulerView.IN_SERVICE
) -> tuple[NodeRecord, list[Action]]:
    findings = {Outcome.FAIL: FAIL, Outcome.FATAL: FATAL}.get(outcome, [])
    return transition(rec, outcome, findings, view, POLICY)


def test_first_failure_suspect_second_drains() -> None:
    rec, acts = step(NodeRecord(N), Outcome.FAIL)
    assert rec.state is NodeState.SUSPECT and acts == []
    rec, acts = step(rec, Outcome.FAIL)
    assert rec.state is NodeState.DRAINED and rec.drained_by_dcops
    assert [a.kind for a in acts] == ["drain"]
    assert acts[0].reason.startswith("dcops: ecc: 3 correctable errors")
    assert acts[0].evidence[0]["check"] == "ecc"


def test_fatal_drains_at_once_with_check_and_gpu_in_reason() -> None:
    rec, acts = step(NodeRecord(N), Outcome.FATAL)
    assert rec.state is NodeState.DRAINED
    assert acts[0].reason == "dcops: xid: gpu1 XID 79 on gpu1"


def test_suspect_then_clean_is_ok_again() -> None:
    rec, _ = step(NodeRecord(N), Outcome.FAIL)
    rec, acts = step(rec, Outcome.CLEAN)
    assert rec.state is NodeState.OK and rec.consecutive_failures == 0 and acts == []


def test_repair_then_resume_after_two_clean_sweeps() -> None:
    rec, _ = step(NodeRecord(N), Outcome.FATAL)
    rec, acts = step(rec, Outcome.CLEAN, SchedulerView.DCOPS_DRAIN)
    assert rec.state is NodeState.REPAIR and acts == []
    rec, acts = step(rec, Outcome.CLEAN, SchedulerView.DCOPS_DRAIN)
    assert rec.state is NodeState.OK and [a.kind for a in acts] == ["resume"]


def test_failure_in_repair_goes_back_to_drained_and_restarts_the_streak() -> None:
    rec, _ = step(NodeRecord(N), Outcome.FATAL)
    rec, _ = step(rec, Outcome.CLEAN, SchedulerView.DCOPS_DRAIN)
    rec, acts = step(rec, Outcome.FAIL, SchedulerView.DCOPS_DRAIN)
    assert rec.state is NodeState.DRAINED and rec.consecutive_passes == 0 and acts == []


def test_admin_drain_never_touched() -> None:
    rec, acts = step(NodeRecord(N), Outcome.FATAL, SchedulerView.ADMIN_DRAIN)
    assert acts == [] and not rec.drained_by_dcops
    for _ in range(5):
        rec, acts = step(rec, Outcome.CLEAN, SchedulerView.ADMIN_DRAIN)
        assert acts == []


def test_error_changes_nothing_but_breaks_the_streak() -> None:
    rec = NodeRecord(N, NodeState.REPAIR, consecutive_passes=1, drained_by_dcops=True)
    new, acts = step(rec, Outcome.ERROR, SchedulerView.DCOPS_DRAIN)
    assert new == replace(rec, consecutive_passes=0) and acts == []


def test_operator_resumed_by_hand_starts_afresh() -> None:
    rec = NodeRecord(N, NodeState.DRAINED, consecutive_failures=3, drained_by_dcops=True)
    new, acts = step(rec, Outcome.CLEAN, SchedulerView.IN_SERVICE)
    assert new.state is NodeState.OK and acts == []


def test_fold_and_reason() -> None:
    warn = CheckResult("temp", N, CheckStatus.WARN, "hot")
    err = CheckResult("ecc", N, CheckStatus.ERROR, "no nvidia-smi")
    assert fold([warn]) is Outcome.CLEAN
    assert fold([warn, err]) is Outcome.ERROR
    assert fold([err, *FAIL]) is Outcome.FAIL
    assert fold([*FAIL, *FATAL]) is Outcome.FATAL
    assert fold([]) is Outcome.ERROR
    assert fold([warn], unreachable=True) is Outcome.ERROR
    long = [CheckResult("x", N, CheckStatus.FAIL, "y" * 500)]
    assert len(drain_reason(long)) <= 200 and "\n" not in drain_reason(long)


def test_policy_validates() -> None:
    with pytest.raises(ValueError):
        LifecyclePolicy(drain_after_failures=0)


# --- properties --------------------------------------------------------------------------------

outcomes = st.sampled_from(list(Outcome))
views = st.sampled_from(list(SchedulerView))
records = st.builds(
    NodeRecord,
    node=st.just(N),
    state=st.sampled_from(list(NodeState)),
    consecutive_failures=st.integers(0, 5),
    consecutive_passes=st.integers(0, 5),
    drained_by_dcops=st.booleans(),
    reason=st.sampled_from(["", "dcops: xid: 79"]),
)
policies = st.builds(
    LifecyclePolicy, drain_after_failures=st.integers(1, 4), resume_after_passes=st.integers(1, 4)
)


def _findings(outcome: Outcome) -> list[CheckResult]:
    return {Outcome.FAIL: FAIL, Outcome.FATAL: FATAL}.get(outcome, [])


@given(records, outcomes, views, policies)
def test_single_step_invariants(
    rec: NodeRecord, outcome: Outcome, view: SchedulerView, policy: LifecyclePolicy
) -> None:
    new, acts = transition(rec, outcome, _findings(outcome), view, policy)
    assert new.node == rec.node
    assert new.consecutive_failures >= 0 and new.consecutive_passes >= 0
    assert len(acts) <= 1
    if view is SchedulerView.ADMIN_DRAIN or outcome is Outcome.ERROR:
        assert acts == []  # admin drains untouched; not knowing never acts
    for a in acts:
        if a.kind == "drain":
            assert outcome in (Outcome.FAIL, Outcome.FATAL)
            assert a.reason.startswith("dcops:")
            assert new.state is NodeState.DRAINED and new.drained_by_dcops
            assert view is not SchedulerView.DCOPS_DRAIN  # never drains twice
        else:
            assert a.kind == "resume" and outcome is Outcome.CLEAN
            assert view is SchedulerView.DCOPS_DRAIN  # only dcops' own drains
            assert new.consecutive_passes >= policy.resume_after_passes
            assert new.state is NodeState.OK
    if outcome is Outcome.FATAL and view is SchedulerView.IN_SERVICE:
        assert [a.kind for a in acts] == ["drain"]
    if outcome in (Outcome.FAIL, Outcome.FATAL):
        assert new.consecutive_passes == 0
    if outcome is Outcome.CLEAN:
        assert new.consecutive_failures == 0


@settings(max_examples=200)
@given(st.lists(outcomes, max_size=30), policies)
def test_sequences_against_a_scheduler_that_obeys(
    seq: list[Outcome], policy: LifecyclePolicy
) -> None:
    """Run a history; the scheduler follows the actions. Resumes only after N clean in a row;
    a non-fatal failure drains only after `drain_after_failures` failures in a row."""
    rec, view = NodeRecord(N), SchedulerView.IN_SERVICE
    clean_streak = fail_streak = 0
    for outcome in seq:
        rec, acts = transition(rec, outcome, _findings(outcome), view, policy)
        clean_streak = clean_streak + 1 if outcome is Outcome.CLEAN else 0
        if outcome is Outcome.ERROR:
            pass
        elif outcome is Outcome.CLEAN:
            fail_streak = 0
        else:
            fail_streak += 1
        for a in acts:
            if a.kind == "drain":
                assert outcome is Outcome.FATAL or fail_streak >= policy.drain_after_failures
                view = SchedulerView.DCOPS_DRAIN
            else:
                assert clean_streak >= policy.resume_after_passes
                view = SchedulerView.IN_SERVICE
        assert (rec.state in (NodeState.DRAINED, NodeState.REPAIR)) == (
            view is SchedulerView.DCOPS_DRAIN
        )

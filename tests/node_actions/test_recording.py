"""RecordingNodeActions: the in-memory backend follows Slurm's drain/resume rules and records."""

from __future__ import annotations

import pytest

from dcops.errors import InputError, UnknownNodeError
from dcops.node_actions import NodeActionFeature, NodeActions, RecordingNodeActions


def _actions() -> RecordingNodeActions:
    return RecordingNodeActions("sim-r01-t[01-04]", clock=lambda: 1000.0)


def test_satisfies_the_port() -> None:
    actions = _actions()
    assert isinstance(actions, NodeActions)
    assert NodeActionFeature.DRAIN in actions.features
    assert NodeActionFeature.REMOTE not in actions.features


def test_drain_keeps_base_and_records() -> None:
    actions = _actions()
    actions.set_base("sim-r01-t02", "allocated")
    assert actions.drain("sim-r01-t[01-02]", "dcops: xid 79") == ["sim-r01-t01", "sim-r01-t02"]
    states = actions.states()
    assert states["sim-r01-t01"].states == ("IDLE", "DRAIN") and states["sim-r01-t01"].drained
    assert states["sim-r01-t02"].states == ("ALLOCATED", "DRAIN")
    assert states["sim-r01-t02"].draining
    assert states["sim-r01-t01"].reason_user == "dcops"
    assert states["sim-r01-t01"].reason_time_s == 1000.0
    assert [r.action for r in actions.log] == ["drain"]
    assert actions.log[0].nodes == ("sim-r01-t01", "sim-r01-t02")


def test_drain_twice_keeps_one_flag_and_new_reason() -> None:
    actions = _actions()
    actions.drain("sim-r01-t01", "dcops: first")
    actions.drain("sim-r01-t01", "dcops: second")
    state = actions.states("sim-r01-t01")["sim-r01-t01"]
    assert state.states == ("IDLE", "DRAIN") and state.reason == "dcops: second"


def test_resume_only_what_is_out() -> None:
    actions = _actions()
    actions.drain("sim-r01-t01", "dcops: x")
    actions.set_base("sim-r01-t03", "DOWN")
    assert actions.resume("sim-r01-t[01-04]") == ["sim-r01-t01", "sim-r01-t03"]
    assert all(s.in_service and s.reason == "" for s in actions.states().values())
    assert [r.action for r in actions.log] == ["drain", "resume"]
    assert actions.resume("sim-r01-t01") == []
    assert len(actions.log) == 2


def test_unknown_nodes_change_nothing() -> None:
    actions = _actions()
    with pytest.raises(UnknownNodeError, match=r"sim-r02-t\[01-02\]"):
        actions.drain(["sim-r01-t01", "sim-r02-t01", "sim-r02-t02"], "dcops: x")
    assert actions.states("sim-r01-t01")["sim-r01-t01"].in_service
    assert actions.log == []
    with pytest.raises(UnknownNodeError):
        actions.set_base("nope", "DOWN")


def test_reason_checked() -> None:
    actions = _actions()
    with pytest.raises(InputError):
        actions.drain("sim-r01-t01", "")
    with pytest.raises(InputError):
        actions.drain("sim-r01-t01", "a\nb")


def test_add_node() -> None:
    actions = RecordingNodeActions()
    actions.add_node("n1", "mixed")
    assert actions.states("n1")["n1"].base == "MIXED"

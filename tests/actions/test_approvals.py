"""Approvals, expiry, undo, reconciliation of dead runs' intents, and the per-node locks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dcops.actions import ActionSettings, Level, Status, TargetLock, records
from dcops.errors import BusyError, InputError
from tests.actions._helpers import drain, rig

APPROVE = ActionSettings(levels=("sweep:drain=approve",))


def test_approval_queue_approve_runs_it_and_undo_reverses_it(tmp_path: Path) -> None:
    r = rig(tmp_path)
    [queued] = r.actuator(APPROVE).submit([drain("n-r01-t03")], apply=True)
    assert queued.status is Status.PENDING and queued.level is Level.APPROVE
    assert not r.sched.states(["n-r01-t03"])["n-r01-t03"].drain
    pending = r.actuator(APPROVE).list_actions(pending=True)
    assert [(p["id"], p["status"], p["targets"]) for p in pending] == [
        (queued.id, "pending", "n-r01-t03")
    ]
    done = r.actuator(APPROVE).approve(queued.id or "", "bob")
    assert done.status is Status.DONE and r.sched.states(["n-r01-t03"])["n-r01-t03"].drain
    row = r.actuator().show(queued.id or "")
    assert row["decided_by"] == "bob" and row["status"] == "done"
    undo = r.actuator().undo(queued.id or "", "carol")
    assert undo.status is Status.DONE and undo.request.undo_of == queued.id
    assert not r.sched.states(["n-r01-t03"])["n-r01-t03"].drain
    assert r.actuator().show(queued.id or "")["status"] == "undone"
    outcomes = [(x.action, x.outcome, x.actor) for x in r.audit.records()]
    assert outcomes == [
        ("drain", "pending", "tester"),
        ("drain", "approved", "bob"),
        ("drain", "started", "tester"),
        ("drain", "ok", "tester"),
        ("resume", "started", "tester"),
        ("resume", "ok", "tester"),
    ]
    assert r.audit.verify().ok


def test_expired_approval_does_not_run(tmp_path: Path) -> None:
    r = rig(tmp_path)
    [queued] = r.actuator(APPROVE).submit([drain("n-r01-t03")], apply=True)
    r.clock.now += 86_401
    with pytest.raises(InputError, match="is expired, not pending"):
        r.actuator(APPROVE).approve(queued.id or "", "bob")
    assert not r.sched.states(["n-r01-t03"])["n-r01-t03"].drain
    assert r.actuator().show(queued.id or "")["status"] == "expired"


def test_deny_and_approver_must_differ(tmp_path: Path) -> None:
    r = rig(tmp_path)
    strict = ActionSettings(levels=("sweep:drain=approve",), approver_must_differ=True)
    [queued] = r.actuator(strict).submit([drain("n-r01-t03")], apply=True)
    with pytest.raises(InputError, match="another person must approve"):
        r.actuator(strict).approve(queued.id or "", "cron")
    denied = r.actuator(strict).deny(queued.id or "", "bob", "not during the launch")
    assert denied.status is Status.DENIED
    assert not r.sched.states(["n-r01-t03"])["n-r01-t03"].drain


def test_undo_leaves_a_node_an_operator_took_over(tmp_path: Path) -> None:
    r = rig(tmp_path)
    [done] = r.actuator().submit([drain("n-r01-t03")], apply=True)
    r.sched.drain(["n-r01-t03"], "admin: keep out")
    undo = r.actuator().undo(done.id or "", "carol")
    assert undo.status is Status.SKIPPED and "someone took it over" in undo.message
    assert r.sched.states(["n-r01-t03"])["n-r01-t03"].reason == "admin: keep out"


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_killed_runs_intent_is_reconciled_by_the_next_run(tmp_path: Path) -> None:
    r = rig(tmp_path)
    # a run wrote its intent and died during the call, after Slurm drained the node
    [res] = r.actuator().submit([drain("n-r01-t03")], apply=False)
    res.status = Status.STARTED
    action_id = records.insert(r.store, res, backend="recording", undo_kind="resume")
    r.store.conn.execute("UPDATE actions SET pid = ? WHERE id = ?", (_dead_pid(), action_id))
    r.sched.drain(["n-r01-t03"], "dcops: t-smi: bad")
    # and one that died before the call reached the scheduler
    [res2] = r.actuator().submit([drain("n-r01-t04")], apply=False)
    res2.status = Status.STARTED
    lost = records.insert(r.store, res2, backend="recording", undo_kind="resume")
    r.store.conn.execute("UPDATE actions SET pid = ? WHERE id = ?", (_dead_pid(), lost))

    settled = r.actuator().reconcile()
    assert {s["id"]: s["status"] for s in settled} == {action_id: "done", lost: "failed"}
    assert r.actuator().show(action_id)["status"] == "done"
    assert sorted(x.outcome for x in r.audit.records()) == ["reconciled:done", "reconciled:failed"]


def test_target_locks_refuse_overlapping_runs_not_disjoint_ones(tmp_path: Path) -> None:
    with TargetLock(tmp_path, "burnin", ["a", "b"]):
        with pytest.raises(BusyError, match="another burnin run is acting on b"):
            TargetLock(tmp_path, "burnin", ["b", "c"]).acquire()
        with TargetLock(tmp_path, "burnin", ["c"]), TargetLock(tmp_path, "sweep", ["a"]):
            pass
    TargetLock(tmp_path, "burnin", ["b", "c"]).acquire().release()

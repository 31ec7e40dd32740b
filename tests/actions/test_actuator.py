"""The actuator's policy on an in-memory scheduler: ownership, levels, breaker, execution, audit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from dcops.actions import (
    ActionKind,
    ActionRequest,
    ActionSettings,
    CallableExecutor,
    Level,
    Source,
    Status,
    exit_code,
    register,
)
from dcops.errors import ExitCode, SchedulerError, UnknownNameError
from tests.actions._helpers import NODES, drain, resume, rig


def test_drain_writes_intent_before_the_call_and_outcome_after(tmp_path: Path) -> None:
    r = rig(tmp_path)
    [res] = r.actuator().submit([drain("n-r01-t03")], apply=True)
    assert res.status is Status.DONE and res.id
    assert r.sched.states(["n-r01-t03"])["n-r01-t03"].drain
    recs = r.audit.records(action="drain")
    assert [x.outcome for x in recs] == ["started", "ok"]
    assert recs[0].evidence["evidence"][0]["threshold"] == 1900.0
    assert [s.step for s in res.steps] == ["ownership", "level", "breaker", "execute"]
    row = r.actuator().show(res.id)
    assert row["status"] == "done" and row["undo_kind"] == "resume"
    assert r.audit.verify().ok


def test_dry_run_shows_the_call_and_stores_nothing(tmp_path: Path) -> None:
    r = rig(tmp_path)
    [res] = r.actuator().submit([drain("n-r01-t03")], apply=False)
    assert res.status is Status.DRY_RUN and res.id is None
    assert res.call[0] == "recording.drain" and "n-r01-t03" in res.call
    assert not r.sched.states(["n-r01-t03"])["n-r01-t03"].drain
    assert r.audit.records() == [] and r.actuator().list_actions() == []


def test_slurm_dry_run_is_the_exact_scontrol_argv(tmp_path: Path) -> None:
    from dcops.actions import NodeActionsExecutor
    from dcops.node_actions import SlurmCliNodeActions

    backend = SlurmCliNodeActions(slurm_conf="/etc/slurm/slurm.conf")
    call = NodeActionsExecutor("drain", backend).plan(drain("n-r01-t03"), ["n-r01-t03"])
    assert call == [
        "env", "SLURM_CONF=/etc/slurm/slurm.conf", "scontrol", "update",
        "NodeName=n-r01-t03", "State=DRAIN", "Reason=dcops: t-smi: bad",
    ]  # fmt: skip


def test_automated_resume_never_returns_an_operators_drain(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.actuator().submit([drain("n-r01-t03")], apply=True)
    r.sched.drain(["n-r01-t03"], "admin: RMA 4711")  # the operator takes it over
    [res] = r.actuator().submit([resume("n-r01-t03")], apply=True)
    assert res.status is Status.SKIPPED
    assert "someone else (admin: RMA 4711)" in res.message
    assert r.sched.states(["n-r01-t03"])["n-r01-t03"].reason == "admin: RMA 4711"


def test_a_sweep_never_returns_a_burnin_drain_but_a_recheck_does(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.actuator().submit([drain("n-r01-t09", source="burnin", run_id="bi-1")], apply=True)
    [by_sweep] = r.actuator().submit([resume("n-r01-t09", source="sweep")], apply=True)
    assert by_sweep.status is Status.SKIPPED
    assert "only a burnin recheck that passes returns it, not a sweep" in by_sweep.message
    assert r.sched.states(["n-r01-t09"])["n-r01-t09"].drain
    [by_recheck] = r.actuator().submit([resume("n-r01-t09", source="burnin")], apply=True)
    assert by_recheck.status is Status.DONE
    assert not r.sched.states(["n-r01-t09"])["n-r01-t09"].drain


def test_burnin_origin_is_read_from_the_reason_when_the_store_forgot(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.sched.drain(["n-r01-t09"], "dcops: burnin bi-9: all_reduce: 3670016 wrong values")
    [res] = r.actuator().submit([resume("n-r01-t09", source="sweep")], apply=True)
    assert res.status is Status.SKIPPED and "taken out by burnin" in res.message


def test_automated_drain_leaves_drained_nodes_alone_operator_takes_over(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.sched.drain(["n-r01-t04"], "admin: maintenance")
    [res] = r.actuator().submit([drain("n-r01-t04")], apply=True)
    assert res.status is Status.SKIPPED and "someone else (admin: maintenance)" in res.message
    r.actuator().submit([drain("n-r01-t05")], apply=True)
    takeover = ActionRequest.make(
        "drain", "n-r01-t05", reason="PSU swap", source=Source("operator"), requested_by="alice"
    )
    [op] = r.actuator().submit([takeover], apply=True)
    state = r.sched.states(["n-r01-t05"])["n-r01-t05"]
    assert op.status is Status.DONE and state.reason == "PSU swap" and not state.by_dcops


def test_breaker_refuses_the_whole_batch_and_maps_to_exit_5(tmp_path: Path) -> None:
    r = rig(tmp_path)
    batch = [drain(n) for n in NODES[:7]]  # 7 of 18 in rack r01 > 34%
    results = r.actuator().submit(batch, apply=True)
    assert {x.status for x in results} == {Status.REFUSED}
    assert results[0].message.startswith("circuit breaker: 7 of 18 nodes of rack r01")
    assert not any(s.drain for s in r.sched.states(NODES[:7]).values())
    assert exit_code(results) is ExitCode.REFUSED
    assert {x.outcome for x in r.audit.records()} == {"refused"}
    forced = r.actuator().submit(batch, apply=True, force=True)
    assert {x.status for x in forced} == {Status.DONE}


def test_breaker_counts_drains_of_earlier_runs_in_its_window(tmp_path: Path) -> None:
    r = rig(tmp_path)
    settings = ActionSettings(max_drain_rack=1.0, max_drain_fleet=0.25)
    first = r.actuator(settings).submit([drain(n) for n in NODES[:8]], apply=True)
    assert {x.status for x in first} == {Status.DONE}
    second = r.actuator(settings).submit([drain(n) for n in NODES[18:20]], apply=True)
    assert {x.status for x in second} == {Status.REFUSED}
    assert "10 of 36 nodes" in second[0].message
    assert "8 of them in the last 300s" in second[0].message
    r.clock.now += 301
    later = r.actuator(settings).submit([drain(n) for n in NODES[18:20]], apply=True)
    assert {x.status for x in later} == {Status.DONE}


def test_max_per_run(tmp_path: Path) -> None:
    r = rig(tmp_path)
    settings = ActionSettings(max_drain_rack=1, max_drain_fleet=1, max_per_run=3)
    results = r.actuator(settings).submit([drain(n) for n in NODES[:4]], apply=True)
    assert {x.status for x in results} == {Status.REFUSED}
    assert "max_per_run 3" in results[0].message


def test_an_operator_resumed_node_is_not_drained_again_within_the_cooldown(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.actuator().submit([drain("n-r01-t06")], apply=True)
    r.sched.resume(["n-r01-t06"])  # the operator puts it back by hand
    r.clock.now += 600
    [again] = r.actuator().submit([drain("n-r01-t06")], apply=True)
    assert again.status is Status.REFUSED and "cooldown: an operator returned" in again.message
    assert not r.sched.states(["n-r01-t06"])["n-r01-t06"].drain
    r.clock.now += 3600
    [later] = r.actuator().submit([drain("n-r01-t06")], apply=True)
    assert later.status is Status.DONE


def test_rate_limit_per_node(tmp_path: Path) -> None:
    r = rig(tmp_path)
    settings = ActionSettings(node_max_actions=2)
    for _ in range(2):
        r.actuator(settings).submit([drain("n-r01-t07")], apply=True)
        r.actuator(settings).submit([resume("n-r01-t07")], apply=True)
    [res] = r.actuator(settings).submit([drain("n-r01-t07")], apply=True)
    assert res.status is Status.REFUSED and "rate limit: " in res.message


def test_backend_failure_is_an_outcome_not_a_crash(tmp_path: Path) -> None:
    r = rig(tmp_path)

    def broken(nodes: str | Iterable[str], reason: str) -> list[str]:
        raise SchedulerError("slurmctld not responding")

    r.sched.drain = broken  # type: ignore[method-assign]
    [res] = r.actuator().submit([drain("n-r01-t03")], apply=True)
    assert res.status is Status.FAILED and "slurmctld not responding" in res.message
    assert [x.outcome for x in r.audit.records()] == ["started", "failed"]
    assert exit_code([res]) is ExitCode.INTERNAL


def test_timeout_leaves_an_intent_the_next_run_reconciles(tmp_path: Path) -> None:
    import threading

    r = rig(tmp_path)
    gate = threading.Event()
    real = r.sched.drain

    def slow(nodes: str | Iterable[str], reason: str) -> list[str]:
        gate.wait(5)
        return real(nodes, reason)

    r.sched.drain = slow  # type: ignore[method-assign]
    [res] = r.actuator(ActionSettings(timeout_s=0.05)).submit([drain("n-r01-t03")], apply=True)
    assert res.status is Status.FAILED and "no answer within" in res.message
    assert r.actuator().show(res.id or "")["status"] == "started"
    gate.set()


def test_unknown_kind_is_an_input_error_before_anything(tmp_path: Path) -> None:
    r = rig(tmp_path)
    bad = ActionRequest.make("fry", "n-r01-t03", reason="x", source=Source("operator"),
                             requested_by="a")  # fmt: skip
    with pytest.raises(UnknownNameError, match="unknown action kind 'fry'"):
        r.actuator().submit([drain("n-r01-t04"), bad], apply=True)
    assert r.audit.records() == []


def test_registered_destructive_kind_defaults_to_approve(tmp_path: Path) -> None:
    ran: list[list[str]] = []

    def reboot(_req: ActionRequest, targets: Sequence[str]) -> str:
        ran.append(list(targets))
        return "rebooted"

    register(
        ActionKind("test_reboot", lambda _ctx: CallableExecutor(reboot)),
        replace=True,
    )
    r = rig(tmp_path)
    req = ActionRequest.make("test_reboot", "n-r01-t03", reason="xid 79",
                             source=Source("runbook", "rb-1"), requested_by="alice")  # fmt: skip
    [res] = r.actuator().submit([req], apply=True)
    assert res.status is Status.PENDING and res.level is Level.APPROVE and ran == []
    done = r.actuator().approve(res.id or "", "bob")
    assert done.status is Status.DONE and ran == [["n-r01-t03"]]

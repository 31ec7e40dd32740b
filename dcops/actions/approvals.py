"""Approvals, undo and reconciliation: the actuator's work on stored actions.

Functions of an :class:`~dcops.actions.Actuator` (its methods delegate here).

- ``approve(id, approver)``: a pending action runs now, through ownership and
  the breaker again (the world may have changed since it was queued); an
  expired one is marked ``expired`` and does not run; with
  ``approver_must_differ`` the requester cannot approve their own;
- ``deny(id, approver, reason)``;
- ``undo(id, requested_by)``: the undo kind of a done action (drain -> resume,
  cordon -> uncordon) on the nodes that still carry the reason it wrote;
- ``reconcile()``: intents left ``started`` by a run that died are settled
  against the scheduler (done if the world shows the change, else failed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dcops.actions import kinds, records
from dcops.actions.request import ActionRequest, ActionResult, Level, Source, Status, Step
from dcops.errors import DcopsError, InputError

if TYPE_CHECKING:
    from dcops.actions.actuator import Actuator


def expire(self: Actuator) -> list[str]:
    """Mark pending actions past their expiry ``expired``; returns their ids."""
    now = records.iso_at(self.clock())
    rows = self.store.conn.execute(
        "SELECT id FROM actions WHERE status = 'pending' AND expires_at IS NOT NULL"
        " AND expires_at < ?",
        (now,),
    ).fetchall()
    out = []
    for row in rows:
        records.update(self.store, row["id"], status=Status.EXPIRED, message="approval expired")
        result = records.result_of(records.get(self.store, row["id"]))
        result.message = "approval expired; not run"
        self._audit(result, outcome="expired")
        out.append(row["id"])
    return out


def list_actions(
    self: Actuator, *, pending: bool = False, limit: int = 100
) -> list[dict[str, Any]]:
    expire(self)
    return records.listing(self.store, statuses=["pending"] if pending else None, limit=limit)


def show(self: Actuator, action_id: str) -> dict[str, Any]:
    expire(self)
    return records.get(self.store, action_id)


def approve(self: Actuator, action_id: str, approver: str) -> ActionResult:
    """Approve a pending action and run it through ownership, breaker and execution."""
    expire(self)
    row = records.get(self.store, action_id)
    if row["status"] != Status.PENDING:
        raise InputError(f"action {action_id} is {row['status']}, not pending: nothing to approve")
    if self.settings.approver_must_differ and approver == row["requested_by"]:
        raise InputError(
            f"action {action_id} was requested by {approver}; another person must approve it"
            " (actions.approver_must_differ)"
        )
    reconcile(self)
    now = records.iso_at(self.clock())
    records.update(
        self.store, action_id, status=Status.APPROVED, decided_by=approver, decided_at=now
    )
    result = records.result_of(records.get(self.store, action_id))
    result.steps.append(Step("approve", "ok", f"approved by {approver}"))
    self._audit(result, outcome="approved", actor=approver)
    result.level = Level.ACT
    run_stored(self, result)
    return result


def deny(self: Actuator, action_id: str, approver: str, reason: str) -> ActionResult:
    expire(self)
    row = records.get(self.store, action_id)
    if row["status"] != Status.PENDING:
        raise InputError(f"action {action_id} is {row['status']}, not pending: nothing to deny")
    if not reason.strip():
        raise InputError("a denial needs a reason (--reason)")
    records.update(
        self.store,
        action_id,
        status=Status.DENIED,
        message=f"denied: {reason.strip()}",
        decided_by=approver,
        decided_at=records.iso_at(self.clock()),
    )
    result = records.result_of(records.get(self.store, action_id))
    self._audit(result, outcome="denied", actor=approver)
    return result


def undo(self: Actuator, action_id: str, requested_by: str, *, apply: bool = True) -> ActionResult:
    """Reverse a done action with its undo kind (drain -> resume, cordon -> uncordon)."""
    row = records.get(self.store, action_id)
    spec = kinds.get(row["kind"])
    if spec.undo is None:
        raise InputError(f"a {row['kind']} cannot be undone by dcops")
    if row["status"] != Status.DONE:
        raise InputError(f"action {action_id} is {row['status']}: only a done action is undone")
    request = ActionRequest.make(
        spec.undo,
        row["targets"],
        reason=f"undo of {action_id} ({row['kind']}: {row['reason']})",
        source=Source("operator"),
        requested_by=requested_by,
        evidence=[{"check": "undo", "message": f"undo of {action_id}", "action_id": action_id}],
        undo_of=action_id,
    )
    self._apply = apply
    if apply:
        reconcile(self)
    undo_spec = kinds.get(spec.undo)
    states = self._states(list(request.targets))
    self._last_states = states
    level = self.settings.level_for(undo_spec.name, "operator", undo_spec.default_level)
    result = ActionResult(request, Status.DRY_RUN, level)
    targets = self._ownership(result, undo_spec, states, undo_reason=row["reason"])
    if not targets:
        if apply:
            self._store(result, undo_spec)
            self._audit(result, outcome="skipped")
        return result
    if not self._level(result, undo_spec, targets, apply):
        return result
    live = self._breaker([(result, undo_spec, targets)], apply=apply, force=False)
    for res, sp, tg in live:
        res.call = kinds.create(sp.name, self.context).plan(res.request, tg)
        if not apply:
            res.status = Status.DRY_RUN
            res.done_targets = tuple(tg)
            continue
        self._execute(res, sp, tg)
        if res.ok:
            records.update(self.store, action_id, status=Status.UNDONE, undone_by=res.id)
    return result


def run_stored(self: Actuator, result: ActionResult) -> None:
    """Ownership, breaker and execution for an approved, stored action."""
    spec = kinds.get(result.request.kind)
    self._apply = True
    states = self._states(list(result.request.targets))
    self._last_states = states
    targets = self._ownership(result, spec, states)
    live = self._breaker([(result, spec, targets)], apply=True, force=False) if targets else []
    if not live:
        assert result.id is not None
        records.update(
            self.store,
            result.id,
            status=result.status,
            message=result.message,
            steps=[s.to_dict() for s in result.steps],
        )
        if result.status is Status.SKIPPED:
            self._audit(result, outcome="skipped")
        return
    for res, sp, tg in live:
        res.call = kinds.create(sp.name, self.context).plan(res.request, tg)
        self._execute(res, sp, tg)


def reconcile(self: Actuator) -> list[dict[str, Any]]:
    """Settle intents a dead run left ``started`` against the scheduler (once per actuator)."""
    if self.reconciled is not None:
        return self.reconciled
    done: list[dict[str, Any]] = []
    self.reconciled = done
    for row in records.stale_intents(self.store):
        status, why = _settle(self, row)
        if status is Status.STARTED:
            continue  # the scheduler cannot tell yet: the next run tries again
        records.update(self.store, row["id"], status=status, message=why)
        result = records.result_of(records.get(self.store, row["id"]))
        self._audit(result, outcome=f"reconciled:{status.value}")
        done.append({"id": row["id"], "status": status.value, "message": why})
    return done


def _settle(actuator: Actuator, row: dict[str, Any]) -> tuple[Status, str]:
    if row["status"] == Status.APPROVED:
        return Status.FAILED, "approved, but the run that was to execute it died before it started"
    spec = kinds.get(row["kind"])
    targets = records.request_of(row).targets
    if actuator.node_actions is None or not (spec.takes_out or spec.returns):
        return Status.FAILED, "the run died during the call; outcome unknown, check by hand"
    try:
        states = actuator.node_actions.states(list(targets))
    except DcopsError as exc:
        return Status.STARTED, f"not reconciled yet (scheduler: {exc})"
    if spec.takes_out:
        done = [n for n in targets if states[n].drain and states[n].reason == row["reason"]]
    else:
        done = [n for n in targets if not states[n].drain]
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    if len(done) == len(targets):
        records.update(actuator.store, row["id"], executed_at=row["updated_at"])
        return (
            Status.DONE,
            f"reconciled {stamp}: the run died after the call; the scheduler shows it done",
        )
    return Status.FAILED, (
        f"reconciled {stamp}: the run died around the call; the scheduler shows it not done"
        + (f" on {len(targets) - len(done)} of {len(targets)} nodes" if done else "")
    )

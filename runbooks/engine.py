"""The durable runbook engine: a run's every step is in the state store before it moves on.

``start`` opens a run (one per node; rack and fleet limits; escalation instead
of repetition) and drives it; ``drive`` continues a run from its first step
that is not finished -- after an approval, after a crash, after ``kill -9`` --
and is a no-op on a finished run. A step found ``running`` (the process died
inside it) runs again if it is idempotent; otherwise it first asks for an
approval through the actuator's queue. A failed step runs ``on_failure``'s
rollback steps, then escalates (a ticket with the evidence bundle).
Every step's outcome is also a record in the audit chain, with its evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dcops.actions import ActionRequest, Source, evidence
from dcops.errors import InputError
from runbooks.context import EngineContext
from runbooks.model import Runbook, Step, parse_stored
from runbooks.plan import needs_gpu, values_for
from runbooks.runs import (
    TERMINAL,
    claim,
    get_run,
    open_run,
    recent_runs,
    update_run,
    update_step,
)
from runbooks.steps import StepResult, escalate, hand_to_repair, run_step

#: Actuator statuses that end a wait for approval.
_APPROVED = ("done",)
_STILL_WAITING = ("pending", "approved", "started")


def start(
    ctx: EngineContext,
    book: Runbook,
    node: str,
    *,
    values: Mapping[str, Any] | None = None,
    autonomy: str = "act",
    why: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Open a run of ``book`` on ``node`` and drive it as far as it goes now."""
    given = dict(values or {})
    # unknown parameters, a GPU reset without a GPU index: InputError before anything is stored
    needs_gpu(book, values_for(book, node, given))
    params = {"values": given, "why": why, **dict(extra or {})}
    apply = autonomy in ("approve", "act")
    status = "running" if apply else "recommended"
    earlier = recent_runs(ctx.store, node) if apply else []
    run_id = open_run(
        ctx.store,
        book,
        node,
        rack=ctx.rack_of(node),
        apply=apply,
        autonomy=autonomy,
        params=params,
        requested_by=ctx.requested_by,
        limits=ctx.limits,
        status=status,
    )
    run = get_run(ctx.store, run_id)
    _audit(ctx, run, "runbook.run", status, {"why": why, "autonomy": autonomy})
    if not apply:
        update_run(ctx.store, run_id, message="recommended: nothing was run")
        return get_run(ctx.store, run_id)
    if len(earlier) >= ctx.limits.max_remediations_7d:
        return _escalate_instead(ctx, run, earlier)
    return drive(ctx, run_id)


def _escalate_instead(
    ctx: EngineContext, run: dict[str, Any], earlier: list[dict[str, Any]]
) -> dict[str, Any]:
    why = (
        f"{len(earlier)} remediations of {run['node']} in 7 days "
        f"(runbooks.max_remediations_7d = {ctx.limits.max_remediations_7d}): escalated instead"
    )
    for row in run["steps"]:
        update_step(ctx.store, run["run_id"], row["seq"], status="skipped", outcome=why)
    run = get_run(ctx.store, run["run_id"])
    run["params"]["why"] = f"{run['params'].get('why') or ''}; earlier: " + ", ".join(
        f"{e['run_id']} {e['runbook']} {e['status']}" for e in earlier
    )
    where = escalate(ctx, run, f"repeated remediation of {run['node']}", "default", reason=why)
    update_run(ctx.store, run["run_id"], status="escalated", message=f"{why}; ticket {where}")
    _audit(ctx, run, "runbook.run", "escalated", {"why": why, "ticket": where})
    return get_run(ctx.store, run["run_id"])


def drive(ctx: EngineContext, run_id: str) -> dict[str, Any]:
    """Continue ``run_id`` from where it stands; returns the run as stored."""
    run = claim(ctx.store, run_id)
    if run["status"] in TERMINAL:
        return run
    if not run["apply"]:
        return run
    book = parse_stored(run["definition"])
    values = values_for(book, run["node"], run["params"].get("values", {}))
    values["run_id"] = run_id
    update_run(ctx.store, run_id, status="running")
    for row in run["steps"]:
        if row["phase"] == "rollback" or row["status"] in ("done", "skipped"):
            continue
        if _aborted(ctx, run_id):  # an operator aborted it from another process
            return get_run(ctx.store, run_id)
        step = book.step(row["name"])
        result = _settle_waiting(ctx, run, row, step)
        if result is None:
            result = _execute(ctx, run, row, step, values)
        _record(ctx, run, row, step, result)
        if result.status in ("done", "skipped"):
            continue
        if result.status == "waiting_approval":
            update_run(
                ctx.store,
                run_id,
                status="waiting_approval",
                current=step.name,
                message=result.outcome,
            )
            return get_run(ctx.store, run_id)
        if result.status == "blocked":
            update_run(
                ctx.store, run_id, status="blocked", current=step.name, message=result.outcome
            )
            return get_run(ctx.store, run_id)
        if result.status == "refused":  # ownership changed: stop, touch nothing more
            why = f"step {step.name} refused: {result.outcome}"
            update_run(ctx.store, run_id, status="aborted", current=step.name, message=why)
            run = get_run(ctx.store, run_id)
            _audit(ctx, run, "runbook.run", "aborted", {"why": why, "refused": step.name})
            return run
        if result.status == "recommended":
            update_run(
                ctx.store, run_id, status="recommended", current=step.name, message=result.outcome
            )
            return get_run(ctx.store, run_id)
        if step.on_fail == "continue":
            continue
        return _fail(ctx, get_run(ctx.store, run_id), book, step, result, values)
    update_run(ctx.store, run_id, status="done", current=None, message="every step done")
    run = get_run(ctx.store, run_id)
    _audit(ctx, run, "runbook.run", "done", {})
    return run


def _aborted(ctx: EngineContext, run_id: str) -> bool:
    row = ctx.store.conn.execute(
        "SELECT status FROM runbook_runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    return row is not None and row["status"] == "aborted"


def _settle_waiting(
    ctx: EngineContext, run: dict[str, Any], row: dict[str, Any], step: Step
) -> StepResult | None:
    """The result of a step that was waiting or crashed, or None to run it (again)."""
    if row["status"] == "waiting_approval" and row["action_id"]:
        state = ctx.actuator.show(row["action_id"])
        status = str(state.get("status"))
        rerun_gate = bool(row["evidence"].get("rerun_gate"))
        if status in _STILL_WAITING:
            return StepResult("waiting_approval", row["outcome"], row["evidence"], row["action_id"])
        if status in _APPROVED:
            if rerun_gate:
                return None
            return StepResult(
                "done",
                str(state.get("message") or "approved and done"),
                {"action": state},
                row["action_id"],
            )
        if status == "skipped":  # the actuator's ownership check refused it when approved
            return StepResult(
                "refused",
                f"action {row['action_id']} refused at approval: {state.get('message', '')}",
                {"action": state},
                row["action_id"],
            )
        return StepResult(
            "failed",
            f"action {row['action_id']} {status}: {state.get('message', '')}",
            {"action": state},
            row["action_id"],
        )
    if row["status"] == "running" and not step.idempotent:
        if step.kind == "action" and row["action_id"]:
            state = ctx.actuator.show(row["action_id"])
            if state.get("status") == "done":
                return StepResult(
                    "done",
                    "done before the crash (actuator record)",
                    {"action": state},
                    row["action_id"],
                )
        return _rerun_gate(ctx, run, step)
    return None


def _rerun_gate(ctx: EngineContext, run: dict[str, Any], step: Step) -> StepResult:
    request = ActionRequest.make(
        "runbook_approval",
        run["node"],
        reason=(
            f"runbook {run['run_id']} {run['runbook']}: step {step.name} ({step.kind}) was "
            "interrupted and is not idempotent: run it again?"
        ),
        source=Source("runbook", run["run_id"]),
        requested_by=run["requested_by"],
        evidence=[evidence("runbook", "interrupted step", run_id=run["run_id"], step=step.name)],
        params={"runbook": run["runbook"], "step": step.name, "rerun": True},
    )
    [result] = ctx.actuator.submit([request], apply=True)
    if result.status.value == "done":
        return StepResult("running", "re-run approved by config level", {}, result.id)
    return StepResult(
        "waiting_approval",
        f"interrupted, not idempotent: approve a re-run with dcops actions approve {result.id}",
        {"rerun_gate": True, "action": result.to_dict()},
        result.id,
    )


def _execute(
    ctx: EngineContext, run: dict[str, Any], row: dict[str, Any], step: Step, values: dict[str, Any]
) -> StepResult:
    from dcops.store.db import utc_now

    attempts = int(row["attempts"])
    result = StepResult("failed", "not run")
    for _ in range(step.retries + 1):
        attempts += 1
        update_step(
            ctx.store,
            run["run_id"],
            row["seq"],
            status="running",
            attempts=attempts,
            started_at=utc_now(),
        )
        update_run(ctx.store, run["run_id"], current=step.name)
        result = run_step(ctx, run, step, values)
        if result.status != "failed":
            break
    return result


def _record(
    ctx: EngineContext, run: dict[str, Any], row: dict[str, Any], step: Step, result: StepResult
) -> None:
    from dcops.store.db import utc_now

    if result.status == "running":  # a re-run the config approved at once: run it now
        return
    if result.status == row["status"] and result.action_id == row["action_id"]:
        return  # still waiting (or blocked) as before: nothing new to record
    finished = utc_now() if result.status not in ("waiting_approval", "blocked") else None
    update_step(
        ctx.store,
        run["run_id"],
        row["seq"],
        status=result.status,
        outcome=result.outcome,
        evidence=result.evidence,
        action_id=result.action_id,
        finished_at=finished,
    )
    _audit(
        ctx,
        run,
        "runbook.step",
        result.status,
        {
            "step": step.name,
            "kind": step.kind,
            "outcome": result.outcome,
            "evidence": result.evidence,
        },
    )
    if ctx.on_change is not None:
        ctx.on_change()


def _fail(
    ctx: EngineContext,
    run: dict[str, Any],
    book: Runbook,
    failed: Step,
    result: StepResult,
    values: dict[str, Any],
) -> dict[str, Any]:
    run_id = run["run_id"]
    for row in run["steps"]:
        if row["phase"] != "rollback":
            continue
        step = book.step(row["name"])
        outcome = _execute(ctx, run, row, step, values)
        _record(ctx, run, row, step, outcome)
    run = get_run(ctx.store, run_id)
    why = f"step {failed.name} failed: {result.outcome}"
    if book.escalate_on_failure or failed.on_fail == "escalate":
        where = escalate(
            ctx, run, f"runbook {book.name} failed on {run['node']}", "default", reason=why
        )
        handed = hand_to_repair(ctx, run, where)
        update_run(
            ctx.store,
            run_id,
            status="escalated",
            current=failed.name,
            message=f"{why}; ticket {where}{handed}",
        )
        _audit(ctx, run, "runbook.run", "escalated", {"why": why, "ticket": where})
    else:
        update_run(ctx.store, run_id, status="failed", current=failed.name, message=why)
        _audit(ctx, run, "runbook.run", "failed", {"why": why})
    return get_run(ctx.store, run_id)


def abort(ctx: EngineContext, run_id: str, why: str = "aborted by an operator") -> dict[str, Any]:
    """Stop a run: pending approvals of it are denied; a finished run is left as it is."""
    run = get_run(ctx.store, run_id)
    if run["status"] in TERMINAL:
        raise InputError(f"run {run_id} is already {run['status']}")
    for row in run["steps"]:
        if row["status"] == "waiting_approval" and row["action_id"]:
            state = ctx.actuator.show(row["action_id"])
            if state.get("status") == "pending":
                ctx.actuator.deny(row["action_id"], ctx.requested_by, why)
        if row["status"] in ("pending", "waiting_approval", "running"):
            update_step(ctx.store, run_id, row["seq"], status="skipped", outcome=why)
    update_run(ctx.store, run_id, status="aborted", message=why)
    run = get_run(ctx.store, run_id)
    _audit(ctx, run, "runbook.run", "aborted", {"why": why})
    return run


def _audit(
    ctx: EngineContext, run: dict[str, Any], action: str, outcome: str, extra: dict[str, Any]
) -> None:
    ctx.audit.record(
        action,
        run["node"],
        outcome=outcome,
        evidence={"run_id": run["run_id"], "runbook": run["runbook"], **extra},
        actor=ctx.requested_by,
    )


def view(run: dict[str, Any]) -> dict[str, Any]:
    """A run as ``--json`` shows it."""
    return {
        "run_id": run["run_id"],
        "runbook": run["runbook"],
        "node": run["node"],
        "status": run["status"],
        "autonomy": run["autonomy"],
        "current": run["current"],
        "message": run["message"],
        "why": run["params"].get("why"),
        "created_at": run["created_at"],
        "finished_at": run["finished_at"],
        "steps": [
            {
                "name": s["name"],
                "kind": s["kind"],
                "phase": s["phase"],
                "status": s["status"],
                "outcome": s["outcome"],
                "attempts": s["attempts"],
                "action_id": s["action_id"],
            }
            for s in run["steps"]
            if s["phase"] != "rollback" or s["status"] != "pending"
        ],
    }

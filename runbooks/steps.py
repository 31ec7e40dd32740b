"""Each step kind, executed: command, check, action, wait_for, burnin, collect, escalate, approve.

Every kind returns a :class:`StepResult`; none raises for what the world does
(a command that fails, a node that does not answer): that is an outcome. An
action or an approval goes through the actuator; when it waits for an
operator the step is ``waiting_approval`` with the actuator's action id.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from dcops.actions import ActionRequest, Source, Status, evidence
from dcops.errors import CommandTimeout, DcopsError, RemoteError
from dcops.node_actions import dcops_reason
from runbooks.commands import COLLECT_ARGV
from runbooks.context import EngineContext
from runbooks.evidence import Bundle
from runbooks.model import Step, substitute
from runbooks.runs import destructive_in_rack


@dataclass
class StepResult:
    status: str  # done, failed, skipped, waiting_approval, blocked, recommended, refused
    outcome: str
    evidence: dict[str, Any] = field(default_factory=dict)
    action_id: str | None = None


def _tail(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


def bundle_of(ctx: EngineContext, run_id: str) -> Bundle:
    return Bundle(ctx.data_dir / "runbooks" / run_id / "evidence")


def run_step(
    ctx: EngineContext, run: dict[str, Any], step: Step, values: dict[str, Any]
) -> StepResult:
    spec = {k: substitute(v, values) for k, v in step.spec.items()}
    handler = _HANDLERS[step.kind]
    try:
        return handler(ctx, run, step, spec)
    except DcopsError as exc:  # dcops or a backend broke: an outcome, never evidence
        return StepResult("failed", f"error: {exc}", {"error": str(exc)})


def _command(
    ctx: EngineContext, run: dict[str, Any], step: Step, spec: dict[str, Any]
) -> StepResult:
    host = run["node"] if spec.get("host", "node") == "node" else ctx.management_host
    if host is None:
        return StepResult("failed", "no management host configured (runbooks.management_host)")
    argv = [str(a) for a in spec["argv"]]
    try:
        result = ctx.runner.run(host, argv, timeout_s=step.timeout_s)
    except CommandTimeout:
        return StepResult(
            "failed",
            f"{' '.join(argv)}: killed at its timeout ({step.timeout_s:g}s)",
            {"argv": argv, "host": host, "timeout_s": step.timeout_s},
        )
    except RemoteError as exc:
        return StepResult("failed", f"{' '.join(argv)}: {exc}", {"argv": argv, "host": host})
    ev = {
        "argv": argv,
        "host": host,
        "exit": result.returncode,
        "stdout": _tail(result.stdout),
        "stderr": _tail(result.stderr),
        "duration_s": result.duration_s,
    }
    expected = spec.get("expect_exit", [0])
    if result.returncode not in expected:
        return StepResult("failed", f"{' '.join(argv)} exited {result.returncode}", ev)
    pattern = spec.get("expect_stdout")
    if pattern and re.search(pattern, result.stdout) is None:
        return StepResult("failed", f"{' '.join(argv)}: output does not match {pattern!r}", ev)
    return StepResult("done", f"{' '.join(argv)} exited {result.returncode}", ev)


def _collect(
    ctx: EngineContext, run: dict[str, Any], step: Step, spec: dict[str, Any]
) -> StepResult:
    bundle = bundle_of(ctx, run["run_id"])
    entries, problems = [], []
    for item in spec["items"]:
        argv = COLLECT_ARGV[item]
        try:
            result = ctx.runner.run(run["node"], argv, timeout_s=step.timeout_s)
            text = result.stdout + (f"\n--- stderr ---\n{result.stderr}" if result.stderr else "")
            entries.append(bundle.add(step.name, item, argv, result.returncode, text))
        except RemoteError as exc:
            problems.append(f"{item}: {exc}")
            entries.append(bundle.add(step.name, item, argv, None, f"not collected: {exc}\n"))
    ev = {"bundle": str(bundle.root), "files": entries, "problems": problems}
    if problems and len(problems) == len(spec["items"]):
        return StepResult("failed", f"nothing collected: {'; '.join(problems)}", ev)
    return StepResult("done", f"{len(entries) - len(problems)} item(s) in {bundle.root}", ev)


def _check(ctx: EngineContext, run: dict[str, Any], step: Step, spec: dict[str, Any]) -> StepResult:
    if ctx.checker is None:
        return StepResult("failed", "error: no health checker available")
    v = ctx.checker.check(run["node"], list(spec["checks"]), timeout_s=step.timeout_s)
    ev = v.to_dict()
    if v.error:
        return StepResult("failed", f"error: the checks could not run: {v.error}", ev)
    return StepResult("done" if v.passed else "failed", v.summary, ev)


def _burnin(
    ctx: EngineContext, run: dict[str, Any], step: Step, spec: dict[str, Any]
) -> StepResult:
    if ctx.recertifier is None:
        return StepResult("failed", "error: no burn-in available to re-certify")
    v = ctx.recertifier.recertify(
        run["node"],
        timeout_s=step.timeout_s,
        rounds=spec.get("rounds"),
        duration_s=spec.get("duration_s"),
    )
    ev = v.to_dict()
    if v.error:
        return StepResult("failed", f"error: the burn-in could not run: {v.error}", ev)
    return StepResult("done" if v.passed else "failed", v.summary, ev)


def _condition(
    ctx: EngineContext, node: str, spec: dict[str, Any], timeout_s: float
) -> tuple[bool, str]:
    cond = spec["condition"]
    if cond == "reachable":
        try:
            ok = ctx.runner.run(node, ["true"], timeout_s=min(30.0, timeout_s)).ok
        except RemoteError as exc:
            return False, str(exc)
        return ok, "reachable" if ok else "`true` failed"
    if cond == "check_passes":
        if ctx.checker is None:
            return False, "no health checker"
        v = ctx.checker.check(node, list(spec.get("checks", [])), timeout_s=min(120.0, timeout_s))
        return v.passed and not v.error, v.error or v.summary
    if ctx.node_actions is None:
        return False, "no scheduler to ask"
    state = ctx.node_actions.states([node])[node]
    if cond == "idle" or spec.get("state") == "drained":
        return state.drained, f"{'/'.join(state.states)}"
    if spec.get("state") == "idle":
        return state.base == "IDLE", state.base
    return state.in_service, "/".join(state.states)


def _wait_for(
    ctx: EngineContext, run: dict[str, Any], step: Step, spec: dict[str, Any]
) -> StepResult:
    interval = float(spec.get("interval_s", 10.0))
    start = ctx.clock()
    polls = 0
    while True:
        polls += 1
        ok, why = _condition(ctx, run["node"], spec, step.timeout_s)
        waited = ctx.clock() - start
        ev = {
            "condition": spec["condition"],
            "polls": polls,
            "waited_s": round(waited, 3),
            "last": why,
        }
        if ok:
            return StepResult("done", f"{spec['condition']} after {waited:.0f}s", ev)
        if waited >= step.timeout_s:
            return StepResult(
                "failed", f"{spec['condition']}: not met in {step.timeout_s:g}s ({why})", ev
            )
        ctx.sleep(min(interval, max(0.0, step.timeout_s - waited)) or interval)


def _source(run: dict[str, Any]) -> Source:
    return Source("runbook", run["run_id"])


def _submit(ctx: EngineContext, run: dict[str, Any], request: ActionRequest) -> StepResult:
    if run["autonomy"] in ("observe", "recommend"):
        return StepResult(
            "recommended", f"recommended (run autonomy {run['autonomy']}): {request.kind}"
        )
    [result] = ctx.actuator.submit([request], apply=True)
    ev = {"action": result.to_dict()}
    status = result.status
    if status is Status.DONE:
        return StepResult("done", result.message or f"{request.kind} done", ev, result.id)
    if status is Status.PENDING:
        return StepResult(
            "waiting_approval",
            f"{request.kind} waits for approval: dcops actions approve {result.id}",
            ev,
            result.id,
        )
    if status is Status.SKIPPED:
        if request.kind == "drain" and "already out of service by dcops" in result.message:
            return StepResult("done", f"already drained by dcops: {result.message}", ev, result.id)
        if request.kind == "resume" and "nothing to return" in result.message:
            return StepResult("skipped", f"not resumed: {result.message}", ev, result.id)
        # ownership: the node is not dcops' (an operator's drain, a takeover): stop here
        return StepResult(
            "refused", f"{request.kind} refused (ownership): {result.message}", ev, result.id
        )
    if status in (Status.OBSERVED, Status.RECOMMENDED):
        return StepResult(
            "recommended", f"{request.kind} {status.value} (config level)", ev, result.id
        )
    return StepResult("failed", f"{request.kind} {status.value}: {result.message}", ev, result.id)


def _action(
    ctx: EngineContext, run: dict[str, Any], step: Step, spec: dict[str, Any]
) -> StepResult:
    kind = spec["action"]
    if step.destructive and run.get("rack"):
        others = destructive_in_rack(ctx.store, run["rack"], run["run_id"])
        if len(others) >= ctx.limits.max_per_rack:
            return StepResult(
                "blocked",
                f"rack {run['rack']}: {len(others)} run(s) past a destructive step "
                f"({', '.join(others)}; runbooks.max_per_rack = {ctx.limits.max_per_rack}); "
                "resume this run when they finish",
                {"blocked_by": others},
            )
    text = spec.get("reason") or f"{kind} by runbook {run['runbook']}"
    reason = dcops_reason(f"runbook {run['run_id']}: {text}")
    params: dict[str, Any] = {"runbook": run["runbook"], "step": step.name}
    held, refusal = ownership_now(ctx, run, step)
    if refusal is not None:
        return refusal
    if held is not None:
        params["owner_reason"] = held  # the actuator checks it again when an approval runs it
    if kind == "gpu_reset":
        gpu = gpu_index(spec.get("gpu", run["params"].get("values", {}).get("gpu")))
        if gpu is None:
            return StepResult(
                "refused",
                f"gpu_reset needs the GPU from the evidence or --param gpu=N, got "
                f"{spec.get('gpu')!r}; no GPU was reset",
                {"gpu": spec.get("gpu")},
            )
        params["gpu"] = gpu
    if kind == "service_restart":
        params["service"] = spec.get("service")
    if ctx.runner_spec is not None and kind not in ("drain", "resume"):
        params["runner"] = ctx.runner_spec
    why = run["params"].get("why")
    request = ActionRequest.make(
        kind,
        run["node"],
        reason=reason,
        source=_source(run),
        requested_by=run["requested_by"],
        evidence=[
            evidence("runbook", f"{run['runbook']}: {step.name}", run_id=run["run_id"], why=why)
        ],
        params=params,
    )
    return _submit(ctx, run, request)


def held_reason(run: dict[str, Any]) -> str | None:
    """The drain reason this run wrote (its done drain step), or None if it drained nothing."""
    for row in run["steps"]:
        if row.get("kind") != "action" or row.get("status") != "done":
            continue
        action = (row.get("evidence") or {}).get("action") or {}
        if action.get("kind") == "drain" and action.get("status") == "done":
            reason = action.get("reason")
            return str(reason) if reason else None
    return None


def ownership_now(
    ctx: EngineContext, run: dict[str, Any], step: Step
) -> tuple[str | None, StepResult | None]:
    """Re-read the scheduler right before an acting step: (the reason this run holds, refusal).

    A node this run drained must still carry the run's drain reason; a node it
    did not drain must not be drained by someone else. Otherwise the step is
    refused (an operator took it over) and nothing is asked of the actuator.
    """
    from runbooks.runs import get_run

    if ctx.node_actions is None or run["autonomy"] in ("observe", "recommend"):
        return None, None
    node = run["node"]
    held = held_reason(get_run(ctx.store, run["run_id"]))
    try:
        state = ctx.node_actions.states([node]).get(node)
    except DcopsError as exc:  # the scheduler failed: no evidence either way, wait
        return held, StepResult(
            "blocked",
            f"scheduler not readable before {step.name} ({exc}); resume the run later",
            {"error": str(exc)},
        )
    if state is None:
        return held, StepResult("refused", f"{node} is not known to the scheduler", {})
    ev = {"owner_check": state.to_dict(), "held_reason": held}
    if held is not None and (not state.drain or state.reason != held):
        now = state.reason if state.drain else f"in service ({state.base})"
        return held, StepResult(
            "refused",
            f"ownership changed: this run drained {node} ({held!r}), it is now "
            f"{now or 'drained with no reason'}; step {step.name} refused, node left to its owner",
            ev,
        )
    if held is None and state.drain and not state.by_dcops:
        return held, StepResult(
            "refused",
            f"{node} is out of service by someone else ({state.reason or 'no reason'}); "
            f"step {step.name} refused, node left to its owner",
            ev,
        )
    return held, None


def hand_to_repair(ctx: EngineContext, run: dict[str, Any], ticket: str) -> str:
    """After an escalation, hand the node this run holds drained to ``repair``: the same
    drain with a ``dcops: repair: ...`` reason (a ``handover`` through the actuator, which
    checks the run still holds it). No sweep or burn-in returns it then; capacity counts it
    out with owner ``repair``. Returns a note for the run's message ('' when not held)."""
    from runbooks.runs import get_run

    held = held_reason(get_run(ctx.store, run["run_id"]))
    if held is None or run["autonomy"] in ("observe", "recommend"):
        return ""
    name = ticket.rsplit("/", 1)[-1]
    request = ActionRequest.make(
        "handover",
        run["node"],
        reason=dcops_reason(f"repair: {name} (runbook {run['run_id']} {run['runbook']} escalated)"),
        source=_source(run),
        requested_by=run["requested_by"],
        evidence=[evidence("runbook", "escalated: handed to repair", run_id=run["run_id"])],
        params={"owner_reason": held, "runbook": run["runbook"]},
    )
    [result] = ctx.actuator.submit([request], apply=True)
    if result.status is Status.DONE:
        return f"; handed to repair ({request.reason})"
    return f"; not handed to repair: {result.status.value} {result.message}"


def gpu_index(value: Any) -> int | None:
    """A GPU index (an int or its digits), or None for anything else (unset, a placeholder)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _approve(
    ctx: EngineContext, run: dict[str, Any], step: Step, spec: dict[str, Any]
) -> StepResult:
    prompt = spec.get("prompt", step.name)
    request = ActionRequest.make(
        "runbook_approval",
        run["node"],
        reason=f"runbook {run['run_id']} {run['runbook']}: {prompt}",
        source=_source(run),
        requested_by=run["requested_by"],
        evidence=[evidence("runbook", prompt, run_id=run["run_id"], step=step.name)],
        params={"runbook": run["runbook"], "step": step.name},
    )
    return _submit(ctx, run, request)


def _escalate(
    ctx: EngineContext, run: dict[str, Any], step: Step, spec: dict[str, Any]
) -> StepResult:
    title = spec.get("title") or f"runbook {run['runbook']} on {run['node']}"
    where = escalate(ctx, run, title, spec.get("to", "default"), reason="escalate step")
    return StepResult("done", f"ticket sent to {where}", {"ticket": where})


def escalate(ctx: EngineContext, run: dict[str, Any], title: str, to: str, *, reason: str) -> str:
    """Send a ticket for ``run`` (its steps and evidence bundle) to the configured sink."""
    from dcops.store.db import utc_now

    bundle = bundle_of(ctx, run["run_id"])
    ticket = {
        "id": f"ticket-{run['run_id']}-{secrets.token_hex(3)}",
        "created_at": utc_now(),
        "to": to,
        "title": title,
        "reason": reason,
        "run_id": run["run_id"],
        "runbook": run["runbook"],
        "node": run["node"],
        "why": run["params"].get("why"),
        "steps": [
            {k: s.get(k) for k in ("name", "kind", "status", "outcome")}
            for s in run.get("steps", [])
        ],
        "evidence_bundle": str(bundle.root),
        "evidence": bundle.manifest(),
    }
    return ctx.sink.send(ticket)


_HANDLERS = {
    "command": _command,
    "collect": _collect,
    "check": _check,
    "burnin": _burnin,
    "wait_for": _wait_for,
    "action": _action,
    "approve": _approve,
    "escalate": _escalate,
}

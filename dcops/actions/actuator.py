"""The actuator: every change dcops makes to the fleet passes :meth:`Actuator.submit`.

Policy, in order, each step recorded in the result's ``steps``:

1. ownership (:mod:`dcops.actions.ownership`), re-read from the scheduler now;
2. autonomy level (:class:`~dcops.actions.settings.ActionSettings`): observe
   (stored, nothing done), recommend (shown), approve (queued for ``dcops
   actions approve``), act;
3. the circuit breaker (:mod:`dcops.actions.breaker`): shares, cap per run,
   rate per node, operator-override cooldown;
4. dry-run (without ``apply``: the exact backend call, nothing stored);
5. execute: intent stored and audited (``started``, with evidence) before the
   backend call, outcome after; the call has a timeout and a failure is an
   outcome; a lock per node keeps two runs from acting on one node at once;
6. the outcome in the audit log and the ``actions`` table, with its undo kind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dcops.actions import approvals, breaker, kinds, records
from dcops.actions.kinds import ActionKind, ExecContext
from dcops.actions.lock import TargetLock
from dcops.actions.ownership import check_node, explain, origin
from dcops.actions.request import ActionRequest, ActionResult, Level, Status, Step
from dcops.actions.settings import ActionSettings
from dcops.errors import BusyError, DcopsError
from dcops.hostlist import compress
from dcops.node_actions.base import NodeActions, SchedulerNodeState
from dcops.store import AuditLog

_TAKE_OUT = ("drain", "cordon")


class Actuator:
    """The one place that acts on the fleet. See :mod:`dcops.actions`."""

    def __init__(
        self,
        audit: AuditLog,
        *,
        node_actions: NodeActions | None,
        settings: ActionSettings | None = None,
        topology: breaker.Topology | None = None,
        lock_dir: Path | str | None = None,
        context: ExecContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.audit = audit
        self.store = audit.store
        self.node_actions = node_actions
        self.settings = settings or ActionSettings()
        self.topology = topology
        self.lock_dir = Path(lock_dir) if lock_dir is not None else None
        self.context = context or ExecContext(node_actions=node_actions)
        if self.context.node_actions is None and node_actions is not None:
            self.context = ExecContext(node_actions, self.context.runner, self.context.options)
        self.clock = clock
        self.reconciled: list[dict[str, Any]] | None = None
        self._last_states: dict[str, SchedulerNodeState] | None = None
        self._scheduler_error = "the scheduler could not be read"
        self._apply = True

    @property
    def backend(self) -> str | None:
        return getattr(self.node_actions, "name", None)

    # --- stored actions (dcops.actions.approvals) -----------------------------------------

    def approve(self, action_id: str, approver: str) -> ActionResult:
        return approvals.approve(self, action_id, approver)

    def deny(self, action_id: str, approver: str, reason: str) -> ActionResult:
        return approvals.deny(self, action_id, approver, reason)

    def undo(self, action_id: str, requested_by: str, *, apply: bool = True) -> ActionResult:
        return approvals.undo(self, action_id, requested_by, apply=apply)

    def reconcile(self) -> list[dict[str, Any]]:
        return approvals.reconcile(self)

    def expire(self) -> list[str]:
        return approvals.expire(self)

    def list_actions(self, *, pending: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        return approvals.list_actions(self, pending=pending, limit=limit)

    def show(self, action_id: str) -> dict[str, Any]:
        return approvals.show(self, action_id)

    # --- the policy ----------------------------------------------------------------------

    def submit(
        self, requests: Sequence[ActionRequest], *, apply: bool, force: bool = False
    ) -> list[ActionResult]:
        """Pass ``requests`` (one batch: one run's actions) through the policy."""
        self._apply = apply
        if apply:
            self.reconcile()
        specs = [kinds.get(r.kind) for r in requests]  # unknown kinds: InputError, nothing done
        states = self._states([n for r in requests for n in r.targets])
        self._last_states = states
        results: list[ActionResult] = []
        for request, spec in zip(requests, specs, strict=True):
            level = self.settings.level_for(request.kind, request.source.kind, spec.default_level)
            results.append(ActionResult(request, Status.DRY_RUN, level))
        live: list[tuple[ActionResult, ActionKind, list[str]]] = []
        for result, spec in zip(results, specs, strict=True):
            targets = self._ownership(result, spec, states)
            if not targets and apply and result.skipped and not (spec.takes_out or spec.returns):
                self._audit(result, outcome="skipped")  # an acting kind refused: on the record
            if targets and self._level(result, spec, targets, apply):
                live.append((result, spec, targets))
        live = self._breaker(live, apply=apply, force=force)
        for result, spec, targets in live:
            result.call = kinds.create(spec.name, self.context).plan(result.request, targets)
            if not apply:
                result.status = Status.DRY_RUN
                result.steps.append(Step("dry-run", "dry-run", " ".join(result.call)))
                result.done_targets = tuple(targets)
                continue
            self._execute(result, spec, targets)
        return results

    def _states(self, nodes: Sequence[str]) -> dict[str, SchedulerNodeState] | None:
        if self.node_actions is None or not nodes:
            return None
        try:
            every = self.node_actions.states()
        except DcopsError as exc:
            self._scheduler_error = str(exc)
            return {}
        return dict(every)

    def _ownership(
        self,
        result: ActionResult,
        spec: ActionKind,
        states: dict[str, SchedulerNodeState] | None,
        *,
        undo_reason: str | None = None,
    ) -> list[str]:
        request = result.request
        if states is None and request.params.get("owner_reason") and request.undo_of is None:
            result.status = Status.SKIPPED  # held by a reason nobody can check here: never blind
            result.message = "the request holds the node by its drain reason; no scheduler to check"
            result.skipped = {n: result.message for n in request.targets}
            result.steps.append(Step("ownership", "skip", result.message))
            return []
        if states is None:
            result.steps.append(Step("ownership", "unchecked", "no scheduler to read"))
            return list(request.targets)
        if not states and request.targets and not self._apply:
            why = f"scheduler not readable ({self._scheduler_error}); dry-run only"
            result.steps.append(Step("ownership", "unchecked", why))
            return list(request.targets)
        if not states and request.targets:
            why = self._scheduler_error
            result.status = Status.SKIPPED
            result.message = f"scheduler not readable, nothing changed: {why}"
            result.steps.append(Step("ownership", "skip", result.message))
            return []
        allowed: list[str] = []
        for node in request.targets:
            state = states.get(node)
            row = records.last_take_out(self.store, node, _TAKE_OUT) if spec.returns else None
            left_alone = check_node(
                request, spec, node, state, origin=origin(row, state), undo_reason=undo_reason
            )
            if left_alone is None:
                allowed.append(node)
            else:
                result.skipped[node] = left_alone
        if result.skipped:
            result.steps.append(Step("ownership", "skip", explain(result.skipped)))
        if not allowed:
            result.status = Status.SKIPPED
            result.message = explain(result.skipped)
        else:
            result.steps.append(Step("ownership", "ok", compress(allowed)))
        return allowed

    def _level(
        self, result: ActionResult, spec: ActionKind, targets: list[str], apply: bool
    ) -> bool:
        """The autonomy step; True when the action goes on to the breaker."""
        level = result.level
        result.steps.append(Step("level", level.value, f"{result.request.source.kind}:{spec.name}"))
        if not apply or level is Level.ACT:
            return True
        result.done_targets = tuple(targets)
        result.call = kinds.create(spec.name, self.context).plan(result.request, targets)
        if level is Level.RECOMMEND:
            result.status = Status.RECOMMENDED
            result.message = "recommended (level recommend): " + " ".join(result.call)
            return False
        if level is Level.OBSERVE:
            result.status = Status.OBSERVED
            result.message = "recorded only (level observe)"
            self._store(result, spec)
            self._audit(result, outcome="observed")
            return False
        result.status = Status.PENDING
        ttl = self.settings.approval_ttl_s
        result.message = f"waiting for an approval (dcops actions approve), expires in {ttl:.0f}s"
        self._store(result, spec, expires_at=records.expiry(self.clock(), ttl))
        self._audit(result, outcome="pending")
        return False

    def _breaker(
        self,
        live: list[tuple[ActionResult, ActionKind, list[str]]],
        *,
        apply: bool,
        force: bool,
    ) -> list[tuple[ActionResult, ActionKind, list[str]]]:
        if not live:
            return live
        now = self.clock()
        s = self.settings
        nodes = sorted({n for _, _, t in live for n in t})
        history = self._history(nodes, now, self._last_states or {})
        per_node = {} if force else breaker.node_limits(nodes, history, s, now)
        kept: list[tuple[ActionResult, ActionKind, list[str]]] = []
        for result, spec, targets in live:
            if not spec.rate_limited:
                result.steps.append(Step("breaker", "ok", "not rate-limited (changes no service)"))
                kept.append((result, spec, targets))
                continue
            left = [n for n in targets if n not in per_node]
            for n in targets:
                if n in per_node:
                    result.skipped[n] = per_node[n]
            if not left:
                self._refuse(
                    result, spec, targets, explain({n: per_node[n] for n in targets}), apply
                )
                continue
            kept.append((result, spec, left))
        batch = [n for _, spec, t in kept if spec.takes_out for n in t]
        since = records.iso_at(now - s.breaker_window_s)
        recent = [] if force else records.recent_take_outs(self.store, _TAKE_OUT, since=since)
        tripped = None if force else breaker.shares(batch, recent, self._topology(), s)
        out: list[tuple[ActionResult, ActionKind, list[str]]] = []
        for result, spec, targets in kept:
            if tripped and spec.takes_out:
                self._refuse(result, spec, targets, tripped, apply)
                continue
            verdict = "forced" if force else "ok"
            result.steps.append(Step("breaker", verdict, ""))
            out.append((result, spec, targets))
        return out

    def _refuse(
        self, result: ActionResult, spec: ActionKind, targets: list[str], why: str, apply: bool
    ) -> None:
        result.status = Status.REFUSED
        result.message = why
        result.done_targets = tuple(targets)
        result.steps.append(Step("breaker", "refuse", why))
        if apply:
            if result.id is None:
                self._store(result, spec)
            else:  # an approved, stored action the breaker now refuses
                records.update(
                    self.store,
                    result.id,
                    status=result.status,
                    message=result.message,
                    steps=[s.to_dict() for s in result.steps],
                )
            self._audit(result, outcome="refused")

    def _history(
        self, nodes: Sequence[str], now: float, states: dict[str, SchedulerNodeState]
    ) -> dict[str, breaker.NodeHistory]:
        s = self.settings
        window = max(s.node_window_s, s.override_cooldown_s)
        rows = records.node_history(self.store, nodes, since=records.iso_at(now - window))
        out: dict[str, breaker.NodeHistory] = {}
        for node, done in rows.items():
            count = sum(
                1
                for r in done
                if (records.to_s(r["executed_at"]) or 0) >= now - s.node_window_s
                and _rate_limited(r["kind"])
            )
            overridden = None
            takes = [r for r in done if r["kind"] in _TAKE_OUT]
            last = takes[-1] if takes else None
            state = states.get(node)
            if (
                last is not None
                and last["status"] == "done"
                and last["source"] != "operator"
                and state is not None
                and not state.drain
            ):
                overridden = records.to_s(last["executed_at"])
            out[node] = breaker.NodeHistory(count, overridden)
        return out

    def _topology(self) -> breaker.Topology:
        if self.topology is not None:
            return self.topology
        fleet = list(self.node_actions.states()) if self.node_actions is not None else []
        return breaker.Topology(fleet=fleet, rack_of=lambda _n: None)

    # --- execution -----------------------------------------------------------------------

    def _execute(self, result: ActionResult, spec: ActionKind, targets: list[str]) -> None:
        lock = TargetLock(self.lock_dir, "act", targets) if self.lock_dir is not None else None
        try:
            if lock is not None:
                lock.acquire()
        except BusyError as exc:
            result.status = Status.SKIPPED
            result.message = str(exc)
            result.steps.append(Step("execute", "skip", str(exc)))
            return
        try:
            self._execute_locked(result, spec, targets)
        finally:
            if lock is not None:
                lock.release()

    def _execute_locked(self, result: ActionResult, spec: ActionKind, targets: list[str]) -> None:
        result.done_targets = tuple(targets)
        result.status = Status.STARTED
        if result.id is None:
            self._store(result, spec)
        else:
            records.set_targets(self.store, result.id, targets)
            records.update(self.store, result.id, status=Status.STARTED, call=result.call)
        self._audit(result, outcome="started")
        executor = kinds.create(spec.name, self.context)
        outcome = _call(lambda: executor.run(result.request, targets), self.settings.timeout_s)
        executed = records.iso_at(self.clock())
        if outcome.timed_out:
            result.status = Status.FAILED
            result.message = (
                f"no answer within {self.settings.timeout_s:.0f}s; left as an intent that the "
                "next run reconciles against the scheduler"
            )
            result.steps.append(Step("execute", "timeout", result.message))
            self._audit(result, outcome="timeout")
            return
        if outcome.error is not None:
            result.status = Status.FAILED
            result.message = outcome.error
        else:
            result.status = Status.DONE
            result.message = outcome.message
        result.steps.append(Step("execute", result.status.value, result.message))
        assert result.id is not None
        records.update(
            self.store,
            result.id,
            status=result.status,
            message=result.message,
            steps=[s.to_dict() for s in result.steps],
            executed_at=executed,
        )
        self._audit(result, outcome="ok" if result.ok else "failed")

    def _store(
        self, result: ActionResult, spec: ActionKind, *, expires_at: str | None = None
    ) -> None:
        records.insert(
            self.store, result, backend=self.backend, undo_kind=spec.undo, expires_at=expires_at
        )

    def _audit(self, result: ActionResult, *, outcome: str, actor: str | None = None) -> None:
        r = result.request
        self.audit.record(
            r.kind,
            compress(list(result.done_targets or r.targets)),
            outcome=outcome,
            evidence={
                "action_id": result.id,
                "source": str(r.source),
                "run_id": r.source.run_id,
                "requested_by": r.requested_by,
                "reason": r.reason,
                "level": result.level.value,
                "evidence": [dict(e) for e in r.evidence],
                "call": result.call,
                "message": result.message,
                "undo_of": r.undo_of,
            },
            actor=actor,
        )


def _rate_limited(kind: str) -> bool:
    try:
        return kinds.get(kind).rate_limited
    except DcopsError:  # a kind no longer registered: count it, as before
        return True


class _Outcome:
    def __init__(self) -> None:
        self.message = ""
        self.error: str | None = None
        self.timed_out = False


def _call(fn: Callable[[], str], timeout_s: float) -> _Outcome:
    """Run ``fn`` with a timeout; errors of dcops or the backend become the outcome."""
    out = _Outcome()

    def target() -> None:
        try:
            out.message = fn()
        except DcopsError as exc:
            out.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a backend bug is still an outcome, never a crash mid-act
            out.error = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=target, name="dcops-action", daemon=True)
    thread.start()
    thread.join(timeout_s if timeout_s > 0 else None)
    out.timed_out = thread.is_alive()
    return out

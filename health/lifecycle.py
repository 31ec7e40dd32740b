"""The node lifecycle of health sweeps, as one pure function.

::

    ok --fail--> suspect --fail--> drained --clean--> repair --clean x N--> ok
     \\__fatal______________________^   ^____fail________/

* A first failure of a non-fatal check makes a node *suspect*; the
  ``drain_after_failures``-th consecutive one (default 2) drains it; a fatal
  finding (XID 79, uncorrectable ECC, a missing GPU) drains it at once.
* A drained node that sweeps clean is in *repair*; after
  ``resume_after_passes`` consecutive clean sweeps (default 2) it is resumed,
  but only when its scheduler drain reason carries the dcops prefix. A failure
  in repair sends it back to *drained*.
* A node drained by an operator (any other reason) is never drained again
  (its reason would be overwritten) nor resumed: dcops only tracks it.
* A sweep that could not tell (unreachable, timed out, a check errored) changes
  no state and breaks a clean streak.
* A warning is not a failure: it is reported, and counts as clean.

:func:`transition` takes the stored record, what this sweep observed and what
the scheduler says, and returns the new record and the actions to take. It does
no I/O; :mod:`health.sweep` applies the actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from dcops.node_actions import dcops_reason
from health.base import CheckResult, CheckStatus

#: Longest drain reason written to the scheduler (Slurm keeps more; people read less).
MAX_REASON_CHARS = 200


class NodeState(StrEnum):
    """Lifecycle states, as stored in the ``node_state`` table."""

    OK = "ok"
    SUSPECT = "suspect"
    DRAINED = "drained"
    REPAIR = "repair"


class Outcome(StrEnum):
    """What one sweep found on one node, folded over its findings."""

    CLEAN = "clean"  # every check ok (or warn)
    FAIL = "fail"  # a non-fatal check failed
    FATAL = "fatal"  # a fatal finding: drain now
    ERROR = "error"  # could not tell (unreachable, timeout, a check errored)


class SchedulerView(StrEnum):
    """How the scheduler holds the node, as far as the lifecycle cares."""

    IN_SERVICE = "in-service"  # not drained (may be down: the scheduler's own business)
    DCOPS_DRAIN = "dcops-drain"  # drained with a dcops: reason
    ADMIN_DRAIN = "admin-drain"  # drained with any other reason: hands off
    UNKNOWN = "unknown"  # no scheduler, or the node is not in it


@dataclass(frozen=True)
class LifecyclePolicy:
    drain_after_failures: int = 2
    resume_after_passes: int = 2

    def __post_init__(self) -> None:
        if self.drain_after_failures < 1 or self.resume_after_passes < 1:
            raise ValueError("drain_after_failures and resume_after_passes must be >= 1")


@dataclass(frozen=True)
class NodeRecord:
    """One row of ``node_state``, minus timestamps."""

    node: str
    state: NodeState = NodeState.OK
    consecutive_failures: int = 0
    consecutive_passes: int = 0
    drained_by_dcops: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Action:
    """A change to make in the scheduler, with its evidence."""

    kind: str  # "drain" or "resume"
    node: str
    reason: str = ""
    evidence: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def fold(findings: Sequence[CheckResult], *, unreachable: bool = False) -> Outcome:
    """A node's outcome: fatal > fail > error > clean (a known failure beats not knowing)."""
    if unreachable:
        return Outcome.ERROR
    failed = [f for f in findings if f.status is CheckStatus.FAIL]
    if any(f.fatal for f in failed):
        return Outcome.FATAL
    if failed:
        return Outcome.FAIL
    if any(f.status is CheckStatus.ERROR for f in findings) or not findings:
        return Outcome.ERROR
    return Outcome.CLEAN


def drain_reason(findings: Sequence[CheckResult]) -> str:
    """``dcops: <check>: <evidence>`` from the worst finding (fatal first), one line."""
    failed = [f for f in findings if f.status is CheckStatus.FAIL]
    if not failed:
        return dcops_reason("health sweep")
    worst = sorted(failed, key=lambda f: (not f.fatal, f.check))[0]
    gpu = f" gpu{worst.gpu}" if worst.gpu is not None else ""
    detail = worst.message or f"{worst.metric}={worst.value} (threshold {worst.threshold})"
    more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
    return dcops_reason(f"{worst.check}:{gpu} {detail}{more}")[:MAX_REASON_CHARS]


def _evidence(findings: Sequence[CheckResult]) -> tuple[dict[str, Any], ...]:
    skip = (CheckStatus.OK, CheckStatus.SKIP)
    return tuple(f.to_dict() for f in findings if f.status not in skip)


def _adopt(record: NodeRecord, view: SchedulerView) -> NodeRecord:
    """Reconcile the stored record with the scheduler before judging this sweep."""
    drained = record.state in (NodeState.DRAINED, NodeState.REPAIR)
    if view is SchedulerView.DCOPS_DRAIN and not drained:
        # drained by dcops elsewhere (burn-in, another sweep host, a lost store)
        return replace(record, state=NodeState.DRAINED, drained_by_dcops=True, consecutive_passes=0)
    if view is SchedulerView.IN_SERVICE and drained:
        # an operator put it back by hand: start afresh
        return NodeRecord(node=record.node)
    if view is SchedulerView.ADMIN_DRAIN and record.drained_by_dcops:
        return replace(record, drained_by_dcops=False)  # the operator owns it now
    return record


def transition(
    record: NodeRecord,
    outcome: Outcome,
    findings: Sequence[CheckResult],
    view: SchedulerView,
    policy: LifecyclePolicy,
) -> tuple[NodeRecord, list[Action]]:
    """The node's next record and the actions to take (pure)."""
    rec = _adopt(record, view)
    hands_off = view is SchedulerView.ADMIN_DRAIN
    if outcome is Outcome.ERROR:
        return replace(rec, consecutive_passes=0), []

    if outcome is Outcome.CLEAN:
        passes = rec.consecutive_passes + 1
        if rec.state in (NodeState.OK, NodeState.SUSPECT):
            return replace(
                rec, state=NodeState.OK, consecutive_failures=0, consecutive_passes=passes
            ), []
        # drained or repair: count clean sweeps towards a resume, which needs the scheduler
        # to show dcops' own drain right now (an unknown view never resumes anything)
        own_drain = view is SchedulerView.DCOPS_DRAIN and rec.drained_by_dcops
        if passes < policy.resume_after_passes or hands_off or not own_drain:
            return replace(
                rec, state=NodeState.REPAIR, consecutive_failures=0, consecutive_passes=passes
            ), []
        resumed = NodeRecord(node=rec.node, consecutive_passes=passes)
        evidence = ({"consecutive_passes": passes, "previous_reason": rec.reason},)
        return resumed, [Action("resume", rec.node, rec.reason, evidence)]

    # FAIL or FATAL
    failures = rec.consecutive_failures + 1
    failing = replace(rec, consecutive_failures=failures, consecutive_passes=0)
    if rec.state in (NodeState.DRAINED, NodeState.REPAIR):
        return replace(failing, state=NodeState.DRAINED), []
    if outcome is Outcome.FAIL and failures < policy.drain_after_failures:
        return replace(failing, state=NodeState.SUSPECT), []
    if hands_off:
        # already out of service by an operator: track, never overwrite their reason
        return replace(failing, state=NodeState.DRAINED, drained_by_dcops=False), []
    reason = drain_reason(findings)
    drained = replace(failing, state=NodeState.DRAINED, drained_by_dcops=True, reason=reason)
    return drained, [Action("drain", rec.node, reason, _evidence(findings))]


def held_back(after: NodeRecord) -> NodeRecord:
    """The record to keep when a planned drain did not happen (refused or failed).

    The node is still in service: it stays suspect with its failure count, so
    the next failing sweep tries again.
    """
    return replace(after, state=NodeState.SUSPECT, drained_by_dcops=False, reason="")


def resume_failed(before: NodeRecord, after: NodeRecord) -> NodeRecord:
    """The record to keep when a planned resume failed: still in repair, streak kept."""
    return replace(after, state=NodeState.REPAIR, drained_by_dcops=True, reason=before.reason)

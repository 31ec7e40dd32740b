"""The health sweep as one library call: collect, judge the lifecycle, act, store, audit.

::

    ports = SweepPorts(runner=SshRunner(settings), site=site, actions=create("slurm-cli"),
                       store=store, audit=AuditLog(store, actor="cron:sweep"))
    report = run_sweep(ports, site.select("gb200-r01-t[01-18]"), SweepOptions(apply=True))
    report["status"]                 # "ok" or "unhealthy"; the CLI picks the exit code

Order of work (the cross-cutting parts live here, the deciding parts are pure):

1. findings: :mod:`health.sweep_collect` (agentless checks, or dcops on
   the node), bounded by concurrency, per-node timeout and a total deadline;
2. the scheduler's view (``NodeActions.states``) and each node's stored
   lifecycle record, then :func:`health.lifecycle.transition` per node;
3. the planned drains (reason ``dcops: <check>: <evidence>``) and resumes go,
   as one batch, to the actuator (:mod:`dcops.actions`): ownership re-read
   from the scheduler (a drain an operator took over is left alone; a burn-in
   drain is never resumed by a sweep), autonomy level, the one circuit
   breaker, intent and outcome audited with the evidence. Without ``apply``
   nothing changes: actions are reported as ``dry-run`` with the backend call;
5. the consistency report (scheduler vs. findings), the run and its results in
   the store, and with ``apply`` the new ``node_state`` rows.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dcops.actions import (
    ActionRequest,
    ActionResult,
    ActionSettings,
    Actuator,
    Source,
    Status,
    origin_of_reason,
    topology_of,
)
from dcops.errors import DcopsError, ExitCode, SchedulerError
from dcops.hostlist import compress
from dcops.inventory import Site
from dcops.node_actions import NodeActions, SchedulerNodeState
from dcops.ports import RemoteRunner
from dcops.skus import cpu_only
from dcops.store import AuditLog, Store, utc_now
from dcops.store.runs import new_run_id
from health.base import Check, NodeFacts
from health.lifecycle import (
    Action,
    LifecyclePolicy,
    NodeRecord,
    NodeState,
    Outcome,
    SchedulerView,
    fold,
    held_back,
    resume_failed,
    transition,
)
from health.sweep_collect import NodeFindings, OnNode, collect, collect_remote_dcops
from health.sweep_store import load_records, save_run

#: Per-node statuses of a sweep report, best first: a node's status is its worst check.
#: ``warn`` is a healthy node with a warning (throttling, slow links): it stays in service.
STATUSES = ("ok", "warn", "suspect", "fail", "error")
#: Statuses of a node that stays in (or may return to) service.
HEALTHY = ("ok", "warn")


@dataclass(frozen=True)
class SweepOptions:
    concurrency: int = 64
    timeout_s: float = 60.0  # per node, all its commands
    deadline_s: float | None = None  # the whole collection
    apply: bool = False
    lifecycle: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    action_settings: ActionSettings = field(default_factory=ActionSettings)  # levels, breaker
    remote_dcops: str | None = None  # run `<this> sweep --local --json` on the nodes instead
    mode: str = "ssh"  # ssh, local, sim: for the report
    thresholds: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.timeout_s <= 0 or (self.deadline_s is not None and self.deadline_s <= 0):
            raise ValueError("timeout and deadline must be > 0")


@dataclass
class SweepPorts:
    """Everything with a side effect, injected (so tests run the whole sweep in-process)."""

    runner: RemoteRunner
    site: Site
    checks: Sequence[Check]
    store: Store
    audit: AuditLog
    actions: NodeActions | None = None  # the scheduler, read for the consistency report
    clock: Callable[[], float] = time.time
    actuator: Actuator | None = None  # default: one over ``actions``, ``options.action_settings``


# --- pure helpers ------------------------------------------------------------------------------


def scheduler_view(state: SchedulerNodeState | None) -> SchedulerView:
    if state is None:
        return SchedulerView.UNKNOWN
    if state.drain:
        return SchedulerView.DCOPS_DRAIN if state.by_dcops else SchedulerView.ADMIN_DRAIN
    return SchedulerView.IN_SERVICE


def node_status(outcome: Outcome, new: NodeRecord, warned: bool = False) -> str:
    """The report's per-node status: ok, warn, suspect, fail or error (worst check wins)."""
    if outcome is Outcome.ERROR:
        return "error"
    if outcome is Outcome.CLEAN:
        return "warn" if warned else "ok"
    return "suspect" if new.state is NodeState.SUSPECT else "fail"


def consistency(
    nodes: Sequence[Mapping[str, Any]],
    scheduler: Mapping[str, SchedulerNodeState] | None,
    actions: Sequence[Mapping[str, Any]],
) -> list[dict[str, str]]:
    """Where the scheduler's view and the sweep's findings disagree (pure)."""
    if scheduler is None:
        return []
    done = {(a["action"], a["node"]) for a in actions if a["outcome"] == "ok"}
    out: list[dict[str, str]] = []

    def note(node: str, kind: str, message: str) -> None:
        out.append({"node": node, "kind": kind, "message": message})

    for entry in nodes:
        name, status = entry["node"], entry["status"]
        state = scheduler.get(name)
        if state is None:
            note(name, "not-in-scheduler", "the scheduler does not know this node")
            continue
        burnin_drain = state.drain and origin_of_reason(state.reason) == "burnin"
        if burnin_drain and status in HEALTHY and ("resume", name) not in done:
            note(
                name,
                "burnin-drained-but-healthy",
                f"drained by burn-in ({state.reason}): a sweep cannot see what burn-in "
                "found; only a passing `dcops burnin run --recheck --apply` returns it",
            )
        elif state.drain and state.by_dcops and status in HEALTHY and ("resume", name) not in done:
            note(
                name,
                "dcops-drained-but-healthy",
                f"drained by dcops ({state.reason}) but healthy: "
                f"{entry['consecutive_passes']} clean sweep(s) so far",
            )
        elif state.drain and not state.by_dcops and status in HEALTHY:
            note(name, "admin-drained-but-healthy", f"drained by an operator ({state.reason})")
        elif state.in_service and status in ("suspect", "fail") and ("drain", name) not in done:
            note(
                name,
                "failing-not-drained",
                f"{status} this sweep but still in service (not drained"
                + ("" if status == "fail" else " yet")
                + ")",
            )
        if state.down and status in HEALTHY:
            note(name, "down-but-healthy", f"{state.base} in the scheduler but healthy")
        if entry["previous_state"] in ("drained", "repair") and not state.drain:
            note(name, "resumed-outside-dcops", "recorded as drained, in service in the scheduler")
    return out


# --- the sweep ---------------------------------------------------------------------------------


def node_facts(
    site: Site,
    nodes: Sequence[str],
    since: Mapping[str, float | None],
    thresholds: Mapping[str, Any],
) -> dict[str, NodeFacts]:
    out: dict[str, NodeFacts] = {}
    for node in nodes:
        info = site.node(node)
        out[node] = NodeFacts(
            node=node,
            sku=info.sku,
            expected_gpus=info.gpus_per_node,
            since_s=since.get(node),
            thresholds=dict(thresholds),
            nvidia_gpus=not cpu_only(info.sku),
        )
    return out


def _iso_to_s(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def run_sweep(
    ports: SweepPorts,
    nodes: Sequence[str],
    options: SweepOptions,
    *,
    on_node: OnNode | None = None,
) -> dict[str, Any]:
    """Sweep ``nodes``; returns the report (plain data, see the module docstring)."""
    run_id = new_run_id("sw")
    started_s = ports.clock()
    started = utc_now()
    t0 = time.monotonic()
    stored = load_records(ports.store, nodes)
    since = {n: _iso_to_s(updated) for n, (_, updated) in stored.items()}
    facts = node_facts(ports.site, nodes, since, options.thresholds)
    if options.remote_dcops:
        found = collect_remote_dcops(
            ports.runner,
            facts,
            dcops=options.remote_dcops,
            checks=[c.name for c in ports.checks],
            timeout_s=options.timeout_s,
            concurrency=options.concurrency,
            deadline_s=options.deadline_s,
            on_node=on_node,
        )
    else:
        found = collect(
            ports.runner,
            ports.checks,
            facts,
            timeout_s=options.timeout_s,
            concurrency=options.concurrency,
            deadline_s=options.deadline_s,
            on_node=on_node,
        )
    collect_s = time.monotonic() - t0

    scheduler, scheduler_error = _scheduler_states(ports.actions, options.apply)
    previous = {n: stored[n][0] if n in stored else NodeRecord(node=n) for n in nodes}
    decided: dict[str, tuple[Outcome, NodeRecord, list[Action]]] = {}
    for node in nodes:
        nf = found[node]
        outcome = fold(nf.findings, unreachable=nf.unreachable)
        view = (
            scheduler_view(scheduler.get(node)) if scheduler is not None else SchedulerView.UNKNOWN
        )
        new, acts = transition(previous[node], outcome, nf.findings, view, options.lifecycle)
        decided[node] = (outcome, new, acts)

    drains = [a for _, _, acts in decided.values() for a in acts if a.kind == "drain"]
    resumes = [a for _, _, acts in decided.values() for a in acts if a.kind == "resume"]
    site = ports.site
    actuator = ports.actuator or Actuator(
        ports.audit,
        node_actions=ports.actions,
        settings=options.action_settings,
        topology=topology_of(site),
    )
    records = {node: new for node, (_, new, _) in decided.items()}
    actions_out = _act(ports, actuator, run_id, drains, resumes, options.apply, records, previous)
    refused = next((a["message"] for a in actions_out if a["status"] == Status.REFUSED), None)

    node_entries = [
        _node_entry(found[n], decided[n][0], previous[n], records[n], scheduler) for n in nodes
    ]
    counts = Counter(e["status"] for e in node_entries)
    summary = {s: counts.get(s, 0) for s in STATUSES}
    # Checks that do not apply to a node (a GPU check on a CPU-only node): not run, not a fault.
    skipped = sum(f["status"] == "skip" for e in node_entries for f in e["checks"])
    finished_s = ports.clock()
    healthy = all(e["status"] in HEALTHY for e in node_entries)
    report: dict[str, Any] = {
        "kind": "sweep",
        "run_id": run_id,
        "mode": options.mode,
        "apply": options.apply,
        "sku": site.sku,
        "targets": compress(list(nodes)),
        "checks": [c.name for c in ports.checks],
        "started_at": started,
        "finished_at": utc_now(),
        "started_at_s": started_s,
        "finished_at_s": finished_s,
        "duration_s": round(time.monotonic() - t0, 3),
        "collect_s": round(collect_s, 3),
        "status": "ok" if healthy else "unhealthy",
        "summary": summary,
        "skipped_checks": skipped,
        "run_error": run_error(node_entries),
        "nodes": node_entries,
        "actions": actions_out,
        "circuit_breaker": refused,
        "scheduler": {
            "backend": getattr(ports.actions, "name", None),
            "error": scheduler_error,
        },
        "consistency": consistency(node_entries, scheduler, actions_out),
        "params": {
            "concurrency": options.concurrency,
            "timeout_s": options.timeout_s,
            "deadline_s": options.deadline_s,
            "apply": options.apply,
            "remote_dcops": options.remote_dcops,
            "drain_after_failures": options.lifecycle.drain_after_failures,
            "resume_after_passes": options.lifecycle.resume_after_passes,
            "max_drain_fleet": actuator.settings.max_drain_fleet,
            "max_drain_rack": actuator.settings.max_drain_rack,
        },
    }
    save_run(ports.store, report, records, previous, write_state=options.apply)
    if options.apply:
        _audit_lifecycle(ports.audit, run_id, records, previous)
    return report


def _audit_lifecycle(
    audit: AuditLog,
    run_id: str,
    records: Mapping[str, NodeRecord],
    previous: Mapping[str, NodeRecord],
) -> None:
    """Every lifecycle state change is an audited event (the node_state row alone is not)."""
    for node, rec in records.items():
        old = previous.get(node)
        before = old.state if old is not None else None
        if before is rec.state:
            continue
        audit.record(
            "node.lifecycle",
            node,
            outcome="ok",
            evidence={
                "from": None if before is None else before.value,
                "to": rec.state.value,
                "run_id": run_id,
                "reason": rec.reason,
                "drained_by_dcops": rec.drained_by_dcops,
            },
        )


def _scheduler_states(
    actions: NodeActions | None, apply: bool
) -> tuple[dict[str, SchedulerNodeState] | None, str | None]:
    if actions is None:
        return None, None
    try:
        return actions.states(), None
    except DcopsError as exc:
        if apply:
            raise SchedulerError(f"cannot read node states, nothing changed: {exc}") from exc
        return None, str(exc)


def _node_entry(
    nf: NodeFindings,
    outcome: Outcome,
    before: NodeRecord,
    after: NodeRecord,
    scheduler: Mapping[str, SchedulerNodeState] | None,
) -> dict[str, Any]:
    sched = scheduler.get(nf.node) if scheduler is not None else None
    return {
        "node": nf.node,
        "status": node_status(outcome, after, any(f.status.value == "warn" for f in nf.findings)),
        "outcome": outcome.value,
        "state": after.state.value,
        "previous_state": before.state.value,
        "consecutive_failures": after.consecutive_failures,
        "consecutive_passes": after.consecutive_passes,
        "error": nf.error,
        "duration_s": round(nf.duration_s, 3),
        "scheduler": sched.to_dict() if sched is not None else None,
        "checks": [f.to_dict() for f in nf.findings],
    }


def _act(
    ports: SweepPorts,
    actuator: Actuator,
    run_id: str,
    drains: Sequence[Action],
    resumes: Sequence[Action],
    apply: bool,
    records: dict[str, NodeRecord],
    previous: Mapping[str, NodeRecord],
) -> list[dict[str, Any]]:
    """Pass the lifecycle's actions to the actuator; updates ``records`` in place."""
    source = Source("sweep", run_id)
    who = ports.audit.actor
    planned = [*drains, *resumes]
    requests = [
        ActionRequest.make(
            a.kind,
            a.node,
            reason=a.reason if a.kind == "drain" else f"sweep {run_id}: clean",
            source=source,
            requested_by=who,
            evidence=a.evidence,
        )
        for a in planned
    ]
    results = actuator.submit(requests, apply=apply)
    out: list[dict[str, Any]] = []
    for a, result in zip(planned, results, strict=True):
        if apply and result.status is not Status.DONE:
            if a.kind == "drain":
                records[a.node] = held_back(records[a.node])
            else:
                records[a.node] = resume_failed(previous[a.node], records[a.node])
        out.append(
            {
                "action": a.kind,
                "node": a.node,
                "reason": a.reason,
                "evidence": list(a.evidence),
                "outcome": outcome(result),
                "status": result.status.value,
                "message": result.message,
                "id": result.id,
                "call": result.call,
            }
        )
    return out


def outcome(result: ActionResult) -> str:
    """The short outcome of an action in the report: ok, dry-run, refused, skipped: why..."""
    if result.status is Status.DONE:
        return "ok"
    if result.status in (Status.DRY_RUN, Status.REFUSED, Status.PENDING, Status.OBSERVED):
        return result.status.value
    # A sweep's action has one node, named beside the outcome already: the why alone.
    why = "; ".join(result.skipped.values()) if result.skipped else result.message
    for node in result.request.targets:
        why = why.removeprefix(f"{node}: ")
    return f"{result.status.value}: {why}"


def run_error(nodes: Sequence[Mapping[str, Any]]) -> str | None:
    """One run-level error when most nodes could not be swept at all (as burn-in's).

    A node-level ``error`` (unreachable, refused, past the deadline, its remote dcops
    failed) on more than half of the targets says the sweep failed (SSH, DNS, the
    network, dcops on the nodes), not the nodes: exit 3, and no node is judged for it.
    """
    failed = [n for n in nodes if n.get("error")]
    if not nodes or len(failed) * 2 <= len(nodes):
        return None
    what = Counter(str(n["error"]) for n in failed).most_common(1)[0][0]
    return (
        f"{len(failed)} of {len(nodes)} nodes could not be swept ({what}): the sweep failed, "
        "not the nodes; no node was judged or drained for it"
    )


def exit_status(report: Mapping[str, Any]) -> int:
    """0 all healthy, 1 unhealthy nodes found, 3 the run or an action failed, 5 the breaker."""
    if report.get("circuit_breaker") and report.get("apply"):
        return int(ExitCode.REFUSED)
    if report.get("run_error"):
        return int(ExitCode.INTERNAL)
    if any(a.get("status") == Status.FAILED for a in report.get("actions", [])):
        return int(ExitCode.INTERNAL)
    return 0 if report["status"] == "ok" else 1


__all__ = [
    "SweepOptions",
    "SweepPorts",
    "consistency",
    "exit_status",
    "load_records",
    "node_facts",
    "node_status",
    "run_error",
    "run_sweep",
    "scheduler_view",
]

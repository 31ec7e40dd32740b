"""Burn-in as a service call: run the suite, store the run, act on the verdict through the actuator.

``execute`` is the one public entry the CLI calls. The run and its results are
written to the store in one transaction at the end (an interrupted run leaves
nothing half-written); every drain and resume is an action passed to
:class:`dcops.actions.Actuator` (ownership, autonomy level, the one circuit
breaker, dry-run, intent and outcome in the audit log).

What a burn-in asks for:
- a **drain** for every node whose own measurements *fail* (silent data
  corruption, slow GEMM, NVLink bandwidth...), with its findings as evidence;
  an ``error`` (unreachable, hung, crashed, or dcops/its backend failing) never
  drains. When errors hit most targets, the run reports one run-level error
  (``run_error``; exit 3) instead of blaming the nodes;
- with ``recheck``, a **resume** for every rechecked node that passes. The
  actuator re-reads the scheduler first: a node an operator re-drained
  meanwhile stays out, and a node a sweep drained comes back only by a sweep.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from burnin.baselines import load_gemm_baseline, save_gemm_baseline
from burnin.profiles import Thresholds
from burnin.recheck import not_resumed
from burnin.report import build_report, failing_nodes, node_evidence, passing_nodes
from burnin.suite import Progress, SuiteOptions, SuitePorts, Watch, run_suite
from burnin.verdicts.reachability import is_backend_error
from dcops.actions import ActionRequest, ActionResult, Actuator, Source, Status
from dcops.hostlist import compress
from dcops.measurements import GpuRef
from dcops.node_actions import NodeActions, dcops_reason
from dcops.store import Store, utc_now
from dcops.store import runs as run_store
from dcops.store.runs import ResultRow, RunRecord, new_run_id, number, save_run

#: Longest drain reason written to the scheduler.
MAX_REASON_CHARS = 200


@dataclass(frozen=True)
class ActionPolicy:
    apply: bool = False
    force: bool = False  # override the circuit breaker
    recheck: bool = False  # resume dcops-drained nodes that pass
    requested_by: str = "dcops"


def dcops_drained(actions: NodeActions, nodes: Sequence[str]) -> list[str]:
    """The nodes among ``nodes`` drained by dcops (reason prefix), per the scheduler."""
    states = actions.states(nodes)
    return [n for n in nodes if n in states and states[n].drain and states[n].by_dcops]


def execute(
    ports: SuitePorts,
    thresholds: Thresholds,
    options: SuiteOptions,
    *,
    store: Store,
    actuator: Actuator,
    policy: ActionPolicy,
    progress: Progress | None = None,
    watch: Watch | None = None,
) -> dict[str, Any]:
    """Run, judge, act, store; returns the report (see :mod:`burnin.report`)."""
    run_id = new_run_id("rc" if policy.recheck else "bi")
    started = utc_now()
    if options.gemm_baseline is None:
        g = thresholds.gemm
        found = load_gemm_baseline(
            store,
            ports.site.sku,
            options.gemm_dtype or g.dtype,
            options.gemm_rounds or g.rounds,
            ports.backend,
        )
        options = dataclasses.replace(options, gemm_baseline=found)
    suite = run_suite(ports, thresholds, options, progress, watch)
    report = build_report(
        suite, run_id=run_id, sku=ports.site.sku, started_at=started, finished_at=utc_now()
    )
    report["kind"] = "recheck" if policy.recheck else "burnin"
    report["apply"] = policy.apply
    report["targets"] = compress(list(options.nodes))
    report["run_error"] = run_error(report)
    results = actuator.submit(requests(report, policy), apply=policy.apply, force=policy.force)
    report["actions"] = [action_entry(r) for r in results]
    report["not_resumed"] = not_resumed(report, results)
    report["circuit_breaker"] = next((r.message for r in results if r.refused), None)
    _save(store, report, suite.findings, suite.gemm_tflops, thresholds.gemm.peers.min_peers)
    return report


def run_error(report: dict[str, Any]) -> str | None:
    """One run-level error when errors hit most targets (a failure of dcops, not of the nodes)."""
    nodes = report["nodes"]
    errors = [n for n in nodes if n["status"] == "error"]
    if not nodes or len(errors) * 2 <= len(nodes):
        return None
    reasons = [r for n in errors for r in n["reasons"] if r.get("status") == "error"]
    backend = sum(1 for r in reasons if is_backend_error(r))
    common = Counter(str(r.get("message", "")).split(": ", 1)[-1] for r in reasons).most_common(1)
    what = common[0][0] if common else "no result"
    origin = "dcops or its backend failed" if backend else "the nodes could not be measured"
    return (
        f"{len(errors)} of {len(nodes)} nodes could not be tested ({what}): {origin}; "
        "no node was judged failed for it and nothing was drained for it"
    )


def requests(report: dict[str, Any], policy: ActionPolicy) -> list[ActionRequest]:
    """The actions this burn-in asks for: drains for failed nodes, resumes on a passing recheck."""
    run_id = report["run_id"]
    source = Source("burnin", run_id)
    out: list[ActionRequest] = []
    for node in failing_nodes(report, ("fail",)):
        found = node_evidence(report, node)
        first = found[0] if found else {"check": "burnin", "message": report["status"]}
        detail = f"burnin {run_id}: {first.get('check')}: {first.get('message', '')}"
        out.append(
            ActionRequest.make(
                "drain",
                node,
                reason=dcops_reason(detail)[:MAX_REASON_CHARS],
                source=source,
                requested_by=policy.requested_by,
                evidence=found,
            )
        )
    if policy.recheck:
        for node in passing_nodes(report):
            out.append(
                ActionRequest.make(
                    "resume",
                    node,
                    reason=f"burnin recheck {run_id} passed",
                    source=source,
                    requested_by=policy.requested_by,
                    evidence=[{"check": "burnin", "status": "pass", "run_id": run_id}],
                )
            )
    return out


_OUTCOME = {
    Status.DONE: "ok",
    Status.DRY_RUN: "dry-run",
    Status.REFUSED: "refused",
    Status.PENDING: "pending",
    Status.OBSERVED: "observed",
    Status.RECOMMENDED: "recommended",
}


def outcome(result: ActionResult) -> str:
    """The short outcome word of an action in a run report (``ok``, ``skipped: ...``)."""
    word = _OUTCOME.get(result.status)
    return word if word is not None else f"{result.status.value}: {result.message}"


def action_entry(result: ActionResult) -> dict[str, Any]:
    r = result.request
    return {
        "action": r.kind,
        "nodes": r.hostlist,
        "reason": r.reason,
        "outcome": outcome(result),
        "status": result.status.value,
        "message": result.message,
        "id": result.id,
        "call": result.call,
    }


def _save(
    store: Store,
    report: dict[str, Any],
    findings: Sequence[Any],
    tflops: Mapping[GpuRef, float],
    min_peers: int,
) -> None:
    rows = []
    for f in findings:
        reason = f.reason
        rows.append(
            ResultRow(
                node=f.nodes[0] if len(f.nodes) == 1 else ",".join(f.nodes),
                gpu=f.gpus[0].index if len(f.gpus) == 1 else None,
                check=reason.check,
                metric=reason.metric,
                value=number(reason.value),
                threshold=number(reason.threshold),
                status=f.status.value,
                message=reason.message,
            )
        )
    run = RunRecord(
        run_id=report["run_id"],
        kind=report["kind"],
        started_at=report["started_at"],
        finished_at=report["finished_at"],
        status=report["status"],
        sku=report["sku"],
        targets=report["targets"],
        params=report["params"],
        summary=report,
    )
    passed = {
        f"{n['node']}:gpu{g['index']}"
        for n in report["nodes"]
        for g in n["gpus"]
        if g["status"] == "pass"
    }
    with store.transaction() as conn:
        save_run(conn, run, rows)
        save_gemm_baseline(conn, report["sku"], report["params"], tflops, passed, min_peers)
        now = utc_now()
        for action in report["actions"]:
            if action["status"] != Status.DONE:
                continue
            node = action["nodes"]
            if action["action"] == "drain":
                conn.execute(
                    "INSERT INTO node_state (node, state, since, reason, drained_by_dcops,"
                    " evidence, updated_at) VALUES (?, 'drained', ?, ?, 1, ?, ?)"
                    " ON CONFLICT(node) DO UPDATE SET state='drained', since=excluded.since,"
                    " reason=excluded.reason, drained_by_dcops=1, evidence=excluded.evidence,"
                    " updated_at=excluded.updated_at",
                    (node, now, action["reason"], json.dumps({"run_id": report["run_id"]}), now),
                )
            elif action["action"] == "resume":
                conn.execute(
                    "INSERT INTO node_state (node, state, since, reason, drained_by_dcops,"
                    " updated_at) VALUES (?, 'ok', ?, '', 0, ?)"
                    " ON CONFLICT(node) DO UPDATE SET state='ok', since=excluded.since,"
                    " reason='', drained_by_dcops=0, updated_at=excluded.updated_at",
                    (node, now, now),
                )


def history(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    out = []
    for run in run_store.list_runs(store, ("burnin", "recheck"), limit):
        run["summary"] = run["summary"].get("summary", {})
        out.append(run)
    return out


def load_run(store: Store, run_id: str) -> dict[str, Any]:
    return run_store.load_run(store, run_id, "burn-in run")

"""Burn-in as a service call: run the suite, store the run, act on the verdict, audit it.

``execute`` is the one public entry the CLI calls. It keeps the cross-cutting
work in one place (as SkyPilot's provision/_provision split does): the run and
its results are written to the store in one transaction at the end (an
interrupted run leaves nothing half-written), drains and resumes go through the
node-actions port, each change is audited with its evidence, and nothing
changes without ``apply``.

Safety rails:
- a circuit breaker refuses to drain more than ``max_drain_rack`` of a rack or
  ``max_drain_fleet`` of the fleet in one run unless ``force`` (a broken check
  or a fabric event looks like that, not 40 bad GPUs);
- a recheck resumes only nodes whose drain reason carries the ``dcops:`` prefix
  (dcops' own drains), and only those that passed.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from burnin.profiles import Thresholds
from burnin.report import build_report, failing_nodes, node_evidence, passing_nodes
from burnin.suite import Progress, SuiteOptions, SuitePorts, run_suite
from dcops.errors import DcopsError, UnknownNameError
from dcops.hostlist import compress
from dcops.node_actions import NodeActions, dcops_reason, is_dcops_reason
from dcops.store import AuditLog, Store, utc_now


@dataclass(frozen=True)
class ActionPolicy:
    apply: bool = False
    force: bool = False
    max_drain_rack: float = 0.34  # 6 of 18 trays
    max_drain_fleet: float = 0.25
    recheck: bool = False  # resume dcops-drained nodes that pass


def new_run_id(kind: str = "bi") -> str:
    return f"{kind}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def dcops_drained(actions: NodeActions, nodes: Sequence[str]) -> list[str]:
    """The nodes among ``nodes`` drained by dcops (reason prefix), per the scheduler."""
    states = actions.states(nodes)
    return [
        n for n in nodes if n in states and states[n].drain and is_dcops_reason(states[n].reason)
    ]


def execute(
    ports: SuitePorts,
    thresholds: Thresholds,
    options: SuiteOptions,
    *,
    store: Store,
    audit: AuditLog,
    actions: NodeActions | None,
    policy: ActionPolicy,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run, judge, store, act; returns the report (see :mod:`burnin.report`)."""
    run_id = new_run_id("rc" if policy.recheck else "bi")
    started = utc_now()
    suite = (
        run_suite(ports, thresholds, options, progress)
        if progress
        else run_suite(ports, thresholds, options)
    )
    report = build_report(
        suite, run_id=run_id, sku=ports.site.sku, started_at=started, finished_at=utc_now()
    )
    report["kind"] = "recheck" if policy.recheck else "burnin"
    report["targets"] = compress(options.nodes) if options.nodes else ""
    report["actions"] = _act(report, ports, actions, policy, audit)
    _save(store, report, suite.findings)
    return report


def _act(
    report: dict[str, Any],
    ports: SuitePorts,
    actions: NodeActions | None,
    policy: ActionPolicy,
    audit: AuditLog,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    run_id = report["run_id"]
    to_drain = failing_nodes(report)
    refused = _breaker(report, ports, to_drain, policy)
    if refused:
        out.append(
            {
                "action": "drain",
                "nodes": compress(to_drain),
                "outcome": "refused",
                "message": refused,
            }
        )
        if policy.apply:
            audit.record(
                "drain",
                compress(to_drain),
                outcome="refused",
                evidence={"run_id": run_id, "circuit_breaker": refused},
            )
        to_drain = []
    for node in to_drain:
        evidence = node_evidence(report, node)
        first = evidence[0] if evidence else {"check": "burnin", "message": report["status"]}
        reason = dcops_reason(f"burnin {run_id}: {first.get('check')}: {first.get('message', '')}")[
            :200
        ]
        entry: dict[str, Any] = {"action": "drain", "nodes": node, "reason": reason}
        if not policy.apply or actions is None:
            entry["outcome"] = "dry-run"
        else:
            entry["outcome"] = _do(lambda n=node, r=reason: actions.drain([n], r))
            audit.record(
                "drain",
                node,
                outcome=entry["outcome"],
                evidence={"run_id": run_id, "reason": reason, "reasons": evidence},
            )
        out.append(entry)
    if policy.recheck:
        for node in passing_nodes(report):
            entry = {"action": "resume", "nodes": node}
            if not policy.apply or actions is None:
                entry["outcome"] = "dry-run"
            else:
                entry["outcome"] = _do(lambda n=node: actions.resume([n]))
                audit.record(
                    "resume",
                    node,
                    outcome=entry["outcome"],
                    evidence={"run_id": run_id, "status": "pass"},
                )
            out.append(entry)
    return out


def _do(call: Any) -> str:
    try:
        call()
    except DcopsError as exc:
        return f"failed: {exc}"
    return "ok"


def _breaker(
    report: dict[str, Any], ports: SuitePorts, to_drain: list[str], policy: ActionPolicy
) -> str | None:
    if policy.force or not to_drain:
        return None
    site = ports.site
    fleet = len(site.nodes())
    if len(to_drain) > policy.max_drain_fleet * fleet:
        return (
            f"circuit breaker: {len(to_drain)} of {fleet} nodes would be drained "
            f"(> {policy.max_drain_fleet:.0%} of the fleet); rerun with --force if real"
        )
    per_rack = Counter(site.node(n).rack for n in to_drain)
    for rack, count in sorted(per_rack.items()):
        size = len(site.rack(rack).nodes)
        if count > policy.max_drain_rack * size:
            return (
                f"circuit breaker: {count} of {size} nodes of rack {rack} would be drained "
                f"(> {policy.max_drain_rack:.0%} of a rack); rerun with --force if real"
            )
    return None


def _save(store: Store, report: dict[str, Any], findings: Sequence[Any]) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO runs (run_id, kind, started_at, finished_at, status, sku, targets,"
            " params, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                report["run_id"],
                report["kind"],
                report["started_at"],
                report["finished_at"],
                report["status"],
                report["sku"],
                report["targets"],
                json.dumps(report["params"]),
                json.dumps(report),
            ),
        )
        rows = []
        for f in findings:
            reason = f.reason
            gpu = f.gpus[0].index if len(f.gpus) == 1 else None
            node = f.nodes[0] if len(f.nodes) == 1 else ",".join(f.nodes)
            value = reason.value if isinstance(reason.value, int | float) else None
            threshold = reason.threshold if isinstance(reason.threshold, int | float) else None
            rows.append(
                (
                    report["run_id"],
                    node,
                    gpu,
                    reason.check,
                    reason.metric,
                    value,
                    threshold,
                    f.status.value,
                    reason.message,
                )
            )
        conn.executemany(
            'INSERT INTO results (run_id, node, gpu, "check", metric, value, threshold, status,'
            " message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        now = utc_now()
        for action in report["actions"]:
            if action.get("outcome") != "ok":
                continue
            node = action["nodes"]
            if action["action"] == "drain":
                conn.execute(
                    "INSERT INTO node_state (node, state, since, reason, drained_by_dcops,"
                    " evidence, updated_at) VALUES (?, 'drained', ?, ?, 1, ?, ?)"
                    " ON CONFLICT(node) DO UPDATE SET state='drained', since=excluded.since,"
                    " reason=excluded.reason, drained_by_dcops=1, evidence=excluded.evidence,"
                    " updated_at=excluded.updated_at",
                    (
                        node,
                        now,
                        action.get("reason", ""),
                        json.dumps({"run_id": report["run_id"]}),
                        now,
                    ),
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
    rows = store.conn.execute(
        "SELECT run_id, kind, started_at, finished_at, status, sku, targets, summary FROM runs"
        " WHERE kind IN ('burnin', 'recheck') ORDER BY started_at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    out = []
    for row in rows:
        summary = json.loads(row["summary"]).get("summary", {})
        out.append(
            {
                k: row[k]
                for k in ("run_id", "kind", "started_at", "finished_at", "status", "sku", "targets")
            }
            | {"summary": summary}
        )
    return out


def load_run(store: Store, run_id: str) -> dict[str, Any]:
    row = store.conn.execute("SELECT summary FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        known = [
            r[0]
            for r in store.conn.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 5")
        ]
        raise UnknownNameError("burn-in run", run_id, known)
    report: dict[str, Any] = json.loads(row["summary"])
    return report

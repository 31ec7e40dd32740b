"""The sweep's metrics as a node_exporter textfile-collector file, written atomically.

Metrics (gauges; names follow Prometheus conventions, units in the name)::

    dcops_node_health{node,check}                 1 healthy (ok/warn), 0 not (fail/error)
    dcops_sweep_nodes{state}                      nodes per status (ok/warn/suspect/fail/error)
    dcops_sweep_duration_seconds                  wall time of the sweep
    dcops_sweep_last_success_timestamp_seconds    Unix time the sweep completed
    dcops_sweep_circuit_breaker_tripped           1 when the breaker refused drains
    dcops_node_lifecycle_state{node,state}        1 for the node's lifecycle state, 0 the others
    dcops_node_drained_by_dcops_since_timestamp_seconds{node}
                                                  when the scheduler's dcops drain was set

The file is written only when the sweep completed; a failed sweep leaves the
previous file, so ``time() - dcops_sweep_last_success_timestamp_seconds`` is
the alert for "sweeps stopped". "Drained by dcops since" comes from the
scheduler as the sweep read it (a drain with a ``dcops:`` reason and its reason
time), so drains by burn-in count too and an operator's drain never does. It is
rendered by prometheus_client and written atomically
(:func:`dcops.textfile.write_atomic`). The alerting rules over these metrics
ship in ``telemetry/prometheus/rules.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dcops.node_actions import is_dcops_reason
from dcops.textfile import write_atomic

#: The file name inside ``--textfile DIR``.
TEXTFILE_NAME = "dcops_sweep.prom"

NODE_STATUSES = ("ok", "warn", "suspect", "fail", "error")

#: Lifecycle states (:class:`health.lifecycle.NodeState`), in order.
LIFECYCLE_STATES = ("ok", "suspect", "drained", "repair")


def drained_by_dcops_since(node: Mapping[str, Any]) -> float | None:
    """When the scheduler's dcops drain of a report's node was set, or None."""
    sched = node.get("scheduler") or {}
    if "DRAIN" not in (sched.get("states") or ()) or not is_dcops_reason(sched.get("reason")):
        return None
    when = sched.get("reason_time_s")
    return float(when) if isinstance(when, int | float) else None


def render(report: Mapping[str, Any]) -> str:
    """The exposition text for a sweep report (see :mod:`health.sweep`)."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    health = Gauge(
        "dcops_node_health",
        "1 when the node passed the check in the last sweep (ok or warn), 0 when not.",
        ["node", "check"],
        registry=registry,
    )
    nodes = Gauge(
        "dcops_sweep_nodes",
        "Nodes per status in the last sweep.",
        ["state"],
        registry=registry,
    )
    duration = Gauge(
        "dcops_sweep_duration_seconds", "Wall time of the last sweep.", registry=registry
    )
    success = Gauge(
        "dcops_sweep_last_success_timestamp_seconds",
        "Unix time the last sweep completed.",
        registry=registry,
    )
    breaker = Gauge(
        "dcops_sweep_circuit_breaker_tripped",
        "1 when the last sweep's circuit breaker refused to drain.",
        registry=registry,
    )
    lifecycle = Gauge(
        "dcops_node_lifecycle_state",
        "1 for the node's lifecycle state after the last sweep (ok, suspect, drained, repair).",
        ["node", "state"],
        registry=registry,
    )
    drained_since = Gauge(
        "dcops_node_drained_by_dcops_since_timestamp_seconds",
        "When the scheduler's drain of the node with a dcops reason was set (Unix time).",
        ["node"],
        registry=registry,
    )
    counts = dict.fromkeys(NODE_STATUSES, 0)
    for node in report["nodes"]:
        for state in LIFECYCLE_STATES:
            lifecycle.labels(node=node["node"], state=state).set(node.get("state") == state)
        since = drained_by_dcops_since(node)
        if since is not None:
            drained_since.labels(node=node["node"]).set(since)
        counts[node["status"]] = counts.get(node["status"], 0) + 1
        per_check: dict[str, bool] = {}
        for finding in node["checks"]:
            if finding["status"] == "skip":  # not run on this node: no health to export
                continue
            good = finding["status"] in ("ok", "warn")
            per_check[finding["check"]] = per_check.get(finding["check"], True) and good
        for check, good in per_check.items():
            health.labels(node=node["node"], check=check).set(1 if good else 0)
    for state, count in counts.items():
        nodes.labels(state=state).set(count)
    duration.set(float(report["duration_s"]))
    success.set(float(report["finished_at_s"]))
    breaker.set(1 if report.get("circuit_breaker") else 0)
    return generate_latest(registry).decode()


def write(directory: Path | str, report: Mapping[str, Any]) -> Path:
    """Write the report's metrics to ``directory/dcops_sweep.prom`` atomically; its path."""
    return write_atomic(directory, TEXTFILE_NAME, render(report))

"""Where capacity's facts come from: the state store and the scheduler's node states.

Reads only; plain data out. From the store (see ``dcops/store/migrations.py``):

* ``node_state``: dcops' lifecycle record per node (state, reason, since, drained by dcops);
* ``runs`` of kind ``burnin``, ``recheck`` and ``sweep`` (their summaries hold the
  per-node status): the latest observation of each node, and the latest burn-in
  pass (the certificate). A sweep whose checks errored without a node-level
  error tells nothing about the node (a failure of dcops is never evidence
  against it) and is skipped; so is a burn-in ``crashed`` error.

From the scheduler: :class:`~dcops.node_actions.SchedulerNodeState` per node,
read through the node-actions port the CLI resolves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from capacity.trays import Observation, SchedulerFacts, TrayFacts
from dcops.inventory import Site
from dcops.node_actions import SchedulerNodeState
from dcops.store import Store

_BUSY = frozenset({"ALLOCATED", "MIXED", "COMPLETING"})


def iso_to_s(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Lifecycle:
    state: str
    reason: str
    since_s: float | None
    drained_by_dcops: bool


def load_lifecycle(store: Store) -> dict[str, Lifecycle]:
    rows = store.conn.execute(
        "SELECT node, state, reason, since, drained_by_dcops FROM node_state"
    ).fetchall()
    return {
        r["node"]: Lifecycle(
            r["state"], r["reason"] or "", iso_to_s(r["since"]), bool(r["drained_by_dcops"])
        )
        for r in rows
    }


def _burnin_observation(entry: Mapping[str, Any], run_id: str, t: float) -> Observation | None:
    status = str(entry.get("status", ""))
    reasons = entry.get("reasons") or []
    first = reasons[0] if reasons else {}
    if status == "error":
        kinds = [r.get("value") for r in reasons if r.get("check") == "reachability"]
        kind = str(kinds[0]) if kinds else "crashed"
        if kind not in ("unreachable", "hung"):
            return None
        return Observation("error", run_id, t, kind, str(first.get("message", "")))
    if status not in ("pass", "warn", "fail"):
        return None
    message = f"{first.get('check', '')}: {first.get('message', '')}" if first else ""
    return Observation(status, run_id, t, "", message)


def _sweep_observation(entry: Mapping[str, Any], run_id: str, t: float) -> Observation | None:
    status = str(entry.get("status", ""))
    if status == "error":
        error = str(entry.get("error") or "")
        if not error:
            return None  # a check errored: dcops could not tell
        low = error.lower()
        kind = (
            "hung"
            if ("timed out" in low or "deadline" in low or "timeout" in low)
            else ("unreachable")
        )
        return Observation("error", run_id, t, kind, error)
    mapped = {"ok": "pass", "suspect": "warn", "fail": "fail"}.get(status)
    if mapped is None:
        return None
    failed = [c for c in entry.get("checks", []) if c.get("status") == "fail"]
    message = f"{failed[0].get('check')}: {failed[0].get('message', '')}" if failed else ""
    return Observation(mapped, run_id, t, "", message)


@dataclass(frozen=True)
class RunFacts:
    observations: dict[str, Observation]
    certificates: dict[str, float]
    fabric: dict[str, str]  # rack -> ok / impaired / unknown (latest burn-in rack verdict)


def load_runs(store: Store, nodes: Iterable[str], *, until_s: float | None = None) -> RunFacts:
    """Latest observation and burn-in certificate per node, newest run first."""
    wanted = set(nodes)
    obs: dict[str, Observation] = {}
    certs: dict[str, float] = {}
    fabric: dict[str, str] = {}
    rows = store.conn.execute(
        "SELECT run_id, kind, started_at, finished_at, summary FROM runs"
        " WHERE kind IN ('burnin', 'recheck', 'sweep') ORDER BY started_at DESC"
    )
    for row in rows:
        t = iso_to_s(row["finished_at"]) or iso_to_s(row["started_at"]) or 0.0
        if until_s is not None and t > until_s:
            continue
        try:
            summary = json.loads(row["summary"])
        except ValueError:
            continue
        burnin = row["kind"] != "sweep"
        for entry in summary.get("nodes", []):
            node = entry.get("node")
            if node not in wanted:
                continue
            if burnin and node not in certs and entry.get("status") in ("pass", "warn"):
                certs[node] = t
            if node in obs:
                continue
            got = (_burnin_observation if burnin else _sweep_observation)(entry, row["run_id"], t)
            if got is not None:
                obs[node] = got
        if burnin:
            for rack in summary.get("racks", []):
                name = rack.get("rack")
                if name and name not in fabric:
                    status = rack.get("status")
                    collective = any(
                        r.get("check") == "collective" for r in rack.get("reasons", [])
                    )
                    fabric[name] = (
                        "ok"
                        if status in ("pass", "warn")
                        else "impaired"
                        if collective
                        else "unknown"
                    )
        if len(obs) == len(wanted) and len(certs) == len(wanted):
            break
    return RunFacts(obs, certs, fabric)


def observation_history(store: Store, nodes: Iterable[str]) -> dict[str, list[Observation]]:
    """Every observation of each node by a sweep or burn-in, oldest first."""
    wanted = set(nodes)
    out: dict[str, list[Observation]] = {}
    rows = store.conn.execute(
        "SELECT run_id, kind, started_at, finished_at, summary FROM runs"
        " WHERE kind IN ('burnin', 'recheck', 'sweep') ORDER BY started_at"
    )
    for row in rows:
        t = iso_to_s(row["finished_at"]) or iso_to_s(row["started_at"]) or 0.0
        try:
            summary = json.loads(row["summary"])
        except ValueError:
            continue
        burnin = row["kind"] != "sweep"
        for entry in summary.get("nodes", []):
            node = entry.get("node")
            if node not in wanted:
                continue
            got = (_burnin_observation if burnin else _sweep_observation)(entry, row["run_id"], t)
            if got is not None:
                out.setdefault(node, []).append(got)
    return out


def scheduler_facts(state: SchedulerNodeState) -> SchedulerFacts:
    flags = set(state.flags)
    return SchedulerFacts(
        drain=state.drain,
        down=state.down,
        responding=state.responding,
        maintenance=bool({"MAINT", "MAINTENANCE", "PLANNED"} & flags) or state.base == "MAINT",
        busy=state.base in _BUSY or "COMPLETING" in flags,
        reason=state.reason or "",
        by_dcops=state.by_dcops,
        reason_time_s=state.reason_time_s,
    )


def tray_facts(
    site: Site,
    lifecycle: Mapping[str, Lifecycle],
    runs: RunFacts,
    scheduler: Mapping[str, SchedulerNodeState] | None,
) -> list[TrayFacts]:
    """One :class:`TrayFacts` per node of the site, in site order.

    ``scheduler`` None means no scheduler is configured: every tray is taken
    as in service per the scheduler (dcops' own records still count).
    """
    out: list[TrayFacts] = []
    for node in site.nodes():
        info = site.node(node)
        life = lifecycle.get(node)
        if scheduler is None:
            sched: SchedulerFacts | None = SchedulerFacts()
        else:
            state = scheduler.get(node)
            sched = scheduler_facts(state) if state is not None else None
        out.append(
            TrayFacts(
                node=node,
                rack=info.rack,
                gpus=info.gpus_per_node,
                lifecycle=life.state if life else "ok",
                lifecycle_reason=life.reason if life else "",
                lifecycle_since_s=life.since_s if life else None,
                drained_by_dcops=life.drained_by_dcops if life else False,
                scheduler=sched,
                observation=runs.observations.get(node),
                certificate_time_s=runs.certificates.get(node),
            )
        )
    return out

"""Capacity as library calls: read the store (and the scheduler's states), run the pure core.

Each public function is what one ``dcops capacity`` command calls; the CLI
only parses flags and renders. Writes happen only in :func:`import_failures`
(one transaction: all rows or none).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from capacity.failures import availability, parse_failures_csv
from capacity.outages import Outage, from_actions, merge, out_at
from capacity.plan import OutTray, RackSupply, Request, plan, repair_order
from capacity.report import DEFAULT_SEGMENT_SIZES, build_report
from capacity.slo import slo
from capacity.sources import (
    iso_to_s,
    load_lifecycle,
    load_runs,
    observation_history,
    tray_facts,
)
from capacity.trays import TrayFacts, TrayVerdict, classify
from dcops.errors import DcopsError, InputError, LocatedInputError
from dcops.hostlist import expand
from dcops.inventory import Site
from dcops.node_actions import SchedulerNodeState
from dcops.store import Store, utc_now

DEFAULT_PROMISED_SEGMENT = 16


def segment_sizes(site: Site) -> tuple[int, ...]:
    smallest = min(len(r.nodes) for r in site.racks)
    sizes = site.capacity.segment_sizes or tuple(s for s in DEFAULT_SEGMENT_SIZES if s <= smallest)
    return sizes or (1,)


def promised_segment(site: Site) -> int:
    smallest = min(len(r.nodes) for r in site.racks)
    return site.capacity.promised_segment or min(DEFAULT_PROMISED_SEGMENT, smallest)


# --- history: drains and resumes from the audit trail -------------------------------------


def lifecycle_outages(store: Store, nodes: Sequence[str]) -> list[Outage]:
    """Outages from the audit trail: successful drains and resumes (targets are hostlists)."""
    wanted = set(nodes)
    events: list[tuple[float, str, str, str]] = []
    rows = store.conn.execute(
        "SELECT ts, action, target, evidence FROM audit_log"
        " WHERE action IN ('drain', 'resume') AND outcome = 'ok' ORDER BY seq"
    )
    for row in rows:
        try:
            targets = [n for n in expand(row["target"]) if n in wanted]
        except DcopsError:
            continue  # not a hostlist (a job id, a tenant...)
        if not targets:
            continue
        t = iso_to_s(row["ts"])
        if t is None:
            continue
        try:
            evidence = json.loads(row["evidence"])
        except ValueError:
            evidence = {}
        reason = str(evidence.get("reason", "")) if isinstance(evidence, dict) else ""
        events.extend((t, row["action"], node, reason) for node in targets)
    return from_actions(events)


def imported_outages(store: Store, nodes: Sequence[str] | None = None) -> list[Outage]:
    rows = store.conn.execute(
        "SELECT node, failed_at, repaired_at, cause, source FROM failure_events"
    ).fetchall()
    wanted = set(nodes) if nodes is not None else None
    out = []
    for r in rows:
        if wanted is not None and r["node"] not in wanted:
            continue
        start = iso_to_s(r["failed_at"])
        if start is None:
            continue
        out.append(Outage(r["node"], start, iso_to_s(r["repaired_at"]), r["cause"], r["source"]))
    return out


# --- report ---------------------------------------------------------------------------------


def _facts_at(site: Site, store: Store, at_s: float) -> list[TrayFacts]:
    """Tray facts as the records held at ``at_s``: drains from the audit trail, runs before it."""
    nodes = site.nodes()
    held = out_at(merge(lifecycle_outages(store, nodes)).outages, at_s)
    scheduler: dict[str, SchedulerNodeState] = {}
    for node in nodes:
        o = held.get(node)
        if o is None:
            scheduler[node] = SchedulerNodeState(node, ("IDLE",))
        else:
            scheduler[node] = SchedulerNodeState(
                node, ("IDLE", "DRAIN"), reason=o.cause, reason_time_s=o.start_s
            )
    runs = load_runs(store, nodes, until_s=at_s)
    return tray_facts(site, {}, runs, scheduler)


def verdicts(
    site: Site,
    store: Store,
    scheduler: Mapping[str, SchedulerNodeState] | None,
    *,
    now_s: float,
    at_s: float | None = None,
) -> tuple[list[TrayVerdict], dict[str, str]]:
    """Every tray's verdict, and the NVLink fabric state per rack where a burn-in told."""
    if at_s is not None:
        facts = _facts_at(site, store, at_s)
        fabric = load_runs(store, site.nodes(), until_s=at_s).fabric
    else:
        runs = load_runs(store, site.nodes())
        facts = tray_facts(site, load_lifecycle(store), runs, scheduler)
        fabric = runs.fabric
    days = site.capacity.certificate_max_age_days
    max_age = days * 86400.0 if days is not None else None
    when = at_s if at_s is not None else now_s
    return [classify(f, now_s=when, certificate_max_age_s=max_age) for f in facts], fabric


def _by_rack(site: Site, vs: Sequence[TrayVerdict]) -> list[tuple[str, str, list[TrayVerdict]]]:
    groups: dict[str, list[TrayVerdict]] = {r.name: [] for r in site.racks}
    for v in vs:
        groups[v.rack].append(v)
    return [(r.name, r.domain or r.name, groups[r.name]) for r in site.racks]


def report(
    site: Site,
    store: Store,
    scheduler: Mapping[str, SchedulerNodeState] | None,
    *,
    now_s: float,
    at_s: float | None = None,
) -> dict[str, Any]:
    vs, fabric = verdicts(site, store, scheduler, now_s=now_s, at_s=at_s)
    out = build_report(_by_rack(site, vs), segment_sizes(site), at_s=at_s or now_s, fabric=fabric)
    out["site"] = site.name
    out["source"] = "records" if at_s is not None else "live"
    return out


# --- plan ----------------------------------------------------------------------------------


def supply(site: Site, vs: Sequence[TrayVerdict]) -> list[RackSupply]:
    rows = []
    for rack, _, items in _by_rack(site, vs):
        out = [
            OutTray(v.node, v.owner.value, v.owner.rank, v.reason, v.since_s)
            for v in items
            if v.owner is not None
        ]
        rows.append(
            RackSupply(
                rack=rack,
                total=len(items),
                free=sum(1 for v in items if v.free),
                healthy=sum(1 for v in items if v.standing.value == "healthy"),
                out=repair_order(out),
            )
        )
    return rows


def plan_request(
    site: Site,
    store: Store,
    scheduler: Mapping[str, SchedulerNodeState] | None,
    request: Request,
    *,
    now_s: float,
) -> dict[str, Any]:
    vs, _ = verdicts(site, store, scheduler, now_s=now_s)
    result = plan(request, supply(site, vs), segment_sizes(site))
    result["site"] = site.name
    return result


# --- failures, availability, SLO -----------------------------------------------------------


def import_failures(store: Store, path: Path, site: Site | None) -> dict[str, Any]:
    """Parse the whole file, then replace this source's rows in one transaction."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LocatedInputError(str(path), f"cannot read: {exc}") from exc
    source = path.name
    rows = parse_failures_csv(
        text, str(path), known_nodes=site.nodes() if site else None, source=source
    )
    merged = merge(rows)
    now = utc_now()

    def iso(t: float | None) -> str | None:
        return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()

    with store.transaction() as conn:
        replaced = conn.execute("DELETE FROM failure_events WHERE source = ?", (source,)).rowcount
        conn.executemany(
            "INSERT INTO failure_events (node, failed_at, repaired_at, cause, source, imported_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(o.node, iso(o.start_s), iso(o.end_s), o.cause, source, now) for o in rows],
        )
    return {
        "source": source,
        "records": len(rows),
        "replaced": replaced,
        "nodes": len(merged.outages),
        "merged": merged.merged_away,
        "outages": sum(len(v) for v in merged.outages.values()),
    }


def unreachable_outages(store: Store, nodes: Sequence[str]) -> list[Outage]:
    """Outages from observations: a sweep or burn-in that could not reach a tray (or found it
    hung) opens one; the next observation that reaches it closes it -- as the report says."""
    out: list[Outage] = []
    for node, seen in observation_history(store, nodes).items():
        start: tuple[float, str] | None = None
        for o in seen:
            away = o.status == "error" and o.kind in ("unreachable", "hung")
            if away and start is None:
                start = (o.time_s, f"unreachable: {o.kind} in {o.source}")
            elif not away and o.status != "error" and start is not None:
                out.append(Outage(node, start[0], o.time_s, start[1], "observation"))
                start = None
        if start is not None:
            out.append(Outage(node, start[0], None, start[1], "observation"))
    return out


def live_outages(verdicts_now: Sequence[TrayVerdict], now_s: float) -> list[Outage]:
    """The trays the report has out now, as open outages since they went out (any owner:
    an operator's drain made outside dcops, maintenance, unreachable, repair)."""
    return [
        Outage(v.node, min(v.since_s, now_s) if v.since_s else now_s, None,
               f"{v.owner.value}: {v.reason}", "live")
        for v in verdicts_now
        if v.owner is not None
    ]  # fmt: skip


def all_outages(
    store: Store,
    site: Site | None,
    include_lifecycle: bool = True,
    *,
    scheduler: Mapping[str, SchedulerNodeState] | None = None,
    now_s: float | None = None,
) -> list[Outage]:
    """Imported failures, dcops' drains/resumes, unreachable spans and (with a site and the
    scheduler) every tray out now -- the same trays ``capacity report`` counts out."""
    nodes = site.nodes() if site else None
    found = imported_outages(store, nodes)
    if include_lifecycle:
        names = nodes if nodes is not None else _audited_nodes(store)
        found += lifecycle_outages(store, names)
        found += unreachable_outages(store, names)
        if site is not None and scheduler is not None and now_s is not None:
            vs, _ = verdicts(site, store, scheduler, now_s=now_s)
            found += live_outages(vs, now_s)
    return found


def _audited_nodes(store: Store) -> list[str]:
    rows = store.conn.execute(
        "SELECT DISTINCT target FROM audit_log WHERE action IN ('drain', 'resume')"
    )
    names: dict[str, None] = {}
    for row in rows:
        try:
            names.update(dict.fromkeys(expand(row[0])))
        except DcopsError:
            continue
    return list(names)


def availability_report(
    store: Store,
    site: Site | None,
    *,
    since_s: float | None,
    until_s: float | None,
    include_lifecycle: bool = True,
    scheduler: Mapping[str, SchedulerNodeState] | None = None,
    now_s: float | None = None,
) -> dict[str, Any]:
    outages = all_outages(store, site, include_lifecycle, scheduler=scheduler, now_s=now_s)
    nodes = site.nodes() if site else None
    rack_of = {n: site.node(n).rack for n in site.nodes()} if site else None
    return availability(outages, since_s=since_s, until_s=until_s, nodes=nodes, rack_of=rack_of)


def slo_report(
    store: Store,
    site: Site,
    *,
    since_s: float,
    until_s: float,
    segment: int | None,
    scheduler: Mapping[str, SchedulerNodeState] | None = None,
    now_s: float | None = None,
) -> dict[str, Any]:
    size = segment or promised_segment(site)
    smallest = min(len(r.nodes) for r in site.racks)
    if size > smallest:
        raise InputError(f"segment of {size} trays is larger than a rack ({smallest} trays)")
    merged = merge(all_outages(store, site, scheduler=scheduler, now_s=now_s)).outages
    racks = [(r.name, list(r.nodes), r.gpus_per_node) for r in site.racks]
    result = slo(racks, merged, size, since_s, until_s)
    at = until_s if now_s is None else min(until_s, now_s)
    held = out_at(merged, at - 1e-6) if until_s > since_s else {}
    for row, rack in zip(result["racks"], site.racks, strict=True):
        row["trays_out_at_end"] = sorted(n for n in rack.nodes if n in held)
    result["site"] = site.name
    return result

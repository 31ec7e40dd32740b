"""The sweep's records in the state store: lifecycle rows (``node_state``), runs and results.

``node_state`` holds one row per node (state, streaks, whether dcops drained it
and with which reason); ``updated_at`` is the start of the node's XID window
for the next sweep. Each sweep is one ``runs`` row (kind ``sweep``, the whole
report as its summary) and one ``results`` row per finding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from dcops.store import Store, runs, utc_now
from health.lifecycle import NodeRecord, NodeState


def load_records(store: Store, nodes: Sequence[str]) -> dict[str, tuple[NodeRecord, str]]:
    """Stored lifecycle records of ``nodes`` with their ``updated_at`` (missing: fresh ``ok``)."""
    wanted = set(nodes)
    out: dict[str, tuple[NodeRecord, str]] = {}
    for row in store.conn.execute("SELECT * FROM node_state"):
        if row["node"] not in wanted:
            continue
        try:
            state = NodeState(row["state"])
        except ValueError:
            state = NodeState.OK
        record = NodeRecord(
            node=row["node"],
            state=state,
            consecutive_failures=int(row["consecutive_failures"]),
            consecutive_passes=int(row["consecutive_passes"]),
            drained_by_dcops=bool(row["drained_by_dcops"]),
            reason=row["reason"],
        )
        out[row["node"]] = (record, row["updated_at"])
    return out


def save_run(
    store: Store,
    report: Mapping[str, Any],
    records: Mapping[str, NodeRecord],
    previous: Mapping[str, NodeRecord],
    write_state: bool,
) -> None:
    now = utc_now()
    rows = [
        runs.ResultRow(
            node=node["node"],
            gpu=f["gpu"],
            check=f["check"],
            metric=f["metric"],
            value=runs.number(f["value"]),
            threshold=runs.number(f["threshold"]),
            status="pass" if f["status"] == "ok" else f["status"],
            message=f["message"],
            details=f["evidence"] or {},
        )
        for node in report["nodes"]
        for f in node["checks"]
    ]
    run = runs.RunRecord(
        run_id=report["run_id"],
        kind="sweep",
        started_at=report["started_at"],
        finished_at=report["finished_at"],
        status=report["status"],
        sku=report["sku"],
        targets=report["targets"],
        params=report["params"],
        summary=report,
    )
    with store.transaction() as conn:
        runs.save_run(conn, run, rows)
        if not write_state:
            return
        for node, rec in records.items():
            old = previous.get(node)
            since = now if old is None or old.state is not rec.state else None
            evidence = json.dumps({"run_id": report["run_id"]})
            conn.execute(
                "INSERT INTO node_state (node, state, since, reason, drained_by_dcops,"
                " consecutive_failures, consecutive_passes, evidence, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(node) DO UPDATE SET state=excluded.state,"
                " since=COALESCE(?, node_state.since), reason=excluded.reason,"
                " drained_by_dcops=excluded.drained_by_dcops,"
                " consecutive_failures=excluded.consecutive_failures,"
                " consecutive_passes=excluded.consecutive_passes, evidence=excluded.evidence,"
                " updated_at=excluded.updated_at",
                (
                    node,
                    rec.state.value,
                    since or now,
                    rec.reason,
                    int(rec.drained_by_dcops),
                    rec.consecutive_failures,
                    rec.consecutive_passes,
                    evidence,
                    now,
                    since,
                ),
            )

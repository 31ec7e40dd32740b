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

from dcops.health.lifecycle import NodeRecord, NodeState
from dcops.store import Store, utc_now


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
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO runs (run_id, kind, started_at, finished_at, status, sku, targets,"
            " params, summary) VALUES (?, 'sweep', ?, ?, ?, ?, ?, ?, ?)",
            (
                report["run_id"],
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
        for node in report["nodes"]:
            for f in node["checks"]:
                value = f["value"] if isinstance(f["value"], int | float) else None
                threshold = f["threshold"] if isinstance(f["threshold"], int | float) else None
                rows.append(
                    (
                        report["run_id"],
                        node["node"],
                        f["gpu"],
                        f["check"],
                        f["metric"],
                        value,
                        threshold,
                        "pass" if f["status"] == "ok" else f["status"],
                        f["message"],
                        json.dumps(f["evidence"], default=str),
                    )
                )
        conn.executemany(
            'INSERT INTO results (run_id, node, gpu, "check", metric, value, threshold, status,'
            " message, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
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

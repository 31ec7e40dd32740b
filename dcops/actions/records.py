"""The actions table: the approval queue, intents and outcomes, undo links (store access only).

One row per action the actuator stored (not dry-runs or recommendations), with
its nodes in ``action_nodes`` so per-node history is one indexed query.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dcops.actions.request import ActionRequest, ActionResult, Level, Source, Status, Step
from dcops.errors import UnknownNameError
from dcops.hostlist import compress
from dcops.store import Store, utc_now


def new_action_id() -> str:
    return f"act-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def iso_at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")


def to_s(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def insert(
    store: Store,
    result: ActionResult,
    *,
    backend: str | None,
    undo_kind: str | None,
    expires_at: str | None = None,
) -> str:
    """Store ``result`` (a new action) with its nodes; returns its id."""
    r = result.request
    action_id = result.id or new_action_id()
    now = utc_now()
    targets = list(result.done_targets or r.targets)
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO actions (id, kind, targets, reason, evidence, params, source, source_run,"
            " requested_by, level, status, message, steps, call, backend, undo_kind, undo_of,"
            " created_at, updated_at, expires_at, pid, host)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                action_id,
                r.kind,
                compress(targets),
                r.reason,
                json.dumps([dict(e) for e in r.evidence], default=str),
                json.dumps(dict(r.params), default=str),
                r.source.kind,
                r.source.run_id,
                r.requested_by,
                result.level.value,
                result.status.value,
                result.message,
                json.dumps([s.to_dict() for s in result.steps]),
                json.dumps(result.call),
                backend,
                undo_kind,
                r.undo_of,
                now,
                now,
                expires_at,
                os.getpid(),
                socket.gethostname(),
            ),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO action_nodes (action_id, node) VALUES (?, ?)",
            [(action_id, n) for n in targets],
        )
    result.id = action_id
    return action_id


def update(store: Store, action_id: str, **fields: Any) -> None:
    """Set columns of one action (``status``, ``message``, ``steps``...); stamps updated_at."""
    values = dict(fields)
    for key in ("steps", "call"):
        if key in values and not isinstance(values[key], str):
            values[key] = json.dumps(values[key])
    for key, value in list(values.items()):
        if hasattr(value, "value") and not isinstance(value, str | int | float):
            values[key] = value.value
    values["updated_at"] = utc_now()
    cols = ", ".join(f"{k} = ?" for k in values)
    with store.transaction() as conn:
        conn.execute(f"UPDATE actions SET {cols} WHERE id = ?", (*values.values(), action_id))


def set_targets(store: Store, action_id: str, targets: Sequence[str]) -> None:
    """Narrow an action to the nodes it ran on (ownership may have left some alone)."""
    with store.transaction() as conn:
        conn.execute(
            "UPDATE actions SET targets = ?, updated_at = ? WHERE id = ?",
            (compress(list(targets)), utc_now(), action_id),
        )
        conn.execute("DELETE FROM action_nodes WHERE action_id = ?", (action_id,))
        conn.executemany(
            "INSERT INTO action_nodes (action_id, node) VALUES (?, ?)",
            [(action_id, n) for n in targets],
        )


def get(store: Store, action_id: str) -> dict[str, Any]:
    row = store.conn.execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
    if row is None:
        known = [
            r[0]
            for r in store.conn.execute("SELECT id FROM actions ORDER BY created_at DESC LIMIT 5")
        ]
        raise UnknownNameError("action", action_id, known)
    return _row(row)


def listing(
    store: Store, *, statuses: Sequence[str] | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM actions"
    args: list[Any] = []
    if statuses:
        sql += f" WHERE status IN ({', '.join('?' for _ in statuses)})"
        args.extend(statuses)
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    args.append(limit)
    return [_row(r) for r in store.conn.execute(sql, args)]


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in ("evidence", "params", "steps", "call"):
        out[key] = json.loads(out[key]) if out.get(key) else ([] if key != "params" else {})
    return out


def request_of(row: Mapping[str, Any]) -> ActionRequest:
    """The stored request of an action row (for approving or undoing it)."""
    return ActionRequest.make(
        row["kind"],
        row["targets"],
        reason=row["reason"],
        source=Source(row["source"], row["source_run"]),
        requested_by=row["requested_by"],
        evidence=row["evidence"],
        params=row["params"],
        undo_of=row["undo_of"],
    )


def result_of(row: Mapping[str, Any]) -> ActionResult:
    return ActionResult(
        request=request_of(row),
        status=Status(row["status"]),
        level=Level(row["level"]),
        message=row["message"],
        id=row["id"],
        steps=[Step(**s) for s in row["steps"]],
        call=list(row["call"]),
    )


# --- history the policy needs ------------------------------------------------------------------


#: Kinds that change nothing on the node (approval gates): not counted by the node rate limit.
GATES = ("runbook_approval",)


def node_history(
    store: Store, nodes: Sequence[str], *, since: str
) -> dict[str, list[dict[str, Any]]]:
    """Done (or undone) actions on ``nodes`` since ``since``, oldest first, per node."""
    wanted = set(nodes)
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in wanted}
    if not wanted:
        return out
    rows = store.conn.execute(
        "SELECT n.node, a.id, a.kind, a.status, a.reason, a.source, a.executed_at, a.undone_by"
        " FROM action_nodes n JOIN actions a ON a.id = n.action_id"
        " WHERE a.status IN ('done', 'undone') AND a.executed_at >= ?"
        f" AND a.kind NOT IN ({','.join('?' for _ in GATES)})"
        " ORDER BY a.executed_at",
        (since, *GATES),
    ).fetchall()
    for row in rows:
        if row["node"] in wanted:
            out[row["node"]].append(dict(row))
    return out


def last_take_out(store: Store, node: str, kinds: Sequence[str]) -> dict[str, Any] | None:
    """The latest done take-out action (``kinds``) on ``node``, or None."""
    row = store.conn.execute(
        "SELECT a.* FROM action_nodes n JOIN actions a ON a.id = n.action_id"
        f" WHERE n.node = ? AND a.kind IN ({', '.join('?' for _ in kinds)})"
        " AND a.status IN ('done', 'undone') ORDER BY a.executed_at DESC LIMIT 1",
        (node, *kinds),
    ).fetchone()
    return _row(row) if row is not None else None


def recent_take_outs(store: Store, kinds: Sequence[str], *, since: str) -> list[str]:
    """Nodes dcops took out (still ``done``, not undone) since ``since``."""
    rows = store.conn.execute(
        "SELECT DISTINCT n.node FROM action_nodes n JOIN actions a ON a.id = n.action_id"
        f" WHERE a.kind IN ({', '.join('?' for _ in kinds)}) AND a.status = 'done'"
        " AND a.executed_at >= ?",
        (*kinds, since),
    ).fetchall()
    return [r["node"] for r in rows]


def stale_intents(store: Store) -> list[dict[str, Any]]:
    """Actions left ``started``/``approved`` by a process that is gone."""
    rows = store.conn.execute(
        "SELECT * FROM actions WHERE status IN ('started', 'approved')"
    ).fetchall()
    host = socket.gethostname()
    out = []
    for row in rows:
        if row["host"] == host and row["pid"] is not None and _alive(int(row["pid"])):
            if int(row["pid"]) != os.getpid():
                continue  # another live run on this host is in the middle of it
            continue  # our own, in flight
        if row["host"] != host:
            updated = to_s(row["updated_at"]) or 0.0
            if datetime.now(UTC).timestamp() - updated < 3600:
                continue  # another host's run may still be at it
        out.append(_row(row))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def expiry(now_s: float, ttl_s: float) -> str:
    return (datetime.fromtimestamp(now_s, UTC) + timedelta(seconds=ttl_s)).isoformat(
        timespec="microseconds"
    )

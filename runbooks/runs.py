"""Runbook runs and their steps in the state store (``runbook_runs``, ``runbook_steps``).

Every change of a step is committed before the engine moves on, so a run killed
with SIGKILL is found as it was: finished steps ``done``, the step in flight
``running``. Opening a run checks, in one IMMEDIATE transaction, that no other
run holds the node (one runbook per node at a time) and that the rack and
fleet limits on runs in flight are kept.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dcops.errors import BusyError, RefusedError, UnknownNameError
from dcops.store import Store
from dcops.store import runs as store_runs
from dcops.store.db import utc_now
from runbooks.model import Runbook, Step

#: A run in one of these holds its node.
ACTIVE = ("running", "waiting_approval", "blocked")
TERMINAL = ("done", "escalated", "failed", "aborted", "recommended")


@dataclass(frozen=True)
class Limits:
    max_per_rack: int = 1
    max_fleet: int = 64
    max_remediations_7d: int = 3


def new_run_id() -> str:
    return store_runs.new_run_id("rb")


def _steps(book: Runbook) -> list[tuple[str, Step]]:
    return (
        [("precondition", s) for s in book.preconditions]
        + [("step", s) for s in book.steps]
        + [("rollback", s) for s in book.rollback]
    )


def recent_runs(store: Store, node: str, days: float = 7.0) -> list[dict[str, Any]]:
    """Runs on ``node`` that acted (not only recommended) in the last ``days``."""
    since = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="microseconds")
    rows = store.conn.execute(
        "SELECT run_id, runbook, status, created_at FROM runbook_runs WHERE node = ?"
        " AND created_at >= ? AND apply = 1 AND status NOT IN ('recommended', 'aborted')"
        " ORDER BY created_at",
        (node, since),
    ).fetchall()
    return [dict(r) for r in rows]


def open_run(
    store: Store,
    book: Runbook,
    node: str,
    *,
    rack: str | None,
    apply: bool,
    autonomy: str,
    params: Mapping[str, Any],
    requested_by: str,
    limits: Limits,
    status: str = "running",
) -> str:
    """Store a new run and its steps.

    Raises RefusedError (the fleet limit) or BusyError (another run holds the node). The rack
    limit is kept where it matters, before a destructive step (:func:`destructive_in_rack`).
    """
    run_id = new_run_id()
    now = utc_now()
    with store.transaction() as conn:
        if apply:
            _check_limits(conn, node, rack, limits)
        conn.execute(
            "INSERT INTO runbook_runs (run_id, runbook, node, rack, status, apply, autonomy,"
            " params, definition, requested_by, pid, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                book.name,
                node,
                rack,
                status,
                int(apply),
                autonomy,
                json.dumps(dict(params), sort_keys=True, default=str),
                json.dumps(book.raw, sort_keys=True),
                requested_by,
                os.getpid() if status == "running" else None,
                now,
                now,
            ),
        )
        for seq, (phase, step) in enumerate(_steps(book)):
            conn.execute(
                "INSERT INTO runbook_steps (run_id, seq, name, kind, phase, status)"
                " VALUES (?, ?, ?, ?, ?, 'pending')",
                (run_id, seq, step.name, step.kind, phase),
            )
    return run_id


def _check_limits(conn: sqlite3.Connection, node: str, rack: str | None, limits: Limits) -> None:
    marks = ",".join("?" for _ in ACTIVE)
    held = conn.execute(
        f"SELECT run_id, runbook, status FROM runbook_runs WHERE node = ? AND status IN ({marks})",
        (node, *ACTIVE),
    ).fetchone()
    if held is not None:
        raise BusyError(
            f"{node} is held by run {held['run_id']} ({held['runbook']}, {held['status']}): "
            "one runbook per node at a time"
        )
    fleet = conn.execute(
        f"SELECT COUNT(*) FROM runbook_runs WHERE status IN ({marks})", ACTIVE
    ).fetchone()[0]
    if fleet >= limits.max_fleet:
        raise RefusedError(
            f"{fleet} runbook runs in flight in the fleet (runbooks.max_fleet = {limits.max_fleet})"
        )


def get_run(store: Store, run_id: str) -> dict[str, Any]:
    row = store.conn.execute("SELECT * FROM runbook_runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        known = [
            r[0]
            for r in store.conn.execute(
                "SELECT run_id FROM runbook_runs ORDER BY created_at DESC LIMIT 10"
            )
        ]
        raise UnknownNameError("runbook run", run_id, known)
    run = dict(row)
    run["params"] = json.loads(run["params"])
    run["definition"] = json.loads(run["definition"])
    steps = store.conn.execute(
        "SELECT * FROM runbook_steps WHERE run_id = ? ORDER BY seq", (run_id,)
    ).fetchall()
    run["steps"] = [{**dict(s), "evidence": json.loads(s["evidence"])} for s in steps]
    return run


def update_run(store: Store, run_id: str, **fields: Any) -> None:
    fields["updated_at"] = utc_now()
    if fields.get("status") in TERMINAL:
        fields.setdefault("finished_at", fields["updated_at"])
        fields.setdefault("pid", None)
    cols = ", ".join(f"{k} = ?" for k in fields)
    with store.transaction() as conn:
        conn.execute(f"UPDATE runbook_runs SET {cols} WHERE run_id = ?", (*fields.values(), run_id))


def update_step(store: Store, run_id: str, seq: int, **fields: Any) -> None:
    if "evidence" in fields:
        fields["evidence"] = json.dumps(fields["evidence"], sort_keys=True, default=str)
    cols = ", ".join(f"{k} = ?" for k in fields)
    with store.transaction() as conn:
        conn.execute(
            f"UPDATE runbook_steps SET {cols} WHERE run_id = ? AND seq = ?",
            (*fields.values(), run_id, seq),
        )


def claim(store: Store, run_id: str) -> dict[str, Any]:
    """Take a run over for this process; BusyError when a live process drives it.

    A waiting or blocked run becomes ``running`` under this process at once, so two
    ``resume`` commands at the same time cannot both drive it.
    """
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT pid, status FROM runbook_runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise UnknownNameError("runbook run", run_id, [])
        pid = row["pid"]
        if pid and pid != os.getpid() and _alive(int(pid)) and row["status"] == "running":
            raise BusyError(f"run {run_id} is being driven by process {pid}")
        if row["status"] not in TERMINAL:
            conn.execute(
                "UPDATE runbook_runs SET pid = ?, status = 'running', updated_at = ?"
                " WHERE run_id = ?",
                (os.getpid(), utc_now(), run_id),
            )
    return get_run(store, run_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def history(store: Store, *, node: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    sql = (
        "SELECT run_id, runbook, node, status, apply, autonomy, current, message, requested_by,"
        " created_at, finished_at FROM runbook_runs"
    )
    args: list[Any] = []
    if node:
        sql += " WHERE node = ?"
        args.append(node)
    sql += " ORDER BY created_at DESC LIMIT ?"
    args.append(limit)
    return [dict(r) for r in store.conn.execute(sql, args)]


def held_nodes(store: Store, nodes: Iterable[str]) -> dict[str, str]:
    wanted = list(nodes)
    marks = ",".join("?" for _ in ACTIVE)
    rows = store.conn.execute(
        f"SELECT node, run_id FROM runbook_runs WHERE status IN ({marks})", ACTIVE
    ).fetchall()
    return {r["node"]: r["run_id"] for r in rows if r["node"] in wanted}


def destructive_in_rack(store: Store, rack: str, run_id: str) -> list[str]:
    """Other runs in ``rack`` past a destructive step (reboot, GPU reset...) and not finished."""
    from runbooks.model import parse_stored

    marks = ",".join("?" for _ in ACTIVE)
    rows = store.conn.execute(
        f"SELECT run_id, definition FROM runbook_runs WHERE rack = ? AND run_id != ?"
        f" AND status IN ({marks})",
        (rack, run_id, *ACTIVE),
    ).fetchall()
    out = []
    for row in rows:
        book = parse_stored(row["definition"])
        destructive = {s.name for s in book.steps if s.destructive}
        started = store.conn.execute(
            "SELECT name FROM runbook_steps WHERE run_id = ?"
            " AND status IN ('running', 'waiting_approval', 'done')",
            (row["run_id"],),
        ).fetchall()
        if destructive & {r["name"] for r in started}:
            out.append(row["run_id"])
    return out

"""Runs and their results in the state store: run ids, the ``runs`` row, ``results`` rows.

The one place that writes these tables; burn-in, sweeps (and runbooks) call it
inside their own transaction, so a run and its results land together or not
at all::

    run_id = new_run_id("bi")                       # bi-20260101-120000-a1b2c3
    with store.transaction() as conn:
        save_run(conn, RunRecord(run_id, "burnin", started, finished, "pass", sku, targets,
                                 params, report), results)
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dcops.errors import UnknownNameError
from dcops.store.db import Store


def new_run_id(prefix: str) -> str:
    """``<prefix>-YYYYmmdd-HHMMSS-<6 hex>``: ``bi`` burn-in, ``rc`` recheck, ``sw`` sweep..."""
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    kind: str  # burnin, recheck, sweep, runbook ...
    started_at: str
    finished_at: str | None
    status: str
    sku: str | None
    targets: str  # hostlist
    params: Mapping[str, Any] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)  # the whole report


@dataclass(frozen=True)
class ResultRow:
    node: str
    check: str
    metric: str
    status: str  # pass, warn, fail, error
    gpu: int | None = None
    value: float | None = None
    threshold: float | None = None
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


def number(value: object) -> float | None:
    """A value for the numeric columns: numbers kept, anything else NULL."""
    if isinstance(value, bool):
        return None
    return float(value) if isinstance(value, int | float) else None


def save_run(conn: sqlite3.Connection, run: RunRecord, results: Iterable[ResultRow]) -> None:
    """Insert the run and its results (call inside ``store.transaction()``)."""
    conn.execute(
        "INSERT INTO runs (run_id, kind, started_at, finished_at, status, sku, targets,"
        " params, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run.run_id,
            run.kind,
            run.started_at,
            run.finished_at,
            run.status,
            run.sku,
            run.targets,
            json.dumps(dict(run.params), default=str),
            json.dumps(dict(run.summary), default=str),
        ),
    )
    conn.executemany(
        'INSERT INTO results (run_id, node, gpu, "check", metric, value, threshold, status,'
        " message, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                run.run_id,
                r.node,
                r.gpu,
                r.check,
                r.metric,
                r.value,
                r.threshold,
                r.status,
                r.message,
                json.dumps(dict(r.details), default=str),
            )
            for r in results
        ],
    )


def list_runs(store: Store, kinds: Iterable[str], limit: int = 20) -> list[dict[str, Any]]:
    """Recent runs of ``kinds``, newest first, with their stored summary parsed."""
    wanted = list(kinds)
    rows = store.conn.execute(
        "SELECT run_id, kind, started_at, finished_at, status, sku, targets, summary FROM runs"
        f" WHERE kind IN ({', '.join('?' for _ in wanted)}) ORDER BY started_at DESC LIMIT ?",
        (*wanted, limit),
    ).fetchall()
    out = []
    for row in rows:
        item = {k: row[k] for k in row.keys() if k != "summary"}  # noqa: SIM118
        item["summary"] = json.loads(row["summary"])
        out.append(item)
    return out


def load_run(store: Store, run_id: str, what: str = "run") -> dict[str, Any]:
    """The stored report (summary) of ``run_id``; unknown ids raise UnknownNameError."""
    row = store.conn.execute("SELECT summary FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        known = [
            r[0]
            for r in store.conn.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 5")
        ]
        raise UnknownNameError(what, run_id, known)
    report: dict[str, Any] = json.loads(row["summary"])
    return report

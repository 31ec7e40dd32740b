"""The append-only audit log: every action that changes the world, hash-chained.

Each record holds who, when, what, target, evidence and outcome, plus the hash
of the record before it; its own hash covers all of that. ``verify`` walks the
chain and reports the first record that was changed, removed or reordered.

The chain proves internal consistency. Cutting records off the *end* leaves a
shorter but consistent chain; to catch that, keep the head (``dcops audit
head``) somewhere else and pass it to ``verify(anchor=...)``.

Concurrency: appending reads the head and inserts inside one IMMEDIATE
transaction, so two processes appending at once serialize and both records land.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from dcops.errors import InputError, StoreError
from dcops.store.db import Store, utc_now

GENESIS = "0" * 64


def canonical_json(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    ts: str
    actor: str
    action: str
    target: str
    evidence: dict[str, Any]
    outcome: str
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_hash(
    seq: int, ts: str, actor: str, action: str, target: str, evidence: str, outcome: str, prev: str
) -> str:
    body = canonical_json([seq, ts, actor, action, target, evidence, outcome, prev])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    head: str
    problem: str | None = None
    seq: int | None = None  # the first record found wrong

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


class AuditLog:
    """Append to and read the audit chain of a :class:`Store`."""

    def __init__(self, store: Store, actor: str | None = None) -> None:
        self.store = store
        self.actor = actor or default_actor()

    def record(
        self,
        action: str,
        target: str,
        *,
        outcome: str,
        evidence: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> AuditRecord:
        """Append one record; returns it with its hash."""
        if not action or not target:
            raise InputError("an audit record needs an action and a target")
        evidence_json = canonical_json(dict(evidence or {}))
        who = actor or self.actor
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (row["seq"] + 1, row["hash"]) if row else (1, GENESIS)
            ts = utc_now()
            digest = record_hash(seq, ts, who, action, target, evidence_json, outcome, prev)
            conn.execute(
                "INSERT INTO audit_log (seq, ts, actor, action, target, evidence, outcome,"
                " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, ts, who, action, target, evidence_json, outcome, prev, digest),
            )
        return AuditRecord(
            seq, ts, who, action, target, json.loads(evidence_json), outcome, prev, digest
        )

    def records(
        self,
        *,
        since_seq: int = 0,
        action: str | None = None,
        target: str | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        sql = "SELECT * FROM audit_log WHERE seq > ?"
        args: list[Any] = [since_seq]
        if action:
            sql += " AND action = ?"
            args.append(action)
        if target:
            sql += " AND target = ?"
            args.append(target)
        sql += " ORDER BY seq"
        if limit is not None:
            sql = f"SELECT * FROM ({sql.replace('ORDER BY seq', 'ORDER BY seq DESC')} LIMIT ?)"
            sql += " ORDER BY seq"
            args.append(limit)
        return [_to_record(row) for row in self.store.conn.execute(sql, args)]

    def head(self) -> tuple[int, str]:
        row = self.store.conn.execute(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return (row["seq"], row["hash"]) if row else (0, GENESIS)

    def _rows_in_storage_order(self) -> Iterator[sqlite3.Row]:
        # rowid order is insertion order for this table (seq is the rowid alias).
        yield from self.store.conn.execute("SELECT * FROM audit_log ORDER BY rowid")

    def verify(self, anchor: str | None = None) -> VerifyResult:
        """Walk the chain; the first changed, removed or reordered record fails it."""
        prev = GENESIS
        expected_seq = 1
        count = 0
        anchor_seen = anchor is None or anchor == GENESIS
        try:
            for row in self._rows_in_storage_order():
                count += 1
                seq = row["seq"]
                if seq != expected_seq:
                    what = "missing (removed)" if seq > expected_seq else "out of order"
                    return VerifyResult(
                        False, count, prev, f"record {expected_seq} is {what}", expected_seq
                    )
                if row["prev_hash"] != prev:
                    return VerifyResult(
                        False,
                        count,
                        prev,
                        f"record {seq} does not follow record {seq - 1} "
                        "(removed or reordered records)",
                        seq,
                    )
                digest = record_hash(
                    seq,
                    row["ts"],
                    row["actor"],
                    row["action"],
                    row["target"],
                    row["evidence"],
                    row["outcome"],
                    row["prev_hash"],
                )
                if digest != row["hash"]:
                    return VerifyResult(
                        False, count, prev, f"record {seq} was changed after it was written", seq
                    )
                prev = digest
                expected_seq += 1
                anchor_seen = anchor_seen or digest == anchor
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"audit log unreadable: {exc}") from exc
        if not anchor_seen:
            return VerifyResult(
                False,
                count,
                prev,
                f"anchor {anchor[:12] if anchor else ''}... is not in the chain "
                "(records were cut off the end or the log was replaced)",
                None,
            )
        return VerifyResult(True, count, prev)


def _to_record(row: sqlite3.Row) -> AuditRecord:
    return AuditRecord(
        seq=row["seq"],
        ts=row["ts"],
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        evidence=json.loads(row["evidence"]),
        outcome=row["outcome"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )

"""The append-only audit log: every action that changes the world, in a keyed hash chain.

Each record holds who, when, what, target, evidence and outcome, plus the hash
of the record before it; its own hash is an HMAC-SHA256 over all of that under
a key kept outside the state store (:mod:`dcops.store.seal`). ``verify`` walks
the chain and reports the first record that was changed, removed, reordered or
forged, checks that the table still has its append-only triggers, and checks
the chain against the latest head exported outside the database (records cut
off the end, an emptied or replaced table). ``verify(anchor=...)`` checks
against a head recorded elsewhere too (``dcops audit head``).

Records written before the chain was keyed keep their plain SHA-256 hashes
(:func:`record_hash`); see :mod:`dcops.store.seal` for how the switch is sealed.

Concurrency: appending reads the head and inserts inside one IMMEDIATE
transaction, so two processes appending at once serialize and both records land.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from dcops.errors import InputError, StoreError
from dcops.store.db import Store, utc_now
from dcops.store.seal import Anchor, AuditSeal

GENESIS = "0" * 64
#: The triggers that make ``audit_log`` append-only inside SQLite.
TRIGGERS = ("audit_log_no_update", "audit_log_no_delete")


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


def record_body(
    seq: int, ts: str, actor: str, action: str, target: str, evidence: str, outcome: str, prev: str
) -> str:
    return canonical_json([seq, ts, actor, action, target, evidence, outcome, prev])


def record_hash(
    seq: int, ts: str, actor: str, action: str, target: str, evidence: str, outcome: str, prev: str
) -> str:
    """The unkeyed hash of records written before the chain was keyed."""
    body = record_body(seq, ts, actor, action, target, evidence, outcome, prev)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _row_digest(seal: AuditSeal, row: sqlite3.Row | dict[str, Any], legacy_upto: int) -> str:
    body = record_body(
        row["seq"],
        row["ts"],
        row["actor"],
        row["action"],
        row["target"],
        row["evidence"],
        row["outcome"],
        row["prev_hash"],
    )
    if row["seq"] <= legacy_upto:
        return hashlib.sha256(body.encode("utf-8")).hexdigest()
    return seal.mac(body)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    head: str
    problem: str | None = None
    seq: int | None = None  # the first record found wrong
    anchor_seq: int | None = None  # the exported head it was checked against
    notes: tuple[str, ...] = ()

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
        seal = self.store.seal
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (row["seq"] + 1, row["hash"]) if row else (1, GENESIS)
            if seal.key() is None:  # first keyed record: seal the unkeyed history
                seal.create(Anchor(seq - 1, prev))
            ts = utc_now()
            body = record_body(seq, ts, who, action, target, evidence_json, outcome, prev)
            digest = seal.mac(body)
            conn.execute(
                "INSERT INTO audit_log (seq, ts, actor, action, target, evidence, outcome,"
                " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, ts, who, action, target, evidence_json, outcome, prev, digest),
            )
        seal.export(Anchor(seq, digest))
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

    def matching(
        self, actions: tuple[str, ...], evidence_key: str, value: str
    ) -> list[tuple[AuditRecord, bool]]:
        """Records of ``actions`` whose evidence has ``evidence_key == value``, each with
        whether its hash is authentic (keyed, or unkeyed from before the key)."""
        marks = ",".join("?" for _ in actions)
        rows = self.store.conn.execute(
            f"SELECT * FROM audit_log WHERE action IN ({marks})"
            " AND json_extract(evidence, ?) = ? ORDER BY seq",
            (*actions, f"$.{evidence_key}", value),
        ).fetchall()
        seal = self.store.seal
        upto = seal.legacy_upto() if seal.key() is not None else 1 << 62
        return [
            (_to_record(row), hmac.compare_digest(_row_digest(seal, row, upto), row["hash"]))
            for row in rows
        ]

    def missing_triggers(self) -> list[str]:
        names = {
            r[0]
            for r in self.store.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
            )
        }
        return [t for t in TRIGGERS if t not in names]

    def verify(self, anchor: str | None = None, *, exported: bool = True) -> VerifyResult:
        """Walk the chain; the first changed, removed, reordered or forged record fails it.

        Also fails when the append-only triggers are gone, when ``anchor`` (a head
        recorded elsewhere) is not in the chain, and -- with ``exported`` -- when the
        latest head exported to the anchors file is not in the chain.
        """
        seal = self.store.seal
        notes: list[str] = []
        try:
            missing = self.missing_triggers()
            keyed = seal.key() is not None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"audit log unreadable: {exc}") from exc
        upto = seal.legacy_upto() if keyed else 1 << 62
        latest = seal.latest() if exported else None
        if not keyed:
            if exported and seal.anchors_path.exists():
                return VerifyResult(False, 0, GENESIS, f"the audit key {seal.key_path} is missing")
            notes.append("the chain is not keyed yet (it is at the next record)")
        elif exported and latest is None:
            notes.append(f"no exported head in {seal.anchors_path}")
        prev = GENESIS
        expected_seq = 1
        count = 0
        anchor_seen = anchor is None or anchor == GENESIS
        latest_seen = latest is None or (latest.seq == 0 and latest.head == GENESIS)
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
                digest = _row_digest(seal, row, upto)
                if not hmac.compare_digest(digest, row["hash"]):
                    return VerifyResult(
                        False,
                        count,
                        prev,
                        f"record {seq} was changed after it was written, or forged "
                        "(its keyed hash does not match)",
                        seq,
                    )
                prev = digest
                expected_seq += 1
                anchor_seen = anchor_seen or digest == anchor
                if latest is not None and seq == latest.seq:
                    latest_seen = digest == latest.head
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"audit log unreadable: {exc}") from exc
        anchor_seq = latest.seq if latest is not None else None
        if missing:
            return VerifyResult(
                False,
                count,
                prev,
                f"audit_log lost its append-only trigger(s) {', '.join(missing)} "
                "(the table was rebuilt or its guards dropped)",
                None,
                anchor_seq,
            )
        if not latest_seen:
            assert latest is not None
            return VerifyResult(
                False,
                count,
                prev,
                f"the exported head (record {latest.seq}, {latest.head[:12]}...) is not in the "
                f"chain of {count} record(s): records were cut off the end, or the log was "
                "emptied or replaced",
                None,
                anchor_seq,
            )
        if not anchor_seen:
            return VerifyResult(
                False,
                count,
                prev,
                f"anchor {anchor[:12] if anchor else ''}... is not in the chain "
                "(records were cut off the end or the log was replaced)",
                None,
                anchor_seq,
            )
        return VerifyResult(True, count, prev, anchor_seq=anchor_seq, notes=tuple(notes))


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

"""The state store and the audit chain: migrations, tamper detection, concurrent writers."""

from __future__ import annotations

import itertools
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from dcops.errors import InputError, StoreError
from dcops.store import AuditLog, Store
from dcops.store.audit import GENESIS
from dcops.store.migrations import MIGRATIONS


def fill(path: Path, n: int = 5) -> AuditLog:
    log = AuditLog(Store(path), actor="alice")
    for i in range(n):
        log.record(
            "drain",
            f"gb200-r01-t{i + 1:02d}",
            outcome="ok",
            evidence={"check": "xid", "code": 79, "i": i},
        )
    return log


def tamper(path: Path, sql: str) -> None:
    """What an attacker with write access to the file can do: drop the guards, edit rows,
    and put the guards back."""
    conn = sqlite3.connect(path)
    triggers = [r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'")]
    conn.executescript("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;" + sql)
    for statement in triggers:
        conn.execute(statement)
    conn.commit()
    conn.close()


def test_fresh_store_is_migrated_and_wal(tmp_path: Path) -> None:
    store = Store(tmp_path / "sub" / "state.db")
    assert store.schema_version == len(MIGRATIONS)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "audit_log",
        "runs",
        "results",
        "node_state",
        "tenants",
        "tenant_tokens",
        "jobs",
        "baselines",
    } <= tables
    store.close()
    assert Store(tmp_path / "sub" / "state.db").schema_version == len(MIGRATIONS)  # idempotent


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this dcops"):
        Store(path)


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store(path)


def test_chain_links_and_verifies(tmp_path: Path) -> None:
    log = fill(tmp_path / "s.db")
    records = log.records()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert records[2].evidence == {"check": "xid", "code": 79, "i": 2}
    result = log.verify()
    assert result.ok and result.records == 5 and result.head == records[-1].hash


def test_append_only_guard(tmp_path: Path) -> None:
    log = fill(tmp_path / "s.db", 2)
    with pytest.raises(sqlite3.IntegrityError):
        log.store.conn.execute("UPDATE audit_log SET outcome = 'failed'")
    with pytest.raises(sqlite3.IntegrityError):
        log.store.conn.execute("DELETE FROM audit_log")


@pytest.mark.parametrize(
    ("sql", "seq", "fragment"),
    [
        ("UPDATE audit_log SET outcome = 'failed' WHERE seq = 3;", 3, "changed"),
        ('UPDATE audit_log SET evidence = \'{"check":"none"}\' WHERE seq = 2;', 2, "changed"),
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 5;", 5, "changed"),
        ("DELETE FROM audit_log WHERE seq = 3;", 3, "missing"),
        # swap records 2 and 4 wholesale (content and seq): the links no longer hold
        (
            "UPDATE audit_log SET seq = -2 WHERE seq = 2;"
            "UPDATE audit_log SET seq = 2 WHERE seq = 4;"
            "UPDATE audit_log SET seq = 4 WHERE seq = -2;"
            "CREATE TEMP TABLE t AS SELECT * FROM audit_log; DELETE FROM audit_log;"
            "INSERT INTO audit_log SELECT * FROM t ORDER BY seq;",
            2,
            "does not follow",
        ),
        ("DELETE FROM audit_log WHERE seq = 1;", 1, "missing"),
    ],
)
def test_tampering_is_detected(tmp_path: Path, sql: str, seq: int, fragment: str) -> None:
    path = tmp_path / "s.db"
    fill(path).store.close()
    tamper(path, sql)
    result = AuditLog(Store(path)).verify()
    assert not result.ok
    assert result.seq == seq
    assert fragment in (result.problem or "")


def test_recomputed_hash_after_edit_still_breaks_the_next_link(tmp_path: Path) -> None:
    from dcops.store.audit import record_hash

    path = tmp_path / "s.db"
    fill(path).store.close()
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM audit_log WHERE seq = 2").fetchone()
    forged = record_hash(
        2,
        row["ts"],
        row["actor"],
        row["action"],
        row["target"],
        row["evidence"],
        "refused",
        row["prev_hash"],
    )
    conn.close()
    tamper(path, f"UPDATE audit_log SET outcome='refused', hash='{forged}' WHERE seq = 2;")
    result = AuditLog(Store(path)).verify()
    assert not result.ok and result.seq == 2  # keyed: the forged record itself fails


def test_truncated_tail_is_caught_by_the_exported_head_and_by_an_anchor(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    log = fill(path)
    _, anchor = log.head()
    log.store.close()
    tamper(path, "DELETE FROM audit_log WHERE seq >= 4;")
    log = AuditLog(Store(path))
    assert log.verify(exported=False).ok  # a consistent, shorter chain...
    assert not log.verify().ok  # ...is caught by the head exported beside the key
    cut = log.verify(anchor=anchor, exported=False)  # ...and by an anchor kept elsewhere
    assert not cut.ok and "anchor" in (cut.problem or "")


def test_record_requires_action_and_target(tmp_path: Path) -> None:
    log = AuditLog(Store(tmp_path / "s.db"))
    with pytest.raises(InputError):
        log.record("", "n1", outcome="ok")


def test_records_filters(tmp_path: Path) -> None:
    log = fill(tmp_path / "s.db")
    log.record("resume", "gb200-r01-t01", outcome="ok")
    assert [r.action for r in log.records(limit=2)] == ["drain", "resume"]
    assert len(log.records(action="drain")) == 5
    assert [r.seq for r in log.records(target="gb200-r01-t01")] == [1, 6]


def _writer(path: str, who: str, n: int) -> None:
    log = AuditLog(Store(path), actor=who)
    for i in range(n):
        log.record("sweep", f"node{i}", outcome="ok", evidence={"writer": who, "i": i})


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), f"w{k}", 60)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    log = AuditLog(Store(path))
    records = log.records()
    assert len(records) == 180
    for k in range(3):
        mine = [r.evidence["i"] for r in records if r.actor == f"w{k}"]
        assert mine == list(range(60))  # each writer's records all there, in its order
    assert log.verify().ok


def _open_new_store(path: str) -> str:
    try:
        with Store(path) as store:
            return str(store.schema_version)
    except StoreError as exc:
        return str(exc)


def test_processes_opening_a_new_store_at_once_all_open(tmp_path: Path) -> None:
    """SQLite answers the switch to WAL with "database is locked" at once (no busy
    handler) while another process switches it: two cron jobs starting on a new
    data directory must both run, not exit 3."""
    ctx = multiprocessing.get_context("fork")
    answers: list[str] = []
    for round_ in range(12):
        path = str(tmp_path / f"r{round_}" / "state.db")
        with ctx.Pool(6) as pool:
            answers += pool.map(_open_new_store, [path] * 6)
    expected = str(len(MIGRATIONS))
    assert [a for a in answers if a != expected] == []

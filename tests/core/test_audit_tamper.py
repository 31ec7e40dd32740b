"""The audit tampering matrix: what someone who can write state.db (but not read the key) can do.

Every row must be detected by a plain ``verify()`` (no anchor passed): the chain is
keyed with a key outside the database and checked against the head exported beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dcops.store import AuditLog, Store
from dcops.store.audit import GENESIS, record_body, record_hash

DROP = "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;"


def fill(path: Path, n: int = 6) -> None:
    with Store(path) as store:
        log = AuditLog(store, actor="alice")
        for i in range(n):
            log.record("drain", f"node{i}", outcome="ok", evidence={"i": i})


def _triggers(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'")]


def _sql(path: Path, sql: str, *, keep_triggers: bool = True) -> None:
    conn = sqlite3.connect(path)
    triggers = _triggers(conn)
    conn.executescript(DROP + sql)
    if keep_triggers:
        for statement in triggers:
            conn.execute(statement)
    conn.commit()
    conn.close()


def _rows(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM audit_log ORDER BY seq")]
    conn.close()
    return rows


def _rechain(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite the table with every hash recomputed (the attacker has no key: plain SHA-256)."""
    prev = GENESIS
    conn = sqlite3.connect(path)
    triggers = _triggers(conn)
    conn.executescript(DROP + "DELETE FROM audit_log;")
    for seq, row in enumerate(rows, start=1):
        fields = (seq, row["ts"], row["actor"], row["action"], row["target"], row["evidence"])
        digest = record_hash(*fields, row["outcome"], prev)
        conn.execute(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*fields, row["outcome"], prev, digest),
        )
        prev = digest
    for statement in triggers:
        conn.execute(statement)
    conn.commit()
    conn.close()


def change(path: Path) -> None:
    _sql(path, "UPDATE audit_log SET outcome = 'refused' WHERE seq = 3;")


def delete(path: Path) -> None:
    _sql(path, "DELETE FROM audit_log WHERE seq = 3;")


def reorder(path: Path) -> None:
    _sql(
        path,
        "CREATE TEMP TABLE t AS SELECT * FROM audit_log; DELETE FROM audit_log;"
        "INSERT INTO audit_log SELECT CASE seq WHEN 2 THEN 4 WHEN 4 THEN 2 ELSE seq END,"
        " ts, actor, action, target, evidence, outcome, prev_hash, hash FROM t ORDER BY seq;",
    )


def truncate_tail(path: Path) -> None:
    _sql(path, "DELETE FROM audit_log WHERE seq >= 5;")


def empty(path: Path) -> None:
    _sql(path, "DELETE FROM audit_log;")


def rebuild_without_triggers(path: Path) -> None:
    _sql(
        path,
        "CREATE TABLE c AS SELECT * FROM audit_log; DROP TABLE audit_log;"
        "ALTER TABLE c RENAME TO audit_log;",
        keep_triggers=False,
    )


def forged_append(path: Path) -> None:
    last = _rows(path)[-1]
    seq, prev = int(str(last["seq"])) + 1, str(last["hash"])
    args = (seq, "2026-01-01T00:00:00+00:00", "alice", "resume", "node1", "{}", "ok", prev)
    forged = record_hash(*args)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*args, forged))
    conn.commit()
    conn.close()


def edit_and_rechain(path: Path) -> None:
    rows = _rows(path)
    rows[1]["evidence"] = json.dumps({"i": 99})
    _rechain(path, rows)


def rechain_with_a_guessed_key(path: Path) -> None:
    rows = _rows(path)
    rows[1]["outcome"] = "refused"
    prev = GENESIS
    conn = sqlite3.connect(path)
    conn.executescript(DROP + "DELETE FROM audit_log;")
    for seq, row in enumerate(rows, start=1):
        body = record_body(
            seq,
            str(row["ts"]),
            str(row["actor"]),
            str(row["action"]),
            str(row["target"]),
            str(row["evidence"]),
            str(row["outcome"]),
            prev,
        )
        import hmac

        digest = hmac.new(b"0" * 32, body.encode(), hashlib.sha256).hexdigest()
        conn.execute(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                seq,
                row["ts"],
                row["actor"],
                row["action"],
                row["target"],
                row["evidence"],
                row["outcome"],
                prev,
                digest,
            ),
        )
        prev = digest
    conn.commit()
    conn.close()


MATRIX = [
    change,
    delete,
    reorder,
    truncate_tail,
    empty,
    rebuild_without_triggers,
    forged_append,
    edit_and_rechain,
    rechain_with_a_guessed_key,
]


def test_untouched_chain_verifies(tmp_path: Path) -> None:
    fill(tmp_path / "state.db")
    with Store(tmp_path / "state.db") as store:
        result = AuditLog(store).verify()
    assert result.ok and result.records == 6 and result.anchor_seq == 6


@pytest.mark.parametrize("attack", MATRIX, ids=lambda f: f.__name__)
def test_every_tampering_is_detected_by_plain_verify(
    tmp_path: Path, attack: Callable[[Path], None]
) -> None:
    path = tmp_path / "state.db"
    fill(path)
    attack(path)
    with Store(path) as store:
        result = AuditLog(store).verify()
    assert not result.ok, attack
    assert result.problem


def test_key_and_anchors_live_outside_the_database_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "state.db"
    fill(path)
    key, anchors = path.with_name("audit.key"), path.with_name("audit.anchors")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(anchors.stat().st_mode) == 0o600
    assert key.read_text().strip() not in path.read_bytes().hex()
    lines = [json.loads(x) for x in anchors.read_text().splitlines()]
    assert lines[0] == {"seq": 0, "head": GENESIS, "legacy_upto": 0}
    assert [x["seq"] for x in lines[1:]] == [1, 2, 3, 4, 5, 6]


def test_key_path_from_the_caller(tmp_path: Path) -> None:
    key = tmp_path / "etc" / "dcops" / "chain.key"
    with Store(tmp_path / "state.db", audit_key=key) as store:
        AuditLog(store).record("drain", "n1", outcome="ok")
        assert AuditLog(store).verify().ok
    assert key.exists() and key.with_name("chain.anchors").exists()
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700


def test_unkeyed_store_is_sealed_on_first_keyed_record(tmp_path: Path) -> None:
    """A store written before the chain was keyed: its history is kept and bound."""
    path = tmp_path / "state.db"
    fill(path, 3)
    for name in ("audit.key", "audit.anchors"):
        path.with_name(name).unlink()
    _rechain(path, _rows(path))  # what the old dcops wrote: plain SHA-256 records
    with Store(path) as store:
        before = AuditLog(store).verify()
        assert before.ok and before.notes  # not keyed yet, says so
        AuditLog(store).record("resume", "node0", outcome="ok")
        assert AuditLog(store).verify().ok
    first = json.loads(path.with_name("audit.anchors").read_text().splitlines()[0])
    assert first["legacy_upto"] == 3
    edit_and_rechain(path)  # rewriting the unkeyed part breaks the keyed record after it
    with Store(path) as store:
        assert not AuditLog(store).verify().ok


def test_deleting_the_key_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    fill(path, 2)
    path.with_name("audit.key").unlink()
    with Store(path) as store:
        assert not AuditLog(store).verify().ok


def test_state_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "data" / "state.db"
        fill(path, 1)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for suffix in ("", "-wal", "-shm"):
        file = Path(f"{path}{suffix}")
        if file.exists():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_loose_modes_are_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.db"
    fill(path, 1)
    path.chmod(0o644)
    with caplog.at_level("WARNING", logger="dcops.store"), Store(path):
        pass
    assert any("chmod 600" in r.getMessage() for r in caplog.records)


def test_heads_go_to_syslog_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import syslog

    sent: list[str] = []
    monkeypatch.setattr(syslog, "openlog", lambda *a, **k: None)
    monkeypatch.setattr(syslog, "syslog", lambda prio, msg: sent.append(msg))
    with Store(tmp_path / "state.db") as store:
        store.seal.syslog = True  # as when /dev/log exists
        record = AuditLog(store).record("drain", "n1", outcome="ok")
    assert sent == [f"audit head seq=1 hash={record.hash}"]


def test_the_key_appears_whole_and_after_its_legacy_line(tmp_path: Path) -> None:
    """A reader in another process (ownership checks read the key outside any
    transaction) must never find an empty key, or a key whose legacy line is not
    written yet: it would fail the run or judge old records with the wrong hash."""
    from dcops.store.seal import Anchor, AuditSeal

    seal = AuditSeal(tmp_path / "audit.key", syslog=False)
    seen: list[bool] = []
    plain_append = seal._append

    def watching(entry: dict[str, object]) -> None:
        seen.append(seal.key_path.exists())
        plain_append(entry)

    seal._append = watching  # type: ignore[method-assign]
    key = seal.create(Anchor(4, "ab" * 32))
    assert seen == [False]  # the legacy line went out before the key was visible
    assert (tmp_path / "audit.key").read_text().strip() == key.hex()
    assert AuditSeal(tmp_path / "audit.key", syslog=False).legacy_upto() == 4
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    again = AuditSeal(tmp_path / "audit.key", syslog=False)
    assert again.create(Anchor(9, "cd" * 32)) == key  # the first one wins


def _first_records(path: str, worker: int) -> str:
    with Store(path) as store:
        log = AuditLog(store, actor=f"w{worker}")
        for i in range(5):
            log.matching(("drain",), "i", str(i))
            log.record("drain", f"node{worker}-{i}", outcome="ok", evidence={"i": i})
    return "ok"


def test_processes_racing_on_a_new_store_all_land(tmp_path: Path) -> None:
    import concurrent.futures
    import multiprocessing

    path = str(tmp_path / "state.db")
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=ctx) as pool:
        results = list(pool.map(_first_records, [path] * 4, range(4)))
    assert results == ["ok"] * 4
    with Store(path) as store:
        log = AuditLog(store)
        assert log.verify().ok
        assert store.conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] == 20

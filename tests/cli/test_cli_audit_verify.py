"""``dcops audit verify`` with no arguments: exit 1 after a tail cut or a trigger-less rebuild."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from dcops.store import AuditLog, Store
from scheduler.tenants.store import create_tenant
from scheduler.tenants.tokens import issue_token, revoke_token
from tests.cli.test_cli_core import dcops
from tests.core.test_audit_tamper import rebuild_without_triggers, truncate_tail
from tests.scheduler.conftest import make_tenant


def _filled(tmp_path: Path) -> Path:
    db = tmp_path / "state.db"
    with Store(db) as store:
        log = AuditLog(store, actor="ops")
        for i in range(6):
            log.record("drain", f"n{i}", outcome="ok")
    return db


def test_verify_passes_untouched(tmp_path: Path) -> None:
    db = _filled(tmp_path)
    ok = dcops("--state-db", str(db), "audit", "verify", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["anchor_seq"] == 6


@pytest.mark.parametrize("attack", [truncate_tail, rebuild_without_triggers])
def test_verify_without_arguments_exits_1(tmp_path: Path, attack: Callable[[Path], None]) -> None:
    db = _filled(tmp_path)
    attack(db)
    bad = dcops("--state-db", str(db), "audit", "verify")
    assert bad.returncode == 1, (bad.stdout, bad.stderr)
    assert "TAMPERED" in bad.stdout


def test_audit_key_path_from_config(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "audit.key"
    conf = tmp_path / "config.toml"
    conf.write_text(f'audit_key = "{key}"\nstate_db = "{tmp_path / "s.db"}"\n')
    proc = dcops(
        "--config",
        str(conf),
        "tenant",
        "create",
        "acme",
        "--gpu-quota",
        "4",
        "--output-root",
        str(tmp_path),
        "--slurm-account",
        "acme",
    )
    assert proc.returncode == 0, proc.stderr
    assert key.exists() and not (tmp_path / "audit.key").exists()
    assert dcops("--config", str(conf), "audit", "verify").returncode == 0


def test_verify_reports_an_un_revoked_token(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with Store(db) as store:
        audit = AuditLog(store, actor="ops")
        create_tenant(store, make_tenant(tmp_path), audit)
        issued = issue_token(store, "acme", audit)
        revoke_token(store, issued.token_id, audit)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE tenant_tokens SET revoked_at = NULL")
    conn.commit()
    conn.close()
    bad = dcops("--state-db", str(db), "audit", "verify", "--json")
    assert bad.returncode == 1
    assert "revoked in the audit log" in json.loads(bad.stdout)["token_problems"][0]


def test_tenant_output_root_is_audited_and_a_hand_edit_fails_verify(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    root = tmp_path / "out"
    with Store(db) as store:
        create_tenant(store, make_tenant(root), AuditLog(store, actor="op"))
    extra = str(tmp_path / "more")
    added = dcops("--state-db", str(db), "tenant", "output-root", "acme", "--add", extra, "--json")
    assert added.returncode == 0, added.stderr
    assert extra in json.loads(added.stdout)["output_roots"]
    bad = dcops("--state-db", str(db), "tenant", "output-root", "acme", "--add", "rel/path")
    assert bad.returncode == 2 and bad.stderr.startswith("dcops: error: "), bad.stderr
    none = dcops("--state-db", str(db), "tenant", "output-root", "acme")
    assert none.returncode == 2, none.stderr
    assert dcops("--state-db", str(db), "audit", "verify").returncode == 0
    conn = sqlite3.connect(db)
    conn.execute("UPDATE tenants SET contract = json_set(contract, '$.gpu_quota', 999)")
    conn.commit()
    conn.close()
    tampered = dcops("--state-db", str(db), "audit", "verify", "--json")
    assert tampered.returncode == 1, tampered.stdout
    assert any("gpu_quota" in p for p in json.loads(tampered.stdout)["tenant_problems"])
    shown = dcops("--state-db", str(db), "tenant", "show", "acme")
    assert shown.returncode == 3 and "differs from the audited one" in shown.stderr, shown.stderr

"""A token row edited in the database disagrees with its audited history and fails closed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dcops.errors import AuthenticationError
from dcops.store import AuditLog, Store
from scheduler.tenants.store import create_tenant
from scheduler.tenants.tokens import (
    authenticate,
    issue_token,
    revoke_token,
    token_audit_problems,
    token_hash,
)
from tests.scheduler.conftest import make_tenant


@pytest.fixture
def store(tmp_path: Path, root: Path) -> Store:
    store = Store(tmp_path / "state.db")
    create_tenant(store, make_tenant(root), AuditLog(store, actor="op"))
    create_tenant(store, make_tenant(root, name="globex"), AuditLog(store, actor="op"))
    return store


def _raw(store: Store, sql: str, *args: object) -> None:
    """What someone with write access to state.db does, outside dcops."""
    conn = sqlite3.connect(store.path)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def test_un_revoking_a_token_with_one_update_does_not_authenticate(store: Store) -> None:
    audit = AuditLog(store, actor="op")
    issued = issue_token(store, "acme", audit)
    assert authenticate(store, issued.token).name == "acme"
    revoke_token(store, issued.token_id, audit)
    _raw(store, "UPDATE tenant_tokens SET revoked_at = NULL WHERE token_id = ?", issued.token_id)
    with pytest.raises(AuthenticationError, match="revoked in the audit log"):
        authenticate(store, issued.token)
    assert any("revoked in the audit log" in p for p in token_audit_problems(store))


def test_a_token_row_inserted_by_hand_does_not_authenticate(store: Store) -> None:
    token_id, secret = "0123456789abcdef", "A" * 43
    _raw(
        store,
        "INSERT INTO tenant_tokens (token_id, tenant, token_hash, created_at) VALUES (?,?,?,?)",
        token_id,
        "acme",
        token_hash(token_id, secret),
        "2026-01-01T00:00:00+00:00",
    )
    with pytest.raises(AuthenticationError, match="no audited creation"):
        authenticate(store, f"dct_{token_id}.{secret}")


def test_moving_a_token_to_another_tenant_or_extending_it_fails_closed(store: Store) -> None:
    audit = AuditLog(store, actor="op")
    issued = issue_token(store, "acme", audit)
    _raw(store, "UPDATE tenant_tokens SET tenant = 'globex' WHERE token_id = ?", issued.token_id)
    with pytest.raises(AuthenticationError, match="tenant differs"):
        authenticate(store, issued.token)
    other = issue_token(store, "acme", audit, expires_days=1)
    _raw(store, "UPDATE tenant_tokens SET expires_at = NULL WHERE token_id = ?", other.token_id)
    with pytest.raises(AuthenticationError, match="expiry differs"):
        authenticate(store, other.token)


def test_replacing_a_token_hash_fails_closed(store: Store) -> None:
    issued = issue_token(store, "acme", AuditLog(store, actor="op"))
    mine = "B" * 43
    _raw(
        store,
        "UPDATE tenant_tokens SET token_hash = ? WHERE token_id = ?",
        token_hash(issued.token_id, mine),
        issued.token_id,
    )
    with pytest.raises(AuthenticationError, match="hash differs"):
        authenticate(store, f"dct_{issued.token_id}.{mine}")


def test_untouched_tokens_agree_with_the_audit(store: Store) -> None:
    audit = AuditLog(store, actor="op")
    for _ in range(3):
        issue_token(store, "acme", audit)
    assert token_audit_problems(store) == []


# --- tenant contracts: a row edited outside dcops fails closed (issue 11 §3) ---


@pytest.mark.parametrize(
    ("sql", "field"),
    [
        (
            "UPDATE tenants SET contract = json_set(contract, '$.gpu_quota', 4096)"
            " WHERE name = 'acme'",
            "gpu_quota",
        ),
        (
            "UPDATE tenants SET contract = json_set(contract, '$.output_roots[0]', '/srv/globex')"
            " WHERE name = 'acme'",
            "output_roots",
        ),
        (
            "UPDATE tenants SET contract = json_set(contract, '$.slurm_account', 'globex')"
            " WHERE name = 'acme'",
            "slurm_account",
        ),
    ],
)
def test_a_tenant_contract_edited_by_hand_fails_closed(store: Store, sql: str, field: str) -> None:
    from dcops.errors import StoreError
    from scheduler.tenants.store import get_tenant, tenant_audit_problems

    issued = issue_token(store, "acme", AuditLog(store, actor="op"))
    assert tenant_audit_problems(store) == []
    _raw(store, sql)
    with pytest.raises(StoreError, match=f"differs from the audited one \\({field}\\)"):
        get_tenant(store, "acme")
    with pytest.raises(StoreError, match="refused"):
        authenticate(store, issued.token)
    problems = tenant_audit_problems(store)
    assert len(problems) == 1 and "acme" in problems[0]
    assert get_tenant(store, "globex").name == "globex"  # the other tenant is unaffected


def test_a_tenant_row_inserted_by_hand_is_refused(store: Store) -> None:
    from dcops.errors import StoreError
    from scheduler.tenants.store import get_tenant

    _raw(
        store,
        "INSERT INTO tenants (name, contract, created_at, updated_at)"
        " SELECT 'initech', json_set(contract, '$.name', 'initech', '$.slurm_account', 'initech'),"
        " created_at, updated_at FROM tenants WHERE name = 'acme'",
    )
    with pytest.raises(StoreError, match="no audited creation"):
        get_tenant(store, "initech")


def test_audited_changes_keep_the_contract_usable(store: Store, root: Path) -> None:
    from scheduler.tenants.store import (
        get_tenant,
        set_output_roots,
        set_quota,
        tenant_audit_problems,
    )

    audit = AuditLog(store, actor="op")
    set_quota(store, "acme", 64, audit)
    extra = str(root / "extra")
    set_output_roots(store, "acme", audit, add=(extra,))
    contract = get_tenant(store, "acme")
    assert contract.gpu_quota == 64 and extra in contract.output_roots
    assert tenant_audit_problems(store) == []
    set_output_roots(store, "acme", audit, remove=(extra,))
    assert extra not in get_tenant(store, "acme").output_roots
    actions = [r.action for r in audit.records(target="tenant:acme")]
    assert actions == [
        "tenant.create",
        "tenant.quota",
        "tenant.output_roots",
        "tenant.output_roots",
    ]

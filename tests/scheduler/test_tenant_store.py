"""Tenant contracts and API tokens in the state store: persistence, hashing, expiry, revocation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dcops.errors import AuthenticationError, InputError, UnknownNameError
from dcops.store import AuditLog, Store
from scheduler.tenants.contract import TenantContract
from scheduler.tenants.store import (
    contract_to_dict,
    create_tenant,
    get_tenant,
    list_tenants,
    set_quota,
)
from scheduler.tenants.tokens import (
    authenticate,
    issue_token,
    list_tokens,
    revoke_token,
    token_hash,
)
from tests.scheduler.conftest import make_tenant


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state.db")


@pytest.fixture
def audit(store: Store) -> AuditLog:
    return AuditLog(store, actor="op")


@pytest.fixture
def acme(store: Store, audit: AuditLog, root: Path) -> TenantContract:
    return create_tenant(store, make_tenant(root, allowed_backends=frozenset({"slurm"})), audit)


def test_contract_round_trips_through_the_store(store: Store, acme: TenantContract) -> None:
    assert get_tenant(store, "acme") == acme
    assert list_tenants(store) == [acme]
    assert contract_to_dict(acme)["allowed_backends"] == ["slurm"]


def test_duplicate_and_unknown_tenants_are_clear_errors(
    store: Store, audit: AuditLog, acme: TenantContract
) -> None:
    with pytest.raises(InputError, match="already exists"):
        create_tenant(store, acme, audit)
    with pytest.raises(UnknownNameError, match="known: acme"):
        get_tenant(store, "nobody")


def test_quota_change_is_validated_and_audited(
    store: Store, audit: AuditLog, acme: TenantContract
) -> None:
    assert set_quota(store, "acme", 8, audit).gpu_quota == 8
    assert get_tenant(store, "acme").gpu_quota == 8
    with pytest.raises(InputError):
        set_quota(store, "acme", -1, audit)
    actions = [r.action for r in audit.records()]
    assert actions == ["tenant.create", "tenant.quota"]
    assert audit.verify().ok


def test_token_authenticates_its_tenant_and_secret_is_never_stored(
    store: Store, audit: AuditLog, acme: TenantContract
) -> None:
    issued = issue_token(store, "acme", audit, expires_days=1)
    assert issued.token.startswith(f"dct_{issued.token_id}.")
    assert authenticate(store, issued.token) == acme
    secret = issued.token.split(".", 1)[1]
    dump = "\n".join(store.conn.iterdump())
    assert secret not in dump and issued.token not in dump
    assert token_hash(issued.token_id, secret) in dump
    assert secret not in repr(issued)
    assert [t.token_id for t in list_tokens(store, "acme")] == [issued.token_id]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: "dct_0123456789abcdef." + t.split(".", 1)[1],  # unknown id
        lambda t: t.replace("dct_", "xxx_"),  # malformed
        lambda t: "",
        lambda t: t + "\n" + t,
    ],
)
def test_wrong_tokens_are_refused_without_echoing_them(
    store: Store, audit: AuditLog, acme: TenantContract, mangle: Callable[[str], str]
) -> None:
    issued = issue_token(store, "acme", audit)
    bad = mangle(issued.token)
    with pytest.raises(AuthenticationError) as err:
        authenticate(store, bad)
    assert issued.token.split(".", 1)[1] not in str(err.value)


def test_revoked_token_is_refused(store: Store, audit: AuditLog, acme: TenantContract) -> None:
    issued = issue_token(store, "acme", audit)
    info = revoke_token(store, issued.token_id, audit)
    assert info.state() == "revoked"
    with pytest.raises(AuthenticationError, match="revoked"):
        authenticate(store, issued.token)
    with pytest.raises(UnknownNameError):
        revoke_token(store, "ffffffffffffffff", audit)
    evidence = [r.evidence for r in audit.records() if r.action.startswith("tenant.token")]
    assert all(issued.token not in str(e) for e in evidence)


def test_expired_token_is_refused(store: Store, audit: AuditLog, acme: TenantContract) -> None:
    issued = issue_token(store, "acme", audit, expires_days=1)
    later = datetime.now(UTC) + timedelta(days=2)
    assert authenticate(store, issued.token, now=datetime.now(UTC)) == acme
    with pytest.raises(AuthenticationError, match="expired"):
        authenticate(store, issued.token, now=later)
    assert list_tokens(store)[0].state(later) == "expired"


def test_token_lifetime_and_tenant_are_checked(
    store: Store, audit: AuditLog, acme: TenantContract
) -> None:
    with pytest.raises(InputError, match="expires-days"):
        issue_token(store, "acme", audit, expires_days=0)
    with pytest.raises(UnknownNameError):
        issue_token(store, "ghost", audit)


def test_authentication_error_maps_to_input_exit_code() -> None:
    assert int(AuthenticationError("x").exit_code) == 2
    assert dataclasses.is_dataclass(TenantContract)

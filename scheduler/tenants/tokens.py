"""API tokens of tenants: issued once, stored hashed, revocable, expiring.

A token reads ``dct_<token_id>.<secret>``: ``token_id`` (16 hex digits) is
public -- operators see it in ``dcops tenant token``/``revoke`` and the audit
log; ``secret`` (``secrets.token_urlsafe(32)``, 256 bits) is shown once at
creation and never stored, logged or put in an error message. The store keeps
``sha256("dcops-token:" + token_id + ":" + secret)``; :func:`authenticate`
recomputes it and compares with :func:`hmac.compare_digest`.

:func:`authenticate` is the only way the API server learns who the caller is.
Every failure (malformed, unknown, wrong secret, revoked, expired, tenant gone)
raises :class:`AuthenticationError` whose message never holds the token; the
API maps it to HTTP 401.

The ``tenant_tokens`` row is not trusted alone: creating and revoking a token
are audit records in the keyed chain, and a token authenticates only when its
row agrees with them (created by dcops, same tenant, same hash and expiry,
never revoked). A row edited in the database -- an ``UPDATE`` that clears
``revoked_at``, a token inserted by hand, an expiry pushed out -- fails closed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dcops.errors import AuthenticationError, InputError, UnknownNameError
from dcops.store import AuditLog, Store, utc_now
from scheduler.tenants.contract import TenantContract
from scheduler.tenants.store import get_tenant

PREFIX = "dct_"
_TOKEN_RE = re.compile(r"dct_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})")
#: Longest lifetime an operator may give a token.
MAX_EXPIRES_DAYS = 3650
#: Hex digits of the stored hash recorded in the audit log (binds the row; not a secret).
HASH_PREFIX_LEN = 32
TOKEN_ACTIONS = ("tenant.token.create", "tenant.token.revoke")


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued token. ``token`` holds the secret: show it once, never store it."""

    token_id: str
    tenant: str
    token: str
    created_at: str
    expires_at: str | None

    def __repr__(self) -> str:  # keep the secret out of tracebacks and logs
        return f"IssuedToken(token_id={self.token_id!r}, tenant={self.tenant!r}, token='***')"


@dataclass(frozen=True)
class TokenInfo:
    """A stored token without its secret."""

    token_id: str
    tenant: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None

    def state(self, now: datetime | None = None) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and _parse_ts(self.expires_at) <= (now or datetime.now(UTC)):
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state()}


def token_hash(token_id: str, secret: str) -> str:
    """The stored form of a token (hex sha256, bound to its id)."""
    return hashlib.sha256(f"dcops-token:{token_id}:{secret}".encode()).hexdigest()


def _parse_ts(text: str) -> datetime:
    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def issue_token(
    store: Store, tenant: str, audit: AuditLog, *, expires_days: float | None = 90
) -> IssuedToken:
    """Create a token for ``tenant``; the returned ``token`` is the only copy of the secret."""
    get_tenant(store, tenant)  # UnknownNameError when absent
    if expires_days is not None and not 0 < expires_days <= MAX_EXPIRES_DAYS:
        raise InputError(f"expires-days: must be > 0 and <= {MAX_EXPIRES_DAYS}")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    created = datetime.now(UTC)
    expires = None if expires_days is None else created + timedelta(days=expires_days)
    created_s = created.isoformat(timespec="microseconds")
    expires_s = None if expires is None else expires.isoformat(timespec="microseconds")
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO tenant_tokens (token_id, tenant, token_hash, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (token_id, tenant, token_hash(token_id, secret), created_s, expires_s),
        )
    audit.record(
        "tenant.token.create",
        f"tenant:{tenant}",
        outcome="ok",
        evidence={
            "token_id": token_id,
            "expires_at": expires_s,
            "hash_prefix": token_hash(token_id, secret)[:HASH_PREFIX_LEN],
        },
    )
    return IssuedToken(token_id, tenant, f"{PREFIX}{token_id}.{secret}", created_s, expires_s)


def revoke_token(store: Store, token_id: str, audit: AuditLog) -> TokenInfo:
    """Revoke a token by its public id (idempotent: revoking twice keeps the first time)."""
    with store.transaction() as conn:
        conn.execute(
            "UPDATE tenant_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
            (utc_now(), token_id),
        )
    info = _token_info(store, token_id)
    audit.record(
        "tenant.token.revoke",
        f"tenant:{info.tenant}",
        outcome="ok",
        evidence={"token_id": token_id, "revoked_at": info.revoked_at},
    )
    return info


def _token_info(store: Store, token_id: str) -> TokenInfo:
    row = store.conn.execute(
        "SELECT token_id, tenant, created_at, expires_at, revoked_at FROM tenant_tokens"
        " WHERE token_id = ?",
        (token_id,),
    ).fetchone()
    if row is None:
        raise UnknownNameError("token id", token_id, [])
    return TokenInfo(**dict(row))


def list_tokens(store: Store, tenant: str | None = None) -> list[TokenInfo]:
    sql = "SELECT token_id, tenant, created_at, expires_at, revoked_at FROM tenant_tokens"
    args: tuple[str, ...] = ()
    if tenant is not None:
        sql += " WHERE tenant = ?"
        args = (tenant,)
    return [TokenInfo(**dict(r)) for r in store.conn.execute(sql + " ORDER BY created_at", args)]


_DUMMY_HASH = token_hash("0" * 16, "x" * 43)


def authenticate(store: Store, token: str, *, now: datetime | None = None) -> TenantContract:
    """The tenant a bearer token belongs to, or :class:`AuthenticationError` (HTTP 401).

    The message says why (malformed / unknown or wrong / revoked / expired)
    but never repeats the token. Unknown ids still cost one hash comparison.
    """
    match = _TOKEN_RE.fullmatch(token.strip()) if isinstance(token, str) else None
    if match is None:
        raise AuthenticationError("invalid API token (malformed)")
    token_id, secret = match.groups()
    row = store.conn.execute(
        "SELECT tenant, token_hash, expires_at, revoked_at FROM tenant_tokens WHERE token_id = ?",
        (token_id,),
    ).fetchone()
    computed = token_hash(token_id, secret)
    if row is None:
        hmac.compare_digest(computed, _DUMMY_HASH)
        raise AuthenticationError("invalid API token (unknown or wrong secret)")
    if not hmac.compare_digest(computed, row["token_hash"]):
        raise AuthenticationError("invalid API token (unknown or wrong secret)")
    if row["revoked_at"]:
        raise AuthenticationError(f"API token {token_id} was revoked")
    disagreement = audited_disagreement(store, token_id, dict(row))
    if disagreement is not None:
        raise AuthenticationError(f"API token {token_id}: {disagreement}; refused")
    if row["expires_at"] and _parse_ts(row["expires_at"]) <= (now or datetime.now(UTC)):
        raise AuthenticationError(f"API token {token_id} expired at {row['expires_at']}")
    try:
        return get_tenant(store, row["tenant"])
    except UnknownNameError as exc:
        raise AuthenticationError(f"API token {token_id}: its tenant no longer exists") from exc


def audited_disagreement(store: Store, token_id: str, row: dict[str, Any]) -> str | None:
    """Why the token row ``row`` disagrees with its audited history, or None if it agrees.

    ``row`` holds ``tenant``, ``token_hash``, ``expires_at`` and ``revoked_at``.
    """
    events = AuditLog(store).matching(TOKEN_ACTIONS, "token_id", token_id)
    if any(not authentic for _, authentic in events):
        return "its audit records were altered"
    created = [r for r, _ in events if r.action == "tenant.token.create"]
    if not created:
        return "no audited creation (the row was written outside dcops)"
    record = created[0]
    if record.target != f"tenant:{row['tenant']}":
        return "its tenant differs from the audited one"
    prefix = record.evidence.get("hash_prefix")
    if prefix is not None and not hmac.compare_digest(
        str(prefix), str(row["token_hash"])[:HASH_PREFIX_LEN]
    ):
        return "its stored hash differs from the audited one"
    if record.evidence.get("expires_at") != row["expires_at"]:
        return "its expiry differs from the audited one"
    if any(r.action == "tenant.token.revoke" for r, _ in events) and not row["revoked_at"]:
        return "revoked in the audit log"
    return None


def token_audit_problems(store: Store) -> list[str]:
    """Every stored token whose row disagrees with its audited history (for ``audit verify``)."""
    out = []
    rows = store.conn.execute(
        "SELECT token_id, tenant, token_hash, expires_at, revoked_at FROM tenant_tokens"
    ).fetchall()
    for row in rows:
        problem = audited_disagreement(store, row["token_id"], dict(row))
        if problem is not None:
            out.append(f"token {row['token_id']}: {problem}")
    return out

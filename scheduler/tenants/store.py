"""Tenant contracts in the state store (``tenants`` table, contract as JSON).

Every change is recorded in the audit log by the caller's :class:`AuditLog`;
reads never are. Contracts are validated on the way in (construction of
:class:`TenantContract`) and again on the way out (:func:`tenant_from_dict`),
so a hand-edited row is refused with a clear error instead of misbehaving.

A row that is valid but differs from its audited history fails closed too:
every audited change carries the whole contract after it (``evidence.contract``),
and every read compares the stored row with the latest authentic one. Raising a
quota or adding an output root with one ``UPDATE tenants ...`` (someone who can
write ``state.db`` but not the audit key) makes that tenant unusable — the API
answers 503, the CLI exits 3 — and ``dcops audit verify`` names it, until an
operator puts it right through ``dcops tenant`` (audited).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any

from dcops.errors import InputError, StoreError, UnknownNameError
from dcops.store import AuditLog, Store, utc_now
from scheduler.tenants.contract import TenantContract, tenant_from_dict


def contract_to_dict(contract: TenantContract) -> dict[str, Any]:
    """A JSON-ready mapping that :func:`tenant_from_dict` reads back unchanged."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(contract):
        value = getattr(contract, f.name)
        if isinstance(value, frozenset):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


#: Audit actions whose evidence holds a tenant's whole contract after the change.
TENANT_ACTIONS = ("tenant.create", "tenant.quota", "tenant.output_roots")


def _decode(store: Store, name: str, text: str) -> TenantContract:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StoreError(f"tenant {name!r}: stored contract is not JSON") from exc
    try:
        contract = tenant_from_dict(data, source=f"stored tenant {name!r}")
    except InputError as exc:
        raise StoreError(str(exc)) from exc
    problem = audited_disagreement(store, name, contract)
    if problem is not None:
        raise StoreError(f"tenant {name!r}: {problem}; refused (fix it with `dcops tenant`)")
    return contract


def audited_disagreement(store: Store, name: str, contract: TenantContract) -> str | None:
    """Why the stored ``contract`` of ``name`` differs from its audited history, or None."""
    events = AuditLog(store).matching(TENANT_ACTIONS, "contract.name", name)
    if any(not authentic for _, authentic in events):
        return "its audit records were altered"
    if not events:
        return "no audited creation (the row was written outside dcops)"
    audited = events[-1][0].evidence.get("contract")
    stored = contract_to_dict(contract)
    if not isinstance(audited, dict):
        return "its last audited change holds no contract"
    changed = sorted(k for k in stored.keys() | audited.keys() if stored.get(k) != audited.get(k))
    if changed:
        return f"stored contract differs from the audited one ({', '.join(changed)})"
    return None


def tenant_audit_problems(store: Store) -> list[str]:
    """Every stored tenant whose row disagrees with its audited history (for ``audit verify``)."""
    out = []
    for row in store.conn.execute("SELECT name, contract FROM tenants ORDER BY name"):
        try:
            _decode(store, row["name"], row["contract"])
        except StoreError as exc:
            out.append(str(exc))
    return out


def create_tenant(store: Store, contract: TenantContract, audit: AuditLog) -> TenantContract:
    """Store a new tenant; an existing name is refused (InputError, nothing changed)."""
    now = utc_now()
    body = json.dumps(contract_to_dict(contract), sort_keys=True)
    try:
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO tenants (name, contract, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (contract.name, body, now, now),
            )
    except sqlite3.IntegrityError as exc:
        raise InputError(f"tenant {contract.name!r} already exists") from exc
    audit.record(
        "tenant.create",
        f"tenant:{contract.name}",
        outcome="ok",
        evidence={"contract": contract_to_dict(contract)},
    )
    return contract


def get_tenant(store: Store, name: str) -> TenantContract:
    """The stored contract of ``name``; UnknownNameError lists the known tenants."""
    row = store.conn.execute("SELECT contract FROM tenants WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise UnknownNameError("tenant", name, tenant_names(store))
    return _decode(store, name, row["contract"])


def tenant_names(store: Store) -> list[str]:
    return [r["name"] for r in store.conn.execute("SELECT name FROM tenants ORDER BY name")]


def list_tenants(store: Store) -> list[TenantContract]:
    rows = store.conn.execute("SELECT name, contract FROM tenants ORDER BY name")
    return [_decode(store, r["name"], r["contract"]) for r in rows]


def update_tenant(
    store: Store,
    contract: TenantContract,
    audit: AuditLog,
    *,
    action: str,
    evidence: dict[str, Any],
) -> TenantContract:
    """Replace the stored contract of an existing tenant (audited as ``action``)."""
    body = json.dumps(contract_to_dict(contract), sort_keys=True)
    with store.transaction() as conn:
        cur = conn.execute(
            "UPDATE tenants SET contract = ?, updated_at = ? WHERE name = ?",
            (body, utc_now(), contract.name),
        )
        if cur.rowcount != 1:
            raise UnknownNameError("tenant", contract.name, tenant_names(store))
    audit.record(
        action,
        f"tenant:{contract.name}",
        outcome="ok",
        evidence={**evidence, "contract": contract_to_dict(contract)},
    )
    return contract


def set_quota(store: Store, name: str, gpus: int, audit: AuditLog) -> TenantContract:
    """Change the tenant's GPU quota (the bridge enforces it at once; ``sync`` tells Slurm)."""
    old = get_tenant(store, name)
    new = dataclasses.replace(old, gpu_quota=gpus)  # validated again (gpus >= 0)
    return update_tenant(
        store,
        new,
        audit,
        action="tenant.quota",
        evidence={"gpu_quota": {"from": old.gpu_quota, "to": gpus}},
    )


def set_output_roots(
    store: Store,
    name: str,
    audit: AuditLog,
    *,
    add: tuple[str, ...] = (),
    remove: tuple[str, ...] = (),
) -> TenantContract:
    """Add and remove output roots of tenant ``name`` (validated; audited ``tenant.output_roots``).

    Removing a root the tenant does not have, or every root, is refused (InputError);
    nothing changes then.
    """
    old = get_tenant(store, name)
    unknown = [r for r in remove if r not in old.output_roots]
    if unknown:
        raise InputError(f"tenant {name!r} has no output root {unknown[0]!r}")
    roots = [r for r in old.output_roots if r not in remove]
    roots += [r for r in add if r not in roots]
    new = dataclasses.replace(old, output_roots=tuple(roots))  # validated again (absolute, ...)
    return update_tenant(
        store,
        new,
        audit,
        action="tenant.output_roots",
        evidence={"output_roots": {"from": list(old.output_roots), "to": roots}},
    )

"""The state store (SQLite, WAL) and the hash-chained audit log."""

from dcops.store.audit import AuditLog, AuditRecord, VerifyResult
from dcops.store.db import Store, utc_now

__all__ = ["AuditLog", "AuditRecord", "Store", "VerifyResult", "utc_now"]

"""XID rules as burn-in statuses; the table itself lives in :mod:`dcops.xid`."""

from __future__ import annotations

from burnin.verdicts.status import Status
from dcops.xid import RECOVERY_ACTIONS, XID_TABLE, XidRule, classify_xid

__all__ = ["RECOVERY_ACTIONS", "XID_TABLE", "XidRule", "classify_xid", "xid_status"]

_BY_SEVERITY = {"ignore": Status.PASS, "warn": Status.WARN, "fail": Status.FAIL}


def xid_status(rule: XidRule) -> Status:
    """The burn-in status of an XID: fail for critical, warn for non-critical, pass for 45."""
    return _BY_SEVERITY.get(rule.severity, Status.FAIL)

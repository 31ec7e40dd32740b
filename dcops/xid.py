"""XID codes -> severity and the operator's action (FACTS.md, from NVIDIA's Xid catalog).

Shared by burn-in verdicts and health checks (one table, one place to update).

Critical XIDs fail a burn-in; non-critical ones (Meta GCM's list: 13, 31, 43,
45, 63, 68, 92, 109) warn, except 45 (preemptive cleanup), which is ignored.
A code in neither list is treated as critical: an unknown fault is not a pass.
Re-check the table per driver release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class XidRule:
    code: int
    what: str
    critical: bool
    action: str

    @property
    def severity(self) -> str:
        """``ignore`` (45, preemptive cleanup), ``warn`` (non-critical) or ``fail``."""
        if self.code == 45:
            return "ignore"
        return "fail" if self.critical else "warn"


_NVLINK5 = "NVLink5 error: run the NVLink workflow"

XID_TABLE: dict[int, XidRule] = {
    rule.code: rule
    for rule in (
        XidRule(13, "graphics engine exception (app fault)", False, "restart the application"),
        XidRule(31, "GPU memory page fault (app fault)", False, "restart the application"),
        XidRule(43, "GPU stopped processing (app fault)", False, "restart the application"),
        XidRule(45, "preemptive cleanup", False, "none (ignore)"),
        XidRule(48, "double-bit ECC error", True, "drain, reset the GPU"),
        XidRule(63, "row remap pending", False, "reset the GPU when idle"),
        XidRule(64, "row remap failed", True, "reset the GPU, then service"),
        XidRule(68, "video processor exception", False, "restart the application"),
        XidRule(74, "NVLink error", True, "run the NVLink workflow"),
        XidRule(79, "GPU fell off the bus", True, "drain, reboot, then check mechanicals"),
        XidRule(92, "high single-bit ECC rate", False, "monitor"),
        XidRule(94, "contained ECC error", True, "restart the application; drain if repeated"),
        XidRule(95, "uncontained ECC error", True, "drain, reset the GPU"),
        XidRule(109, "context switch timeout", False, "restart the application"),
        XidRule(119, "GSP RPC timeout", True, "reset the GPU, reboot if it persists"),
        XidRule(120, "GSP error", True, "reset the GPU, reboot if it persists"),
        *(XidRule(c, "NVLink5 error", True, _NVLINK5) for c in range(144, 151)),
        XidRule(154, "recovery action required", True, "follow the driver's recovery action"),
    )
}

#: XID 154 recovery actions the driver may print, and whether each needs an operator.
RECOVERY_ACTIONS = ("NONE", "GPU_RESET", "NODE_REBOOT", "DRAIN_P2P", "DRAIN_AND_RESET")
_ACTION_RE = re.compile(r"\b(" + "|".join(RECOVERY_ACTIONS) + r")\b")


def classify_xid(code: int, message: str = "") -> XidRule:
    """The rule for ``code``; XID 154 takes its action from the driver's message."""
    rule = XID_TABLE.get(code)
    if rule is None:
        return XidRule(code, "unlisted XID", True, "consult the NVIDIA Xid catalog")
    if code == 154:
        found = _ACTION_RE.search(message)
        if found is not None:
            action = found.group(1)
            if action == "NONE":
                return XidRule(code, rule.what, False, "none required by the driver")
            return XidRule(code, rule.what, True, f"driver recovery action {action}")
    return rule

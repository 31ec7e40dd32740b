"""XID codes -> severity and the operator's action, for burn-in verdicts and health checks.

Every XID of NVIDIA's catalog (:mod:`dcops.xid.catalog`) has a rule. The
operator's action for the common ones is written out here (FACTS.md); the rest
take it from the catalog's immediate bucket. Critical XIDs fail a burn-in;
non-critical ones (Meta GCM's list: 13, 31, 43, 45, 63, 68, 92, 109) warn,
except 45 (preemptive cleanup), which is ignored. A code the catalog does not
hold is critical: an unknown fault is not a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from dcops.xid.catalog import catalog
from dcops.xid.recovery import RecoveryAction, recovery_action


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


#: Meta GCM's non-critical XIDs.
NON_CRITICAL = frozenset({13, 31, 43, 45, 63, 68, 92, 109})

_NVLINK5 = "NVLink5 error: run the NVLink workflow"

#: Operator wording for the XIDs met most (FACTS.md, from the catalog's buckets).
_WRITTEN: dict[int, tuple[str, str]] = {
    13: ("graphics engine exception (app fault)", "restart the application"),
    31: ("GPU memory page fault (app fault)", "restart the application"),
    43: ("GPU stopped processing (app fault)", "restart the application"),
    45: ("preemptive cleanup", "none (ignore)"),
    48: ("double-bit ECC error", "drain, reset the GPU"),
    63: ("row remap pending", "reset the GPU when idle"),
    64: ("row remap failed", "reset the GPU, then service"),
    68: ("video processor exception", "restart the application"),
    74: ("NVLink error", "run the NVLink workflow"),
    79: ("GPU fell off the bus", "drain, reboot, then check mechanicals"),
    92: ("high single-bit ECC rate", "monitor"),
    94: ("contained ECC error", "restart the application; drain if repeated"),
    95: ("uncontained ECC error", "drain, reset the GPU"),
    109: ("context switch timeout", "restart the application"),
    119: ("GSP RPC timeout", "reset the GPU, reboot if it persists"),
    120: ("GSP error", "reset the GPU, reboot if it persists"),
    **{c: ("NVLink5 error", _NVLINK5) for c in range(144, 151)},
    154: ("recovery action required", "follow the driver's recovery action"),
}

#: What each immediate bucket asks of an operator.
BUCKET_ACTION: dict[str, str] = {
    "IGNORE": "none (ignore)",
    "RESTART_APP": "restart the application",
    "RESET_GPU": "drain, reset the GPU",
    "RESTART_BM": "drain, reboot the node",
    "RESTART_VM": "restart the VM",
    "CONTACT_SUPPORT": "contact support",
    "CHECK_MECHANICALS": "drain, check seating and connections",
    "UPDATE_SWFW": "update driver and firmware",
    "CHECK_UVM": "reset the GPU if UVM/vGPU is used, else ignore",
    "WORKFLOW_XID_45": "alone: restart the fabric manager; with others: follow them",
    "WORKFLOW_XID_48": "alone: reset the GPU; with 63/64: drain and reset",
    "WORKFLOW_NVLINK_ERR": "run the NVLink workflow",
    "WORKFLOW_NVLINK5_ERR": _NVLINK5,
    "XID_154": "follow the driver's recovery action",
    "DRAIN_AND_RESET": "drain, reset the GPU",
    "DRAIN_P2P": "drain peer-to-peer work",
    "XID_154_EVAL": "follow an XID 154 seen with it, else restart the application",
}


@cache
def _table() -> dict[int, XidRule]:
    rules: dict[int, XidRule] = {}
    for code, item in catalog().items():
        what, action = _WRITTEN.get(code, (item.description or item.mnemonic, ""))
        if not action:
            action = BUCKET_ACTION.get(item.immediate, "consult the NVIDIA Xid catalog")
        rules[code] = XidRule(code, what, code not in NON_CRITICAL, action)
    for code, (what, action) in _WRITTEN.items():
        rules.setdefault(code, XidRule(code, what, code not in NON_CRITICAL, action))
    return rules


#: Every catalog XID's rule (the catalog is read once, ~1 ms).
XID_TABLE: dict[int, XidRule] = _table()

#: XID 154 recovery actions the driver may print.
RECOVERY_ACTIONS = tuple(a.value for a in RecoveryAction)


def classify_xid(code: int, message: str = "") -> XidRule:
    """The rule for ``code``; XID 154 takes its action from the driver's message."""
    rule = XID_TABLE.get(code)
    if rule is None:
        return XidRule(code, "unlisted XID", True, "consult the NVIDIA Xid catalog")
    if code in range(144, 151) and message:
        decoded = _nvlink5_rule(code, message)
        if decoded is not None:
            return decoded
    if code == 154:
        action = recovery_action(message)
        if action is RecoveryAction.NONE:
            return XidRule(code, rule.what, False, "none required by the driver")
        if action is not None:
            return XidRule(code, rule.what, True, f"driver recovery action {action.value}")
    return rule


def _nvlink5_rule(code: int, message: str) -> XidRule | None:
    """An NVLink5 XID by its decoded IntrInfo/ErrorStatus: a non-fatal one that only asks
    to follow an XID 154 (or nothing) is not critical; one that needs a reset is."""
    from dcops.xid.line import find_xid
    from dcops.xid.nvlink5 import decode

    line = find_xid(f"NVRM: Xid (PCI:0000:00:00): {code}, {message}")
    if line is None or len(line.registers) < 2:
        return None
    found = decode(code, line.registers[0], line.registers[1], subcomponent=line.subcomponent)
    if found is None:
        return None
    critical = found.immediate not in ("IGNORE", "XID_154_EVAL")
    action = BUCKET_ACTION.get(found.immediate, "contact support")
    return XidRule(code, f"NVLink5 {found.subcomponent} ({found.severity})", critical, action)

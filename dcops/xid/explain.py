"""What one XID line means: the catalog's buckets, the NVLink5 decode, XID 154's action.

``explain(line)`` is what ``dcops xid explain`` prints: the XID, its PCI id (and
GPU index when the caller knows the node's PCI order), the immediate and
investigatory buckets -- decoded for NVLink5 XIDs 144-150 (subcomponent,
severity, layout), taken from the driver for XID 154 -- and the operator's
action in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dcops.xid.catalog import CatalogEntry, buckets, entry
from dcops.xid.line import XidLine, normalize_pci, parse_xid_line
from dcops.xid.nvlink5 import NVLINK5_XIDS, Nvlink5Decode, decode
from dcops.xid.recovery import RECOVERY_BUCKET, RecoveryAction, recovery_action
from dcops.xid.rules import BUCKET_ACTION, classify_xid


@dataclass(frozen=True)
class Explanation:
    line: XidLine
    entry: CatalogEntry | None
    immediate: str
    investigatory: str
    action: str
    gpu: int | None = None
    decoded: Nvlink5Decode | None = None
    recovery: RecoveryAction | None = None
    note: str = ""

    @property
    def xid(self) -> int:
        return self.line.code

    @property
    def severity(self) -> str | None:
        if self.decoded is not None:
            return self.decoded.severity
        if self.line.fatal is not None:
            return "Fatal" if self.line.fatal else "Non-fatal"
        return None

    @property
    def subcomponent(self) -> str | None:
        return self.decoded.subcomponent if self.decoded else self.line.subcomponent

    def to_dict(self) -> dict[str, Any]:
        e = self.entry
        out: dict[str, Any] = {
            "xid": self.xid,
            "pci": self.line.pci,
            "gpu": self.gpu,
            "mnemonic": e.mnemonic if e else None,
            "description": e.description if e else None,
            "gb200": e.gb200 if e else None,
            "applies_to": list(e.applies_to) if e else [],
            "immediate": self.immediate,
            "investigatory": self.investigatory,
            "meaning": buckets().get(self.immediate, ""),
            "action": self.action,
            "catalog_immediate": e.immediate if e else None,
            "catalog_investigatory": e.investigatory if e else None,
            "message": self.line.message,
        }
        if self.xid in NVLINK5_XIDS:
            out["subcomponent"] = self.subcomponent
            out["severity"] = self.severity
            out["link"] = self.line.link
            out["layout"] = self.decoded.layout if self.decoded else None
            out["intr_info"] = self.decoded.to_dict()["intr_info"] if self.decoded else None
            out["error_status"] = self.decoded.to_dict()["error_status"] if self.decoded else None
            out["hw_sw"] = self.decoded.hw_sw if self.decoded else None
        if self.xid == 154:
            out["recovery_action"] = self.recovery.value if self.recovery else None
        if self.note:
            out["note"] = self.note
        return out


def line_buckets(line: XidLine, *, layout: str | None = None) -> tuple[str, str, str]:
    """(immediate, investigatory, note) of one XID line: decoded for 144-150, 154's action."""
    item = entry(line.code)
    if item is None:
        return "CONTACT_SUPPORT", "CONTACT_SUPPORT", "XID not in NVIDIA's catalog"
    if line.code in NVLINK5_XIDS:
        decoded = _decode(line, layout)
        if decoded is None:
            return (
                "CONTACT_SUPPORT",
                "CONTACT_SUPPORT",
                "no row of the catalog's 144-150 decode matches; contact support",
            )
        return decoded.immediate, decoded.investigatory, ""
    if line.code == 154:
        recovery = recovery_action(line.message)
        if recovery is not None:
            return RECOVERY_BUCKET[recovery], item.investigatory, ""
    return item.immediate, item.investigatory, ""


def _decode(line: XidLine, layout: str | None) -> Nvlink5Decode | None:
    if len(line.registers) < 2:
        return None
    return decode(
        line.code,
        line.registers[0],
        line.registers[1],
        subcomponent=line.subcomponent,
        layout=layout,
    )


def explain(
    text: str, *, layout: str | None = None, pci_order: Sequence[str] | None = None
) -> Explanation:
    """Explain one kernel log line; ``pci_order``: the node's GPU PCI ids in index order."""
    line = parse_xid_line(text)
    immediate, investigatory, note = line_buckets(line, layout=layout)
    action = classify_xid(line.code, line.message).action
    decoded = _decode(line, layout) if line.code in NVLINK5_XIDS else None
    recovery = recovery_action(line.message) if line.code == 154 else None
    if line.code in NVLINK5_XIDS or recovery is not None:
        action = BUCKET_ACTION.get(immediate, action)
    gpu = None
    if pci_order:
        order = [normalize_pci(p) for p in pci_order]
        gpu = order.index(line.pci) if line.pci in order else None
    return Explanation(
        line, entry(line.code), immediate, investigatory, action, gpu, decoded, recovery, note
    )

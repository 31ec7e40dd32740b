"""XID 154: the driver's recovery action for a GPU (R565+).

The driver prints ``GPU recovery action changed from 0x0 (None) to 0x1 (GPU
Reset Required)``; the values NVIDIA documents are None, GPU Reset Required,
Node Reboot Required, Drain P2P and Drain and Reset. Each maps to an immediate
bucket; the catalog's ``XID_154_EVAL`` rows (NVLink5 and others) take the
action of an XID 154 seen with them, else restart the application.
"""

from __future__ import annotations

import re
from enum import StrEnum


class RecoveryAction(StrEnum):
    NONE = "NONE"
    GPU_RESET = "GPU_RESET"
    NODE_REBOOT = "NODE_REBOOT"
    DRAIN_P2P = "DRAIN_P2P"
    DRAIN_AND_RESET = "DRAIN_AND_RESET"


#: The immediate bucket of each recovery action.
RECOVERY_BUCKET: dict[RecoveryAction, str] = {
    RecoveryAction.NONE: "IGNORE",
    RecoveryAction.GPU_RESET: "RESET_GPU",
    RecoveryAction.NODE_REBOOT: "RESTART_BM",
    RecoveryAction.DRAIN_P2P: "DRAIN_P2P",
    RecoveryAction.DRAIN_AND_RESET: "DRAIN_AND_RESET",
}

_TOKEN = re.compile(r"\b(" + "|".join(a.value for a in RecoveryAction) + r")\b")
_TO = re.compile(r"\bto\s+0x[0-9a-fA-F]+\s*\((?P<words>[^)]*)\)")
_WORDS = (
    ("drain and reset", RecoveryAction.DRAIN_AND_RESET),
    ("drain p2p", RecoveryAction.DRAIN_P2P),
    ("reboot", RecoveryAction.NODE_REBOOT),
    ("reset", RecoveryAction.GPU_RESET),
    ("none", RecoveryAction.NONE),
)


def recovery_action(message: str) -> RecoveryAction | None:
    """The recovery action an XID 154 message moves to (``... to 0x1 (GPU Reset Required)``)."""
    found = _TO.search(message)
    if found is not None:
        words = found.group("words").lower()
        for needle, action in _WORDS:
            if needle in words:
                return action
    token = _TOKEN.search(message)
    return RecoveryAction(token.group(1)) if token is not None else None

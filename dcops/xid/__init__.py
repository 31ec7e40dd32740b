"""XID knowledge: NVIDIA's catalog as data, the NVLink5 decoder, XID 154, grouping.

- :mod:`dcops.xid.catalog`: every XID with its buckets and GB200 applicability;
- :mod:`dcops.xid.rules`: severity and operator action per XID (burn-in, checks);
- :mod:`dcops.xid.line`: parse a kernel log line;
- :mod:`dcops.xid.nvlink5`: decode XIDs 144-150 (layouts before / from R575);
- :mod:`dcops.xid.recovery`: XID 154's recovery actions;
- :mod:`dcops.xid.explain`: all of the above for one line (``dcops xid explain``);
- :mod:`dcops.xid.events`: de-duplication and sympathetic grouping into incidents.
"""

from __future__ import annotations

from dcops.xid.recovery import RecoveryAction, recovery_action
from dcops.xid.rules import RECOVERY_ACTIONS, XID_TABLE, XidRule, classify_xid

__all__ = [
    "RECOVERY_ACTIONS",
    "XID_TABLE",
    "RecoveryAction",
    "XidRule",
    "classify_xid",
    "recovery_action",
]

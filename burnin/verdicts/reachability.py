"""Nodes that could not be measured: unreachable, hung or crashed -> ``error``, never pass.

The kind says where the error came from: ``unreachable``, ``hung`` and
``crashed`` are the node's (its SSH, its process); ``backend`` is dcops' own or
its backend's (a rejected parameter, Slurm not configured or refusing): never
evidence against the node (see :func:`is_backend_error`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from burnin.verdicts.status import Finding, Reason, Status, node_finding
from dcops.errors import CommandTimeout, ConnectError, DcopsError, RemoteError

CHECK = "reachability"


def node_error(node: str, error: BaseException | str, *, during: str = "") -> Finding:
    """An ``error`` finding for ``node``; the kind (unreachable/hung/crashed) from the error."""
    if isinstance(error, ConnectError):
        kind = "unreachable"
    elif isinstance(error, CommandTimeout):
        kind = "hung"
    elif isinstance(error, str):
        kind = error if error in ("unreachable", "hung") else "crashed"
    elif isinstance(error, DcopsError) and not isinstance(error, RemoteError):
        kind = "backend"  # dcops' parameters, the scheduler, the store: not the node
    else:
        kind = "crashed"
    where = f" during {during}" if during else ""
    if kind == "backend":
        msg = f"{node} not tested{where} (dcops or its backend failed, not the node): {error}"
    else:
        msg = f"{node} {kind}{where}: {error}"
    return node_finding(node, Status.ERROR, Reason(CHECK, "node", kind, None, msg))


def is_backend_error(reason: Mapping[str, Any]) -> bool:
    """Whether a report reason is an error of dcops or its backend (never the node's fault)."""
    return reason.get("check") == CHECK and reason.get("value") == "backend"

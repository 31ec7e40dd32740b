"""Nodes that could not be measured: unreachable, hung or crashed -> ``error``, never pass."""

from __future__ import annotations

from burnin.verdicts.status import Finding, Reason, Status, node_finding
from dcops.errors import CommandTimeout, ConnectError

CHECK = "reachability"


def node_error(node: str, error: BaseException | str, *, during: str = "") -> Finding:
    """An ``error`` finding for ``node``; the kind (unreachable/hung/crashed) from the error."""
    if isinstance(error, ConnectError):
        kind = "unreachable"
    elif isinstance(error, CommandTimeout):
        kind = "hung"
    elif isinstance(error, str):
        kind = error if error in ("unreachable", "hung") else "crashed"
    else:
        kind = "crashed"
    where = f" during {during}" if during else ""
    msg = f"{node} {kind}{where}: {error}"
    return node_finding(node, Status.ERROR, Reason(CHECK, "node", kind, None, msg))

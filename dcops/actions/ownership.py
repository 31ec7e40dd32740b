"""Ownership: which targets of a request dcops may change, re-read from the scheduler (pure).

- **Taking out** (drain, cordon): a node already out of service is left alone by
  automated sources: by dcops ("already drained by dcops") or by anyone else
  (their reason is never overwritten). An operator may take any node out; an
  operator's drain of a dcops drain *takes it over*: the reason becomes the
  operator's, and no dcops run returns it.
- **Returning** (resume, uncordon): only a node out of service with a dcops
  reason, and only by the same kind of evidence that took it out: a burn-in
  drain (silent data corruption, slow GEMM, NVLink bandwidth) comes back after a
  burn-in recheck passes, never because a cheap sweep looks clean; a sweep's
  drain comes back after clean sweeps. An undo returns only a node that still
  carries the reason its action wrote. An operator may return any node.
- **Handed to repair** (``dcops: repair: ...``, written by a ``handover`` when a
  runbook escalates): no sweep, burn-in or capacity run returns it; a runbook
  run (return-to-service, which re-certifies it) or an operator does.
- Other kinds (reboot, gpu_reset...): the node must be known to the scheduler
  when there is one, and an automated source never acts on a node someone else
  drained (an operator's maintenance, a repair).
- **Held** (``params["owner_reason"]``, set by a runbook that drained the node
  itself): the node must still be drained with exactly that reason when the
  action runs -- checked at submission and again when an approval executes it,
  so a node an operator took over after the request is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dcops.actions.kinds import ActionKind
from dcops.actions.request import ActionRequest
from dcops.node_actions.base import SchedulerNodeState, is_dcops_reason

#: Which source kinds of evidence return a node taken out by which (automated sources).
SAME_EVIDENCE = {"burnin": "burnin", "sweep": "sweep", "runbook": "runbook", "capacity": "capacity"}


def origin_of_reason(reason: str) -> str | None:
    """The source that wrote a dcops reason, from its text (``dcops: burnin bi-...``)."""
    if not is_dcops_reason(reason):
        return None
    rest = reason.split(":", 1)[1].strip()
    head = rest.split(" ", 1)[0].rstrip(":")
    if head in ("burnin", "recheck"):
        return "burnin"
    if head in ("runbook", "capacity", "operator", "repair"):
        return head
    return "sweep"


def check_node(
    request: ActionRequest,
    kind: ActionKind,
    node: str,
    state: SchedulerNodeState | None,
    *,
    origin: str | None,
    undo_reason: str | None = None,
) -> str | None:
    """Why ``node`` must be left alone for ``request``, or None when dcops may go ahead.

    ``origin``: the source kind that took the node out (from the actions table,
    else the reason's text). ``undo_reason``: for an undo, the reason the
    undone action wrote.
    """
    if state is None:
        return f"{node} is not known to the scheduler"
    source = request.source.kind
    operator = source == "operator" and request.undo_of is None
    held = request.params.get("owner_reason")
    if held and not operator and (not state.drain or state.reason != held):
        now = state.reason if state.drain else f"in service ({state.base})"
        return (
            f"ownership changed since the request: it was held by {held!r}, now "
            f"{now or 'no reason'}; refused, left to its new owner"
        )
    if kind.takes_out:
        if not state.drain or operator:
            return None
        if state.by_dcops:
            return f"already out of service by dcops ({state.reason})"
        return f"out of service by someone else ({state.reason or 'no reason'}); left as is"
    if kind.returns:
        if not state.drain and not state.down:
            return "in service; nothing to return"
        if operator:
            return None
        if request.undo_of is not None:
            if state.reason != undo_reason:
                return (
                    f"its reason changed since dcops took it out ({state.reason or 'no reason'}):"
                    " someone took it over; not undone"
                )
            return None
        if not state.drain or not state.by_dcops:
            return (
                f"out of service by someone else ({state.reason or state.base}); "
                "dcops returns only what it took out"
            )
        wanted = SAME_EVIDENCE.get(source)
        if origin == "repair" and source == "runbook":
            return None  # handed to repair: a runbook run (return-to-service) brings it back
        if origin is not None and origin != wanted:
            return (
                f"taken out by {origin} ({state.reason}); only a {origin} "
                f"{'recheck' if origin == 'burnin' else 'run'} that passes returns it, "
                f"not a {source}"
            )
        return None
    if not operator and state.drain and not state.by_dcops:
        return (
            f"out of service by someone else ({state.reason or 'no reason'}); "
            "dcops acts only on nodes it holds"
        )
    return None


def explain(skipped: Mapping[str, str]) -> str:
    """One line for the nodes left alone."""
    return "; ".join(f"{node}: {why}" for node, why in skipped.items())


def origin(row: Mapping[str, Any] | None, state: SchedulerNodeState | None) -> str | None:
    """The source kind that took a node out: the stored action when its reason still shows, else
    the reason's own text."""
    reason = state.reason if state is not None else ""
    if row is not None and (not reason or row.get("reason") == reason):
        src = row.get("source")
        return str(src) if src else None
    return origin_of_reason(reason)

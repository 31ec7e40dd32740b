"""Parse Slurm's JSON node listings into :class:`SchedulerNodeState` (pure, no I/O).

One parser for the shapes Slurm has printed (see ``fixtures/slurm/SCHEMA_NOTES.md``):

- top-level ``nodes`` (``sinfo --json`` up to 22.05, ``scontrol --json show node``
  from 23.02, slurmrestd ``/slurm/vX/node(s)``): ``state`` is a lower-case
  string plus a ``state_flags`` list (<= 22.05) or an upper-case list (>= 23.02);
  ``reason_changed_at`` is an int or ``{set, infinite, number}``;
- top-level ``sinfo`` (``sinfo --json`` from 23.02): one entry per partition and
  node group, ``node.state`` a list, ``nodes.nodes`` the names, ``reason``
  ``{description, time, user}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dcops.errors import SchedulerError
from dcops.hostlist import expand
from dcops.node_actions.base import SchedulerNodeState

#: Derived state names (``sinfo -o %T``, old JSON) -> base state and flags.
_DERIVED: dict[str, tuple[str, ...]] = {
    "DRAINED": ("IDLE", "DRAIN"),
    "DRAINING": ("ALLOCATED", "DRAIN"),
    "DRAIN": ("IDLE", "DRAIN"),
    "ALLOC": ("ALLOCATED",),
    "MIX": ("MIXED",),
    "COMP": ("IDLE", "COMPLETING"),
    "COMPLETING": ("IDLE", "COMPLETING"),
    "UNK": ("UNKNOWN",),
    "NOT_RESPONDING": ("UNKNOWN", "NOT_RESPONDING"),
}
#: sinfo's one-character suffixes on a state name.
_SUFFIX_FLAGS = {
    "*": "NOT_RESPONDING",
    "~": "POWERED_DOWN",
    "#": "POWERING_UP",
    "%": "POWERING_DOWN",
}


def parse_nodes_json(data: str | bytes | Mapping[str, Any]) -> dict[str, SchedulerNodeState]:
    """Node states, keyed by name, from any supported Slurm JSON listing.

    Raises :class:`SchedulerError` for text that is not JSON, a document with
    neither ``nodes`` nor ``sinfo``, or one that carries only errors.
    """
    doc = _load(data)
    result: dict[str, SchedulerNodeState] = {}
    if isinstance(doc.get("nodes"), list):
        for raw in doc["nodes"]:
            if isinstance(raw, Mapping):
                state = _from_node(raw)
                if state is not None:
                    result[state.node] = state
    elif isinstance(doc.get("sinfo"), list):
        for raw in doc["sinfo"]:
            if isinstance(raw, Mapping):
                for state in _from_sinfo_entry(raw):
                    result.setdefault(state.node, state)
    else:
        message = _errors(doc) or "no 'nodes' or 'sinfo' list in Slurm's JSON"
        raise SchedulerError(message)
    if not result and _errors(doc):
        raise SchedulerError(_errors(doc))
    return result


def normalize_states(state: object, flags: object = None) -> tuple[str, ...]:
    """Base state first, then flags, upper case, no repeats: ``("IDLE", "DRAIN")``."""
    names: list[str] = []
    if isinstance(state, str):
        names.extend(state.split("+"))
    elif isinstance(state, list | tuple):
        names.extend(str(item) for item in state)
    if isinstance(flags, list | tuple):
        names.extend(str(item) for item in flags)
    out: list[str] = []
    for raw_name in names:
        name = raw_name.strip().upper()
        extra: list[str] = []
        while name and name[-1] in _SUFFIX_FLAGS:
            extra.append(_SUFFIX_FLAGS[name[-1]])
            name = name[:-1]
        if not name:
            continue
        expanded = _DERIVED.get(name, (name,))
        if out:  # a base state already given: keep only the flags of a derived name
            expanded = expanded if name not in _DERIVED else expanded[1:]
        for item in (*expanded, *extra):
            if item not in out:
                out.append(item)
    return tuple(out) or ("UNKNOWN",)


def _load(data: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    try:
        doc = json.loads(data)
    except ValueError as exc:
        snippet = (
            data[:60] if isinstance(data, str) else data[:60].decode(errors="replace")
        ).strip()
        raise SchedulerError(f"Slurm's output is not JSON: {snippet!r}") from exc
    if not isinstance(doc, Mapping):
        raise SchedulerError("Slurm's JSON is not an object")
    return doc


def _errors(doc: Mapping[str, Any]) -> str:
    errors = doc.get("errors")
    if not isinstance(errors, list):
        return ""
    parts: list[str] = []
    for err in errors:
        if isinstance(err, Mapping):
            text = err.get("description") or err.get("error") or ""
            if text:
                parts.append(str(text))
        elif err:
            parts.append(str(err))
    return "; ".join(parts)


def _number(value: object) -> float | None:
    """An int, or Slurm's ``{set, infinite, number}``; 0 and unset mean none."""
    if isinstance(value, Mapping):
        if not value.get("set", True) or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value > 0 else None


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _from_node(raw: Mapping[str, Any]) -> SchedulerNodeState | None:
    name = _text(raw.get("name"))
    if not name:
        return None
    reason = _text(raw.get("reason"))
    return SchedulerNodeState(
        node=name,
        states=normalize_states(raw.get("state"), raw.get("state_flags")),
        reason=reason,
        reason_user=(_text(raw.get("reason_set_by_user")) or None) if reason else None,
        reason_time_s=_number(raw.get("reason_changed_at")) if reason else None,
    )


def _from_sinfo_entry(raw: Mapping[str, Any]) -> list[SchedulerNodeState]:
    node = raw.get("node")
    group = raw.get("nodes")
    names: list[str] = []
    if isinstance(group, Mapping):
        listed = group.get("nodes")
        if isinstance(listed, list):
            names = [str(n) for n in listed]
        elif isinstance(listed, str) and listed:
            names = expand(listed)
    reason_doc = raw.get("reason")
    reason = user = ""
    when: float | None = None
    if isinstance(reason_doc, Mapping):
        reason = _text(reason_doc.get("description"))
        user = _text(reason_doc.get("user"))
        when = _number(reason_doc.get("time"))
    elif isinstance(reason_doc, str):
        reason = reason_doc.strip()
    states = normalize_states(node.get("state") if isinstance(node, Mapping) else None)
    return [
        SchedulerNodeState(
            node=name,
            states=states,
            reason=reason,
            reason_user=(user or None) if reason else None,
            reason_time_s=when if reason else None,
        )
        for name in names
    ]

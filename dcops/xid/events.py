"""XID lines -> incidents: repeated lines de-duplicated, sympathetic XIDs grouped.

Two field complaints shape this (FACTS.md, NVSentinel): 800k lines of XID 95 on
one node were 29 distinct events, and one NVLink job crash produced XID 45 on
77 nodes in 11 racks. So:

1. **De-duplication** (:func:`dedupe`): lines with the same node, GPU, XID and
   message (numbers and addresses blanked) within ``window_s`` of the previous
   one are one event with a count.
2. **Grouping** (:func:`group`): events that start within ``burst_s`` of each
   other form a burst. In a burst, the *hard* events (any XID but the
   sympathetic ones: 13, 31, 43, 45, 94, and 95 seen with a hard event on the
   same tray) are the origin, one incident per node (however many of its GPUs
   show the fault); the sympathetic ones are attached to the first incident
   and take no action of their own. A burst of only sympathetic XIDs on
   several GPUs is one incident of the job (restart the application). XID 95
   on trays without a hard event of their own is one burst: its earliest GPU
   is the origin (reset it), the rest follow it.
   XID 45 alone on one node is WORKFLOW_XID_45 solo: restart the fabric manager.
3. **Buckets per incident**: XID 48 alone -> RESET_GPU, with 63/64 ->
   DRAIN_AND_RESET (WORKFLOW_XID_48); an XID 154 on the node gives its
   recovery action to the XID_154_EVAL rows; otherwise the worst bucket wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: XIDs that follow other faults (app crashes, contained errors, preemptive cleanup).
SYMPATHETIC = frozenset({13, 31, 43, 45, 94})
#: Sympathetic when a hard event is in the same burst, the origin otherwise.
SOMETIMES_SYMPATHETIC = frozenset({95})

#: Immediate buckets, worst first.
BUCKET_RANK = (
    "RESTART_BM",
    "CHECK_MECHANICALS",
    "DRAIN_AND_RESET",
    "RESET_GPU",
    "CONTACT_SUPPORT",
    "WORKFLOW_NVLINK_ERR",
    "WORKFLOW_NVLINK5_ERR",
    "DRAIN_P2P",
    "RESTART_FM",
    "UPDATE_SWFW",
    "CHECK_UVM",
    "RESTART_VM",
    "RESTART_APP",
    "XID_154_EVAL",
    "XID_154",
    "WORKFLOW_XID_48",
    "WORKFLOW_XID_45",
    "IGNORE",
    "",
)

_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+")


def rank(bucket: str) -> int:
    return BUCKET_RANK.index(bucket) if bucket in BUCKET_RANK else BUCKET_RANK.index("RESET_GPU")


def worst(found: Iterable[str]) -> str:
    return min(found, key=rank, default="IGNORE")


@dataclass(frozen=True)
class XidOccurrence:
    """One XID line of one node (``immediate``: the line's bucket, see explain.line_buckets)."""

    node: str
    pci: str
    code: int
    timestamp_s: float
    message: str = ""
    immediate: str = ""


@dataclass
class XidEvent:
    """Repeated lines of one XID on one GPU, counted."""

    node: str
    pci: str
    code: int
    first_s: float
    last_s: float
    message: str
    immediate: str
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "pci": self.pci,
            "xid": self.code,
            "first_s": self.first_s,
            "last_s": self.last_s,
            "count": self.count,
            "immediate": self.immediate,
            "message": self.message,
        }


@dataclass
class XidIncident:
    """One fault: its origin events (one node, or none for a job-wide burst) and followers."""

    node: str | None
    events: list[XidEvent]
    sympathetic: list[XidEvent] = field(default_factory=list)
    immediate: str = "IGNORE"
    why: str = ""

    @property
    def codes(self) -> list[int]:
        return sorted({e.code for e in self.events})

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "xids": self.codes,
            "immediate": self.immediate,
            "why": self.why,
            "events": [e.to_dict() for e in self.events],
            "sympathetic": [e.to_dict() for e in self.sympathetic],
            "lines": sum(e.count for e in self.events) + sum(e.count for e in self.sympathetic),
        }


def _shape(message: str) -> str:
    return _NUMBERS.sub("#", " ".join(message.split()))


def dedupe(lines: Iterable[XidOccurrence], window_s: float = 300.0) -> list[XidEvent]:
    """Repeated lines -> counted events (same node, GPU, XID and message shape)."""
    ordered = sorted(lines, key=lambda x: (x.node, x.pci, x.code, _shape(x.message), x.timestamp_s))
    events: list[XidEvent] = []
    last_key: tuple[str, str, int, str] | None = None
    for line in ordered:
        key = (line.node, line.pci, line.code, _shape(line.message))
        if events and key == last_key and line.timestamp_s - events[-1].last_s <= window_s:
            events[-1].count += 1
            events[-1].last_s = line.timestamp_s
            if rank(line.immediate) < rank(events[-1].immediate):
                events[-1].immediate = line.immediate
            continue
        events.append(
            XidEvent(
                line.node,
                line.pci,
                line.code,
                line.timestamp_s,
                line.timestamp_s,
                line.message,
                line.immediate,
            )
        )
        last_key = key
    return sorted(events, key=lambda e: (e.first_s, e.node, e.pci, e.code))


def _bursts(events: Sequence[XidEvent], burst_s: float) -> list[list[XidEvent]]:
    out: list[list[XidEvent]] = []
    for event in sorted(events, key=lambda e: e.first_s):
        if out and event.first_s - max(e.first_s for e in out[-1]) <= burst_s:
            out[-1].append(event)
        else:
            out.append([event])
    return out


def node_bucket(events: Sequence[XidEvent]) -> tuple[str, str]:
    """The immediate bucket of one node's origin events, and why."""
    codes = {e.code for e in events}
    buckets = {e.immediate or "CONTACT_SUPPORT" for e in events if e.code != 154}
    why: list[str] = []
    recovery = [e.immediate for e in events if e.code == 154 and e.immediate]
    if 48 in codes:
        with_remap = codes & {63, 64}
        buckets.discard("WORKFLOW_XID_48")
        buckets.add("DRAIN_AND_RESET" if with_remap else "RESET_GPU")
        why.append("XID 48 with 63/64: drain and reset" if with_remap else "XID 48 alone: reset")
    if recovery:
        buckets.discard("XID_154_EVAL")
        buckets.update(recovery)
        why.append(f"XID 154 recovery action -> {worst(recovery)}")
    elif "XID_154_EVAL" in buckets:
        buckets.discard("XID_154_EVAL")
        buckets.add("RESTART_APP")
        why.append("XID_154_EVAL without an XID 154: restart the application")
    if codes == {45}:
        return "RESTART_FM", "XID 45 alone: restart the fabric manager"
    buckets.discard("WORKFLOW_XID_45")
    bucket = worst(buckets)
    return bucket, "; ".join(why) or f"worst bucket of XID {', '.join(map(str, sorted(codes)))}"


def group(events: Sequence[XidEvent], burst_s: float = 30.0) -> list[XidIncident]:
    """Events -> incidents (see the module docstring)."""
    incidents: list[XidIncident] = []
    for burst in _bursts(events, burst_s):
        hard = [e for e in burst if e.code not in SYMPATHETIC | SOMETIMES_SYMPATHETIC]
        hard_nodes = {e.node for e in hard}
        # XID 95 follows a hard event on its own tray; 95s on trays without one are one
        # uncontained-ECC burst of their own (its earliest GPU the origin), never
        # swallowed by a hard fault on another tray
        uncontained = [
            e for e in burst if e.code in SOMETIMES_SYMPATHETIC and e.node not in hard_nodes
        ]
        if uncontained:
            first = min(uncontained, key=lambda e: (e.first_s, e.node, e.pci))
            hard += [e for e in burst if e.node == first.node and e.pci == first.pci]
        if not hard:
            gpus = {(e.node, e.pci) for e in burst}
            if len(gpus) == 1:
                node = burst[0].node
                bucket, why = node_bucket(burst)
                incidents.append(XidIncident(node, list(burst), [], bucket, why))
            else:
                why = (
                    f"sympathetic burst on {len(gpus)} GPUs of "
                    f"{len({e.node for e in burst})} nodes: one job crash, restart it"
                )
                incidents.append(XidIncident(None, [], list(burst), "RESTART_APP", why))
            continue
        nodes = sorted(
            {e.node for e in hard}, key=lambda n: min(e.first_s for e in hard if e.node == n)
        )
        followers = [e for e in burst if e not in hard and e.node not in nodes]
        for i, node in enumerate(nodes):
            own = [e for e in burst if e.node == node]
            origin = [e for e in own if e in hard or e.code in (63, 64, 154)]
            attached = [e for e in own if e not in origin]
            bucket, why = node_bucket(origin)
            incidents.append(
                XidIncident(node, origin, attached + (followers if i == 0 else []), bucket, why)
            )
    return incidents

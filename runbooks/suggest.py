"""Findings of a sweep or a burn-in -> the runbook for each node, and why.

XID findings are de-duplicated and grouped first (:mod:`dcops.xid.events`):
a burst of sympathetic XIDs across a job's nodes is one incident with no node
action, XID 45 with other XIDs follows them, XID 48 with 63/64 is a drain and
reset. Each node's incidents (their XIDs and immediate buckets) and its failing
checks then pick one runbook (:func:`runbooks.library.pick`). ``error``
findings (dcops or a backend failed) are never used: they are not evidence
against a node.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dcops.errors import UnknownNameError
from dcops.store import Store
from dcops.xid.events import XidIncident, XidOccurrence, dedupe, group
from dcops.xid.explain import line_buckets
from dcops.xid.line import find_xid
from runbooks.library import NO_NODE_ACTION, pick
from runbooks.model import Runbook

#: Finding metrics that name a trigger better than their check does.
_METRIC_TRIGGERS = {
    "lost": ("burnin", "gpu_lost"),
    "gpu_count": ("checks", "gpu_count"),
    "ecc_uncorrectable": ("buckets", "RESET_GPU"),
    "busbw_gbps": ("burnin", "nvlink"),
    "busbw_vs_peers": ("burnin", "nvlink"),
}


@dataclass(frozen=True)
class Finding:
    node: str
    check: str
    metric: str
    status: str  # warn, fail
    message: str
    gpu: int | None = None
    value: Any = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Suggestion:
    node: str
    runbook: str
    why: str
    gpu: int | None
    evidence: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "runbook": self.runbook,
            "why": self.why,
            "params": {"gpu": self.gpu} if self.gpu is not None else {},
            "evidence": self.evidence,
        }


def load_findings(store: Store, run_id: str, kind: str) -> list[Finding]:
    """The warn/fail findings of a stored sweep or burn-in run."""
    row = store.conn.execute("SELECT kind FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    kinds = ("sweep",) if kind == "sweep" else ("burnin", "recheck")
    if row is None or row["kind"] not in kinds:
        known = [
            r[0]
            for r in store.conn.execute(
                f"SELECT run_id FROM runs WHERE kind IN ({','.join('?' for _ in kinds)})"
                " ORDER BY started_at DESC LIMIT 10",
                kinds,
            )
        ]
        raise UnknownNameError(f"{kind} run", run_id, known)
    out = []
    for r in store.conn.execute(
        "SELECT * FROM results WHERE run_id = ? AND status IN ('warn', 'fail')", (run_id,)
    ):
        try:
            details = json.loads(r["details"] or "{}")
        except ValueError:
            details = {}
        out.append(
            Finding(
                node=r["node"],
                check=r["check"],
                metric=r["metric"],
                status=r["status"],
                message=r["message"],
                gpu=r["gpu"],
                value=r["value"],
                details=details if isinstance(details, dict) else {},
            )
        )
    return out


def _occurrences(findings: Iterable[Finding]) -> list[tuple[XidOccurrence, Finding]]:
    out = []
    for f in findings:
        if f.metric != "xid" or f.value is None:
            continue
        code = int(f.value)
        pci = str(f.details.get("pci", f.gpu if f.gpu is not None else "?"))
        messages = f.details.get("messages") or [f.message]
        text = f"NVRM: Xid (PCI:{pci}): {code}, {messages[-1]}"
        line = find_xid(text)
        immediate = line_buckets(line)[0] if line is not None else ""
        when = float(f.details.get("first_s") or 0.0)
        count = int(f.details.get("count") or 1)
        for i in range(count):
            occ = XidOccurrence(f.node, pci, code, when + i * 1e-3, str(messages[-1]), immediate)
            out.append((occ, f))
    return out


def suggest(
    findings: Sequence[Finding], books: Iterable[Runbook]
) -> tuple[list[Suggestion], list[str]]:
    """One runbook per node that needs one, and notes (bursts, findings no runbook covers)."""
    library = list(books)
    pairs = _occurrences(findings)
    incidents: list[XidIncident] = group(dedupe(o for o, _ in pairs))
    notes = [i.why for i in incidents if i.node is None]
    gpu_of = {(o.node, o.pci): f.gpu for o, f in pairs}
    by_node: dict[str, dict[str, list[Any]]] = {}
    for inc in incidents:
        if inc.node is None:
            continue
        if inc.immediate in NO_NODE_ACTION:
            notes.append(
                f"{inc.node}: XID {','.join(map(str, inc.codes))} -> {inc.immediate}: "
                f"no node action ({inc.why})"
            )
            continue
        entry = by_node.setdefault(
            inc.node, {"xids": [], "buckets": [], "checks": [], "burnin": [], "gpu": [], "why": []}
        )
        entry["xids"] += inc.codes
        entry["buckets"].append(inc.immediate)
        entry["gpu"] += [gpu_of.get((e.node, e.pci)) for e in inc.events]
        entry.setdefault("tray", [])
        entry["tray"] += [
            gpu_of.get((e.node, e.pci)) for e in inc.sympathetic if e.node == inc.node
        ]
        entry["why"].append(f"XID {','.join(map(str, inc.codes))} -> {inc.immediate} ({inc.why})")
    for f in findings:
        if f.metric == "xid":
            continue
        entry = by_node.setdefault(
            f.node, {"xids": [], "buckets": [], "checks": [], "burnin": [], "gpu": [], "why": []}
        )
        key, name = _METRIC_TRIGGERS.get(f.metric, ("checks", f.check))
        name = str(name)
        if "remap" in f.metric and "pending" in f"{f.message} {f.value}".lower():
            entry["xids"].append(63)
        else:
            entry[key].append(name)
        entry["gpu"].append(f.gpu)
        entry["why"].append(f"{f.check}: {f.message}")
    out: list[Suggestion] = []
    for node, entry in sorted(by_node.items()):
        found = pick(
            library,
            xids=entry["xids"],
            buckets=entry["buckets"],
            checks=entry["checks"],
            burnin=entry["burnin"],
        )
        if found is None:
            notes.append(f"{node}: no runbook for {'; '.join(entry['why'])}")
            continue
        book, reason = found
        gpus = [g for g in entry["gpu"] if g is not None]
        seen = gpus + [g for g in entry.get("tray", []) if g is not None]
        also = sorted({int(g) for g in seen} - {int(gpus[0])}) if gpus else []
        tray = f" (one run for the tray; also on GPU {','.join(map(str, also))})" if also else ""
        out.append(
            Suggestion(
                node=node,
                runbook=book.name,
                why=f"{reason}: {'; '.join(entry['why'])}{tray}",
                gpu=gpus[0] if gpus else None,
                evidence=[{"why": w} for w in entry["why"]],
            )
        )
    return out, notes

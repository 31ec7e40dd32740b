"""The vocabulary of a burn-in judgement: Status, Reason and Finding.

A judge (GEMM, GPU health, collectives, reachability) turns measurements into
:class:`Finding` records, one per target and check, *including passing ones*:
a passing finding is the evidence that the check ran on that target, and
:func:`burnin.verdicts.rollup.rollup` turns "no finding for a required check"
into ``error``, so a missing or unparsable result is never a pass.

Status order (worst-of)::

    PASS < WARN < ERROR < FAIL

``ERROR`` means "could not judge" (unreachable, hung, crashed, no result); it
is worse than ``WARN`` because an unjudged GPU must never be certified, but a
*proven* failure outranks it: a GPU that fell off the bus (fail) and therefore
returned no GEMM result (error) is reported as failed, with both reasons kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from dcops.measurements import GpuRef

_RANK = {"pass": 0, "warn": 1, "error": 2, "fail": 3}


class Status(Enum):
    """Outcome of a check or a roll-up; compare with ``<`` and combine with :func:`worst`."""

    PASS = "pass"  # noqa: S105 - a status, not a password
    WARN = "warn"
    ERROR = "error"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return _RANK[self.value]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank >= other.rank


def worst(statuses: Iterable[Status]) -> Status:
    """The worst of ``statuses``; ``PASS`` for none (the identity of worst-of)."""
    out = Status.PASS
    for status in statuses:
        if status.rank > out.rank:
            out = status
    return out


Number = float | int | str | None


@dataclass(frozen=True)
class Reason:
    """Why a check said what it said: the JSON contract of every verdict.

    ``check`` is the check family (``gemm``, ``gpu_health``, ``collective``,
    ``reachability``), ``metric`` what was measured (``tflops``,
    ``busbw_gbps``, ``xid``...), ``value`` the measured figure, ``threshold``
    the figure it was compared with (``None`` when there is none) and
    ``message`` one line an operator can act on.
    """

    check: str
    metric: str
    value: Number
    threshold: Number
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "metric": self.metric,
            "value": _jsonable(self.value),
            "threshold": _jsonable(self.threshold),
            "message": self.message,
        }


def _jsonable(value: Number) -> Number:
    if isinstance(value, float) and math.isnan(value):  # NaN is not JSON
        return "nan"
    return value


@dataclass(frozen=True)
class Finding:
    """One check's outcome on one target.

    The target is the smallest unit the evidence points at: one GPU (``gpus``
    holds exactly it), one node (``nodes`` holds one name, ``gpus`` the GPUs
    involved or empty), or a group spanning nodes (a collective over a rack):
    the roll-up attaches it to every rack its nodes belong to.
    """

    status: Status
    reason: Reason
    gpus: tuple[GpuRef, ...] = ()
    nodes: tuple[str, ...] = ()
    action: str = ""  # recommended operator action (XID table), "" when none

    @property
    def target(self) -> str:
        if len(self.gpus) == 1:
            return str(self.gpus[0])
        if len(self.nodes) == 1:
            return self.nodes[0]
        return ",".join(self.nodes)

    @property
    def check(self) -> str:
        return self.reason.check

    def to_dict(self) -> dict[str, Any]:
        out = {"target": self.target, "status": self.status.value, **self.reason.to_dict()}
        if self.action:
            out["action"] = self.action
        return out


def gpu_finding(gpu: GpuRef, status: Status, reason: Reason, action: str = "") -> Finding:
    return Finding(status=status, reason=reason, gpus=(gpu,), nodes=(gpu.node,), action=action)


def node_finding(node: str, status: Status, reason: Reason, action: str = "") -> Finding:
    return Finding(status=status, reason=reason, nodes=(node,), action=action)


def group_finding(gpus: Iterable[GpuRef], status: Status, reason: Reason) -> Finding:
    members = tuple(gpus)
    nodes = tuple(dict.fromkeys(g.node for g in members))
    if len(members) == 1:
        return Finding(status=status, reason=reason, gpus=members, nodes=nodes)
    return Finding(status=status, reason=reason, gpus=(), nodes=nodes)


def status_counts(findings: Iterable[Finding]) -> Mapping[str, int]:
    counts = {s.value: 0 for s in Status}
    for f in findings:
        counts[f.status.value] += 1
    return counts

"""What an action is: the request every caller builds, and the result it gets back (plain data).

An :class:`ActionRequest` says *what* (a registered kind: ``drain``, ``resume``,
``cordon``, ``uncordon``, ``reboot``...), *where* (target nodes), *why* (a
one-line reason and the evidence: findings with their values and thresholds),
*who asked* (``requested_by``) and *on whose behalf* (a :class:`Source`: a
sweep, burn-in, runbook or capacity run, or an operator). An
:class:`ActionResult` says what the policy decided and what happened, with
every policy step recorded in ``steps``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from dcops.errors import InputError
from dcops.hostlist import compress


class Level(StrEnum):
    """Autonomy level of an action kind for a source, set by operators in config."""

    OBSERVE = "observe"  # record it, do nothing
    RECOMMEND = "recommend"  # show the plan, do nothing
    APPROVE = "approve"  # queue it; it runs when an operator approves
    ACT = "act"  # run it (with --apply)


class Status(StrEnum):
    """Where an action stands. Stored in the ``actions`` table, shown by ``dcops actions``."""

    PENDING = "pending"  # queued for an approval
    APPROVED = "approved"  # approved; running (becomes done or failed)
    DENIED = "denied"  # an operator said no
    EXPIRED = "expired"  # nobody approved it in time
    STARTED = "started"  # intent written, backend call under way (or the run died)
    DONE = "done"  # the backend did it
    FAILED = "failed"  # the backend refused or failed; nothing is known to have changed
    UNDONE = "undone"  # done, then reversed by its undo action
    REFUSED = "refused"  # the circuit breaker or rate limit said no
    SKIPPED = "skipped"  # ownership: not dcops' to change (or nothing to change)
    OBSERVED = "observed"  # level observe: recorded only
    RECOMMENDED = "recommended"  # level recommend: shown only (not stored)
    DRY_RUN = "dry-run"  # without --apply: shown only (not stored)


#: Statuses an action can still move on from.
OPEN_STATUSES = frozenset({Status.PENDING, Status.APPROVED, Status.STARTED})

#: Who may ask for an action (``Source.kind``).
SOURCE_KINDS = ("sweep", "burnin", "runbook", "capacity", "operator")


@dataclass(frozen=True)
class Source:
    """On whose behalf an action is asked: a run of some kind (with its id) or an operator."""

    kind: str
    run_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise InputError(
                f"unknown action source {self.kind!r} (known: {', '.join(SOURCE_KINDS)})"
            )

    def __str__(self) -> str:
        return f"{self.kind}:{self.run_id}" if self.run_id else self.kind


def evidence(
    check: str,
    message: str = "",
    *,
    metric: str | None = None,
    value: Any = None,
    threshold: Any = None,
    status: str | None = None,
    **details: Any,
) -> dict[str, Any]:
    """One piece of evidence as the actuator stores it (a finding, a measurement, a note)."""
    out: dict[str, Any] = {"check": check, "message": message}
    for key, item in (("metric", metric), ("value", value), ("threshold", threshold)):
        if item is not None:
            out[key] = item
    if status is not None:
        out["status"] = status
    out.update(details)
    return out


def _names(targets: str | Iterable[str]) -> tuple[str, ...]:
    from dcops.node_actions.base import node_names

    return tuple(node_names(targets))


@dataclass(frozen=True)
class ActionRequest:
    """One change to the world, asked for with its evidence.

    ``targets`` takes a hostlist expression or names (kept in order, no repeats).
    ``params`` carries kind-specific options (a GPU index for ``gpu_reset``...).
    ``undo_of`` is set on the request that reverses an earlier action.
    """

    kind: str
    targets: tuple[str, ...]
    reason: str
    source: Source
    requested_by: str
    evidence: tuple[Mapping[str, Any], ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    undo_of: str | None = None

    @classmethod
    def make(
        cls,
        kind: str,
        targets: str | Iterable[str],
        *,
        reason: str,
        source: Source,
        requested_by: str,
        evidence: Iterable[Mapping[str, Any]] = (),
        params: Mapping[str, Any] | None = None,
        undo_of: str | None = None,
    ) -> ActionRequest:
        names = _names(targets)
        if not names:
            raise InputError(f"a {kind} needs at least one target node")
        text = " ".join(reason.split())
        return cls(
            kind=kind,
            targets=names,
            reason=text,
            source=source,
            requested_by=requested_by,
            evidence=tuple(dict(e) for e in evidence),
            params=dict(params or {}),
            undo_of=undo_of,
        )

    @property
    def hostlist(self) -> str:
        return compress(list(self.targets))


@dataclass(frozen=True)
class Step:
    """One policy step and what it said: ``ownership``, ``level``, ``breaker``, ``execute``..."""

    step: str
    verdict: str  # ok, skip, refuse, queue, dry-run, done, failed ...
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class ActionResult:
    """What became of a request. ``id`` is set when the action was stored."""

    request: ActionRequest
    status: Status
    level: Level
    message: str = ""
    id: str | None = None
    steps: list[Step] = field(default_factory=list)
    call: list[str] = field(default_factory=list)  # the backend call, argv-like
    skipped: dict[str, str] = field(default_factory=dict)  # node -> why it was left alone
    done_targets: tuple[str, ...] = ()  # the nodes the action ran on

    @property
    def refused(self) -> bool:
        return self.status is Status.REFUSED

    @property
    def ok(self) -> bool:
        return self.status is Status.DONE

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        return {
            "id": self.id,
            "kind": r.kind,
            "targets": compress(list(self.done_targets or r.targets)),
            "requested_targets": r.hostlist,
            "status": self.status.value,
            "level": self.level.value,
            "message": self.message,
            "reason": r.reason,
            "source": str(r.source),
            "requested_by": r.requested_by,
            "evidence": [dict(e) for e in r.evidence],
            "call": list(self.call),
            "skipped": dict(self.skipped),
            "steps": [s.to_dict() for s in self.steps],
            "undo_of": r.undo_of,
        }

"""One tray's standing, from what dcops and the scheduler say about it (pure).

A tray is **healthy** only when all of these hold:

* the scheduler has it in service (not drained, not down, responding) and
  dcops' own lifecycle record agrees (not ``drained``/``repair``);
* its latest dcops observation (sweep or burn-in) did not find it failing,
  unreachable or hung;
* its burn-in certificate is current, when the site requires one.

Otherwise it is **degraded** (in service, but suspect or warned: never
promised) or **out**, and every out tray has one **owner**, the party that
must act to get it back:

======================  ==========================================================
owner                   when
======================  ==========================================================
``unreachable``         the latest observation could not reach it or it hung, or
                        the scheduler has it down / not responding without a drain
``maintenance``         the scheduler says MAINT / planned maintenance, or the drain
                        reason starts with ``maint``
``repair``              dcops' lifecycle has it in ``repair`` (sweeping clean after
                        a drain), a runbook escalated it and handed it to repair
                        (``dcops: repair: ...``), or an operator reason names a
                        repair / RMA
``dcops``               drained by dcops (``dcops:`` reason), or dcops' latest
                        observation failed it, or its certificate is missing/expired
``operator``            drained by anyone else, with their reason
``unknown``             dcops and the scheduler disagree, or the scheduler does
                        not know the tray
======================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: Owners in the order a repair plan prefers them (easiest to get back first).
OWNER_ORDER = ("dcops", "repair", "unreachable", "operator", "maintenance", "unknown")


class Standing(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    OUT = "out"


class Owner(StrEnum):
    DCOPS = "dcops"
    OPERATOR = "operator"
    REPAIR = "repair"
    UNREACHABLE = "unreachable"
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        return OWNER_ORDER.index(self.value)


@dataclass(frozen=True)
class SchedulerFacts:
    """What the scheduler says about a tray (None for the whole record: not known to it)."""

    drain: bool = False
    down: bool = False
    responding: bool = True
    maintenance: bool = False
    busy: bool = False  # running work (ALLOCATED / MIXED / COMPLETING)
    reason: str = ""
    by_dcops: bool = False
    reason_time_s: float | None = None


@dataclass(frozen=True)
class Observation:
    """dcops' latest look at the tray (sweep or burn-in).

    ``status``: ``pass``, ``warn``, ``fail`` or ``error``; ``kind`` for errors:
    ``unreachable``, ``hung`` or ``crashed``.
    """

    status: str
    source: str  # run id
    time_s: float
    kind: str = ""
    message: str = ""


@dataclass(frozen=True)
class TrayFacts:
    """Everything the classification reads about one tray (plain data)."""

    node: str
    rack: str
    gpus: int
    lifecycle: str = "ok"  # node_state.state: ok, suspect, drained, repair
    lifecycle_reason: str = ""
    lifecycle_since_s: float | None = None
    drained_by_dcops: bool = False
    scheduler: SchedulerFacts | None = SchedulerFacts()
    observation: Observation | None = None
    certificate_time_s: float | None = None  # latest burn-in pass


@dataclass(frozen=True)
class TrayVerdict:
    node: str
    rack: str
    gpus: int
    standing: Standing
    owner: Owner | None = None
    reason: str = ""
    since_s: float | None = None
    free: bool = False  # healthy and idle per the scheduler

    def to_dict(self) -> dict[str, object]:
        return {
            "node": self.node,
            "standing": self.standing.value,
            "owner": self.owner.value if self.owner else None,
            "reason": self.reason,
            "since_s": self.since_s,
        }


_REPAIR_WORDS = ("repair", "rma", "replace")


def _handed_to_repair(low_reason: str) -> bool:
    """A dcops drain handed to repair (an escalated runbook's ``dcops: repair: ...``)."""
    return low_reason.split(":", 1)[-1].strip().startswith("repair")


def _out(f: TrayFacts, owner: Owner, reason: str, since: float | None) -> TrayVerdict:
    return TrayVerdict(f.node, f.rack, f.gpus, Standing.OUT, owner, reason, since)


def classify(
    f: TrayFacts, *, now_s: float, certificate_max_age_s: float | None = None
) -> TrayVerdict:
    """The tray's standing, owner and reason (pure; see the module docstring)."""
    sched = f.scheduler
    obs = f.observation
    since_sched = sched.reason_time_s if sched else None
    since = since_sched if since_sched is not None else f.lifecycle_since_s
    if obs is not None and obs.status == "error" and obs.kind in ("unreachable", "hung"):
        return _out(f, Owner.UNREACHABLE, f"{obs.kind} in {obs.source}", obs.time_s)
    if sched is None:
        return _out(f, Owner.UNKNOWN, "not known to the scheduler", f.lifecycle_since_s)
    reason = sched.reason.strip()
    low = reason.lower()
    if sched.maintenance or (sched.drain and low.startswith("maint")):
        return _out(f, Owner.MAINTENANCE, reason or "maintenance", since)
    if sched.drain:
        if sched.by_dcops and (f.lifecycle == "repair" or _handed_to_repair(low)):
            return _out(f, Owner.REPAIR, reason, since)
        if sched.by_dcops:
            return _out(f, Owner.DCOPS, reason, since)
        if any(word in low for word in _REPAIR_WORDS):
            return _out(f, Owner.REPAIR, reason, since)
        return _out(f, Owner.OPERATOR, reason or "drained (no reason)", since)
    if sched.down or not sched.responding:
        why = reason or ("down" if sched.down else "not responding")
        return _out(f, Owner.UNREACHABLE, f"scheduler: {why}", since)
    if f.lifecycle in ("drained", "repair"):
        why = f.lifecycle_reason or f.lifecycle
        return _out(
            f, Owner.UNKNOWN, f"dcops says {f.lifecycle} ({why}), scheduler in service", since
        )
    if obs is not None and obs.status in ("fail", "error"):
        what = obs.kind or obs.status
        detail = f": {obs.message}" if obs.message else ""
        return _out(f, Owner.DCOPS, f"{what} in {obs.source}{detail}", obs.time_s)
    if certificate_max_age_s is not None:
        cert = f.certificate_time_s
        if cert is None:
            return _out(f, Owner.DCOPS, "no burn-in certificate", None)
        if now_s - cert > certificate_max_age_s:
            return _out(f, Owner.DCOPS, "burn-in certificate expired", cert)
    if f.lifecycle == "suspect" or (obs is not None and obs.status == "warn"):
        why = "suspect" if f.lifecycle == "suspect" else f"warning in {obs.source if obs else ''}"
        return TrayVerdict(f.node, f.rack, f.gpus, Standing.DEGRADED, None, why, since)
    return TrayVerdict(f.node, f.rack, f.gpus, Standing.HEALTHY, free=not sched.busy)

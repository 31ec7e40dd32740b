"""The actuator's settings: autonomy levels and circuit-breaker limits (config ``[actions]``).

::

    [actions]
    levels = ["reboot=approve", "sweep:drain=approve"]   # [source:]kind=level
    max_drain_rack = 0.34        # share of one rack out of service by dcops in the window
    max_drain_fleet = 0.25       # share of the fleet
    breaker_window_s = 300       # drains of earlier runs still count this long
    max_per_run = 50             # actions that take nodes out, per run, whatever the shares
    node_max_actions = 3         # actions on one node ...
    node_window_s = 3600         # ... per this window (Meta GCM: 3 per hour)
    override_cooldown_s = 3600   # an operator put a dcops drain back: hands off this long
    approval_ttl_s = 86400       # pending approvals expire
    approver_must_differ = false # the approver must not be the requester
    timeout_s = 120              # one backend call

Defaults follow NVSentinel (a breaker on the share of nodes quarantined in a
few minutes) and Meta GCM (at most 3 actions per node per hour, then a
cooldown). ``levels`` entries are ``kind=level`` or ``source:kind=level``; the
most specific wins, then the kind's default (``act`` for drain, resume,
cordon, uncordon; ``approve`` for everything destructive).
"""

from __future__ import annotations

from dataclasses import dataclass

from dcops.actions.request import SOURCE_KINDS, Level
from dcops.errors import ConfigError


@dataclass(frozen=True)
class ActionSettings:
    levels: tuple[str, ...] = ()
    max_drain_rack: float = 0.34  # 6 of 18 trays
    max_drain_fleet: float = 0.25
    breaker_window_s: float = 300.0
    max_per_run: int = 50
    node_max_actions: int = 3
    node_window_s: float = 3600.0
    override_cooldown_s: float = 3600.0
    approval_ttl_s: float = 86400.0
    approver_must_differ: bool = False
    timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if not (0 <= self.max_drain_rack <= 1 and 0 <= self.max_drain_fleet <= 1):
            raise ConfigError("actions: max_drain_rack and max_drain_fleet are shares in 0..1")
        for name in ("max_per_run", "node_max_actions"):
            if getattr(self, name) < 0:
                raise ConfigError(f"actions: {name} must be >= 0")
        for name in (
            "breaker_window_s",
            "node_window_s",
            "override_cooldown_s",
            "approval_ttl_s",
            "timeout_s",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"actions: {name} must be >= 0")
        self.level_table()  # validates every entry

    def level_table(self) -> dict[tuple[str | None, str], Level]:
        """``(source or None, kind) -> level`` from ``levels``."""
        table: dict[tuple[str | None, str], Level] = {}
        for entry in self.levels:
            key, sep, value = entry.partition("=")
            if not sep:
                raise ConfigError(f"actions.levels: {entry!r} is not [source:]kind=level")
            try:
                level = Level(value.strip())
            except ValueError:
                known = ", ".join(v.value for v in Level)
                raise ConfigError(
                    f"actions.levels: {entry!r}: unknown level (known: {known})"
                ) from None
            source, colon, kind = key.strip().rpartition(":")
            if colon and source not in SOURCE_KINDS:
                raise ConfigError(
                    f"actions.levels: {entry!r}: unknown source {source!r} "
                    f"(known: {', '.join(SOURCE_KINDS)})"
                )
            table[(source or None, kind.strip())] = level
        return table

    def level_for(self, kind: str, source: str, default: Level) -> Level:
        table = self.level_table()
        return table.get((source, kind)) or table.get((None, kind)) or default

"""What a run needs from the world, injected in one object (clock and sleep included).

The composition root (``dcops.cli.runbook_ports``) builds it from config and
mode: real SSH runner and scheduler, or the simulator (whose ``sleep``
advances the virtual clock, so a reboot "takes" its minutes instantly).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbooks.runs import Limits

if TYPE_CHECKING:
    from dcops.actions import Actuator
    from dcops.node_actions import NodeActions
    from dcops.ports import RemoteRunner
    from dcops.store import AuditLog, Store
    from dcops.verify import NodeChecker, Recertifier
    from runbooks.evidence import TicketSink


@dataclass
class EngineContext:
    store: Store
    audit: AuditLog
    actuator: Actuator
    runner: RemoteRunner
    sink: TicketSink
    data_dir: Path
    requested_by: str
    node_actions: NodeActions | None = None
    checker: NodeChecker | None = None
    recertifier: Recertifier | None = None
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    #: How an actuator in another process (``dcops actions approve``) reaches the nodes.
    runner_spec: dict[str, Any] | None = None
    management_host: str | None = None
    #: Called after every step (the simulator saves its world here).
    on_change: Callable[[], None] | None = None
    rack_of: Callable[[str], str | None] = lambda node: None

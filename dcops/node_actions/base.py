"""The node-actions port: take nodes out of service in a scheduler and put them back.

Burn-in and health sweeps reach Slurm (and later Kubernetes) only through
:class:`NodeActions`. Backends declare what they can do in ``features``
instead of being probed, and are found by name in a small registry::

    from dcops.node_actions import create
    actions = create("slurm-cli", slurm_conf="/etc/slurm/slurm.conf")
    actions.drain("gb200-r01-t[03-04]", "dcops: burn-in all_reduce 612 GB/s < 760")

Reasons are written by the caller and carry :data:`DCOPS_REASON_PREFIX`, so a
later sweep can tell the drains dcops made (and may undo) from an operator's
(:func:`is_dcops_reason`), as NHC does with its own prefix.

Errors: an unknown backend name raises :class:`~dcops.errors.UnknownNameError`,
a node the scheduler does not know :class:`~dcops.errors.UnknownNodeError`, a
malformed reason :class:`~dcops.errors.InputError`, and anything the scheduler
refuses :class:`~dcops.errors.SchedulerError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from dcops.errors import InputError
from dcops.hostlist import expand
from dcops.registry import Registry

#: Every reason dcops writes starts with this; operators' reasons do not.
DCOPS_REASON_PREFIX = "dcops:"

#: Scheduler node flags that mean "taken out of service by someone".
DRAIN_FLAG = "DRAIN"

#: Base states of a node that is not usable whatever its flags say.
_UNUSABLE_BASES = frozenset({"DOWN", "ERROR", "FUTURE", "UNKNOWN"})
#: Base states of a node that still runs work.
_BUSY_BASES = frozenset({"ALLOCATED", "MIXED", "COMPLETING"})


def is_dcops_reason(reason: str | None) -> bool:
    """Whether a scheduler reason was written by dcops (so dcops may act on it)."""
    return reason is not None and reason.lstrip().startswith(DCOPS_REASON_PREFIX)


def dcops_reason(detail: str) -> str:
    """``detail`` as a dcops reason: prefixed once, on one line."""
    text = " ".join(detail.split())
    if is_dcops_reason(text):
        return text
    return f"{DCOPS_REASON_PREFIX} {text}"


def check_reason(reason: str) -> str:
    """A reason a scheduler can store: non-empty, one line. Returns it stripped."""
    text = reason.strip()
    if not text:
        raise InputError("a drain needs a reason")
    if "\n" in text or "\r" in text:
        raise InputError(f"a drain reason must be one line, got {text!r}")
    return text


def node_names(nodes: str | Iterable[str]) -> list[str]:
    """Node names from a hostlist expression or an iterable of names (order kept, no repeats)."""
    items = expand(nodes) if isinstance(nodes, str) else list(nodes)
    seen: dict[str, None] = {}
    for item in items:
        name = item.strip()
        if not name:
            raise InputError("empty node name")
        seen.setdefault(name, None)
    return list(seen)


class NodeActionFeature(StrEnum):
    """What a node-actions backend can do (declared, never probed)."""

    DRAIN = "drain"  # take nodes out of service with a reason
    RESUME = "resume"  # put drained/down nodes back
    STATES = "states"  # report state, flags and reason
    REASON_USER = "reason-user"  # reports who set the reason
    REASON_TIME = "reason-time"  # reports when the reason was set
    REMOTE = "remote"  # can act through a RemoteRunner on a head node


@dataclass(frozen=True)
class SchedulerNodeState:
    """A node as its scheduler sees it.

    ``states`` holds the base state first (``IDLE``, ``ALLOCATED``, ``MIXED``,
    ``DOWN``...) then flags (``DRAIN``, ``NOT_RESPONDING``, ``COMPLETING``...),
    upper case, as Slurm >= 23.02 prints them. ``reason_time_s`` is Unix time.
    """

    node: str
    states: tuple[str, ...]
    reason: str = ""
    reason_user: str | None = None
    reason_time_s: float | None = None

    @property
    def base(self) -> str:
        return self.states[0] if self.states else "UNKNOWN"

    @property
    def flags(self) -> tuple[str, ...]:
        return self.states[1:]

    @property
    def drain(self) -> bool:
        """Taken out of service (DRAIN flag), whether or not jobs still run."""
        return DRAIN_FLAG in self.flags

    @property
    def drained(self) -> bool:
        """Drained and empty: safe to work on."""
        return self.drain and self.base not in _BUSY_BASES and "COMPLETING" not in self.flags

    @property
    def draining(self) -> bool:
        """Drained but jobs are still running or completing."""
        return self.drain and not self.drained

    @property
    def down(self) -> bool:
        return self.base in _UNUSABLE_BASES

    @property
    def responding(self) -> bool:
        return "NOT_RESPONDING" not in self.flags

    @property
    def in_service(self) -> bool:
        """Can take new work: not drained, not down, answering."""
        return not self.drain and not self.down and self.responding

    @property
    def by_dcops(self) -> bool:
        """The reason was written by dcops."""
        return is_dcops_reason(self.reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "states": list(self.states),
            "reason": self.reason,
            "reason_user": self.reason_user,
            "reason_time_s": self.reason_time_s,
        }


@runtime_checkable
class NodeActions(Protocol):
    """Drain, resume and read nodes in one scheduler.

    ``nodes`` may be a hostlist expression (``sim-r01-t[01-04]``) or names.
    Every method checks all names first: if one is unknown to the scheduler,
    it raises :class:`~dcops.errors.UnknownNodeError` and changes nothing.
    """

    name: str
    features: frozenset[NodeActionFeature]

    def drain(self, nodes: str | Iterable[str], reason: str) -> list[str]:
        """Take ``nodes`` out of service with ``reason``; running jobs finish. Returns the nodes."""
        ...

    def resume(self, nodes: str | Iterable[str]) -> list[str]:
        """Return drained or down ``nodes`` to service, others left alone; returns those resumed."""
        ...

    def states(self, nodes: str | Iterable[str] | None = None) -> dict[str, SchedulerNodeState]:
        """The state of ``nodes`` (every node when ``None``), keyed by node name."""
        ...


# --- registry ----------------------------------------------------------------------------


def backend_names() -> list[str]:
    """Names of the registered backends."""
    return NODE_ACTIONS.names()


def create(name: str, /, **options: Any) -> NodeActions:
    """A backend by name; an unknown name raises UnknownNameError listing the known ones."""
    return NODE_ACTIONS.create(name, **options)


def backends() -> Mapping[str, Callable[..., NodeActions]]:
    """A read-only view of the registry."""
    return NODE_ACTIONS.factories()


def _load_builtin() -> None:
    # The built-in backends register themselves on import; import them lazily so that
    # importing this module stays cheap and free of cycles.
    import dcops.node_actions.kubernetes
    import dcops.node_actions.recording
    import dcops.node_actions.slurm_cli  # noqa: F401


#: Every node-actions backend by name; the built-in ones load on first lookup.
NODE_ACTIONS: Registry[NodeActions] = Registry("node-actions backend", load=_load_builtin)

#: Class decorator: make a backend available to :func:`create` under ``name``.
register = NODE_ACTIONS.register

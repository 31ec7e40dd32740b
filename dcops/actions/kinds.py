"""Action kinds: a registry (``register``, ``create``, ``names``) of what the actuator can do.

Each kind says how the policy treats it and how it is executed::

    ActionKind("drain", takes_out=True, undo="resume", default_level=Level.ACT,
               executor=node_actions_executor("drain"))

- ``takes_out``: it takes nodes out of service (the breaker's shares count it);
- ``returns``: it puts nodes back (ownership: only what dcops took out, and
  only by the same kind of evidence);
- ``undo``: the kind that reverses it (``dcops actions undo ID``);
- ``default_level``: the autonomy level when config says nothing (destructive
  kinds: ``approve``);
- ``executor``: a factory taking the :class:`ExecContext` (the node-actions
  backend, a runner, options) and returning an :class:`Executor`.

Built in: ``drain``/``resume`` and ``cordon``/``uncordon`` through the
node-actions backend (in Kubernetes a drain is a cordon plus a taint). The
runbooks and capacity code register their own kinds (``reboot``,
``gpu_reset``, ``service_restart``, ``reservation``...) with a callable
executor (:class:`CallableExecutor`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dcops.actions.request import ActionRequest, Level
from dcops.errors import SchedulerError
from dcops.hostlist import compress
from dcops.node_actions.base import NodeActions
from dcops.registry import Registry


@dataclass(frozen=True)
class ExecContext:
    """What executors may use: the scheduler's node-actions port, a runner, free options."""

    node_actions: NodeActions | None = None
    runner: Any = None  # a dcops.ports.RemoteRunner, for kinds that run commands on nodes
    options: Mapping[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    """Does one kind of action. ``plan`` shows the exact call; ``run`` makes it.

    ``run`` raises :class:`~dcops.errors.DcopsError` on failure (the actuator
    records it as the outcome) and returns a one-line message.
    """

    def plan(self, request: ActionRequest, targets: Sequence[str]) -> list[str]: ...

    def run(self, request: ActionRequest, targets: Sequence[str]) -> str: ...


@dataclass(frozen=True)
class ActionKind:
    name: str
    executor: Callable[[ExecContext], Executor]
    takes_out: bool = False
    returns: bool = False
    undo: str | None = None
    default_level: Level = Level.APPROVE
    description: str = ""
    #: counted by (and held to) the per-node rate limit; False for a kind that changes
    #: nothing in service (``handover``)
    rate_limited: bool = True

    def __call__(self, context: ExecContext) -> Executor:
        """The kind is its executor's factory: an executor in ``context``."""
        return self.executor(context)


#: Every action kind by name; a kind is the factory of its executors.
KINDS: Registry[Executor] = Registry("action kind")


def register(kind: ActionKind, *, replace: bool = False) -> ActionKind:
    """Make ``kind`` available to the actuator; registering a name twice is an error."""
    KINDS.add(kind.name, kind, replace=replace)
    return kind


def get(name: str) -> ActionKind:
    """The registered kind ``name``; unknown names raise UnknownNameError listing the known."""
    found = KINDS.get(name)
    assert isinstance(found, ActionKind)  # only register() adds to KINDS
    return found


def create(name: str, context: ExecContext) -> Executor:
    """An executor for kind ``name`` in ``context``."""
    return KINDS.create(name, context)


def names() -> list[str]:
    return KINDS.names()


# --- executors -----------------------------------------------------------------------------


class NodeActionsExecutor:
    """drain/resume (and cordon/uncordon) through a :class:`NodeActions` backend."""

    def __init__(self, verb: str, actions: NodeActions | None) -> None:
        if verb not in ("drain", "resume"):
            raise ValueError(f"node-actions verb {verb!r}")
        self.verb = verb
        self.actions = actions

    def plan(self, request: ActionRequest, targets: Sequence[str]) -> list[str]:
        reason = request.reason if self.verb == "drain" else None
        if self.actions is None:
            return [f"(no node-actions backend) {self.verb}", compress(list(targets))]
        command_for = getattr(self.actions, "command_for", None)
        if callable(command_for):
            return list(command_for(self.verb, list(targets), reason))
        call = [f"{self.actions.name}.{self.verb}", compress(list(targets))]
        return [*call, f"reason={reason}"] if reason is not None else call

    def run(self, request: ActionRequest, targets: Sequence[str]) -> str:
        if self.actions is None:
            raise SchedulerError("no node-actions backend configured (slurm.node_actions)")
        if self.verb == "drain":
            done = self.actions.drain(list(targets), request.reason)
        else:
            done = self.actions.resume(list(targets))
        return f"{self.verb} {compress(done)}" if done else f"{self.verb}: nothing to change"


class CallableExecutor:
    """An executor from two callables: ``plan(request, targets)`` and ``run(request, targets)``."""

    def __init__(
        self,
        run: Callable[[ActionRequest, Sequence[str]], str],
        plan: Callable[[ActionRequest, Sequence[str]], list[str]] | None = None,
    ) -> None:
        self._run = run
        self._plan = plan

    def plan(self, request: ActionRequest, targets: Sequence[str]) -> list[str]:
        if self._plan is not None:
            return self._plan(request, targets)
        return [request.kind, compress(list(targets))]

    def run(self, request: ActionRequest, targets: Sequence[str]) -> str:
        return self._run(request, targets)


def node_actions_executor(verb: str) -> Callable[[ExecContext], Executor]:
    def factory(context: ExecContext) -> Executor:
        return NodeActionsExecutor(verb, context.node_actions)

    return factory


for _kind in (
    ActionKind(
        "drain",
        node_actions_executor("drain"),
        takes_out=True,
        undo="resume",
        default_level=Level.ACT,
        description="take nodes out of service in the scheduler (running jobs finish)",
    ),
    ActionKind(
        "resume",
        node_actions_executor("resume"),
        returns=True,
        default_level=Level.ACT,
        description="return drained nodes to service",
    ),
    ActionKind(
        "cordon",
        node_actions_executor("drain"),
        takes_out=True,
        undo="uncordon",
        default_level=Level.ACT,
        description="mark nodes unschedulable (Kubernetes cordon; a drain in Slurm)",
    ),
    ActionKind(
        "handover",
        node_actions_executor("drain"),
        default_level=Level.ACT,
        description=(
            "hand a node dcops holds drained to another owner (repair): the same drain, "
            "with the new owner's reason; nothing changes in service"
        ),
        rate_limited=False,
    ),
    ActionKind(
        "uncordon",
        node_actions_executor("resume"),
        returns=True,
        default_level=Level.ACT,
        description="mark cordoned nodes schedulable again",
    ),
):
    register(_kind)

"""The health-check interface: what to run on a node, and a pure judgement of its output.

A check is agentless: it names the argv lists to run on a node (standard tools
only: ``nvidia-smi -q -x``, ``journalctl``, ``dcgmi``, reads of ``/sys`` and
``/proc``), and judges their results centrally. Running and judging are apart,
so every check is tested on captured real output and on the simulator::

    check = get_check("xid")
    argvs = check.commands(facts)                     # what the sweep runs on the node
    results = [runner.run(node, argv, timeout_s=10) for argv in argvs]
    findings = check.judge(results, facts)            # pure

``CheckStatus`` per finding: ``ok``, ``warn``, ``fail`` (unhealthy),
``error`` (the check could not tell: command missing, unparsable output) or
``skip`` (the check does not apply to this node, the message says why: a GPU
check on a node whose SKU has no NVIDIA GPUs is never run). A check declares
``needs_nvidia_gpus = True`` to be skipped on such nodes.
``fatal`` marks findings that drain at once (XID 79, uncorrectable ECC, a
missing GPU); other failures make a node *suspect* first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from dcops.measurements import CommandResult
from dcops.registry import Registry


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    """One finding of one check on one node (optionally one GPU)."""

    check: str
    node: str
    status: CheckStatus
    message: str = ""
    fatal: bool = False
    gpu: int | None = None
    metric: str = ""
    value: Any = None
    threshold: Any = None
    action: str = ""  # recommended operator action (XID table), "" when none
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "node": self.node,
            "status": self.status.value,
            "message": self.message,
            "fatal": self.fatal,
            "gpu": self.gpu,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "action": self.action,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class NodeFacts:
    """What the inventory and the site baseline expect of a node, and the sweep context."""

    node: str
    sku: str
    expected_gpus: int
    baseline: Mapping[str, str] = field(default_factory=dict)  # driver_version, vbios ...
    since_s: float | None = None  # Unix time of the last sweep (XID window start)
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    #: False for a node whose SKU has no NVIDIA GPUs (``cpu``: CPU ranks stand in).
    nvidia_gpus: bool = True


@runtime_checkable
class Check(Protocol):
    name: str
    description: str

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        """The argv lists to run on the node, in order."""
        ...

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        """Pure: the findings from the commands' results (same order as ``commands``)."""
        ...


def _load_builtin() -> None:
    import importlib

    try:
        importlib.import_module("health.checks")
    except ModuleNotFoundError as exc:  # pragma: no cover - while checks are being written
        if exc.name != "health.checks":
            raise


#: Every check by name; the built-in ones (:mod:`health.checks`) load on first lookup.
CHECKS: Registry[Check] = Registry("check", load=_load_builtin)

#: Decorator for a check factory (usually the class): available as ``name``.
register_check = CHECKS.register


def needs_nvidia_gpus(check: Check) -> bool:
    """Whether ``check`` reads NVIDIA GPUs (its ``needs_nvidia_gpus`` attribute; default no)."""
    return bool(getattr(check, "needs_nvidia_gpus", False))


def check_names() -> list[str]:
    return CHECKS.names()


def get_check(name: str) -> Check:
    """A new instance of the check ``name``; UnknownNameError lists the known checks."""
    return CHECKS.create(name)


def get_checks(names: Sequence[str] | None = None) -> list[Check]:
    """The named checks (all registered ones when ``names`` is None)."""
    return [get_check(n) for n in (names if names is not None else check_names())]

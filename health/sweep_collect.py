"""Gather a sweep's findings: run every check's commands on every node, then judge them.

Agentless (the default): each node gets a plan, the distinct argv lists of the
chosen checks (a command two checks share runs once), run one after another
within the node's ``timeout_s``. Nodes are worked on ``concurrency`` at a time
by :func:`dcops.remote.run_many`, whose ``deadline_s`` bounds the whole
collection even when nodes hang or drop. Judging is central and pure (each
check's ``judge``), so the same checks run over SSH, here, or on the simulator.

``collect_remote_dcops`` instead runs ``dcops sweep --local --json`` on each
node (where dcops is installed there) and reads its findings back.

A node that cannot be reached, refuses us, shows a wrong host key or misses
the deadline gets a node-level ``error``, never ``ok``. A command that times
out or a check that crashes gives that check an ``error`` finding. A check that
needs NVIDIA GPUs is not run on a node whose SKU has none: a ``skip`` finding
with the reason (``sweep --local`` on a CPU-only host, as ``burnin run --local``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dcops.errors import CommandTimeout, ConnectError, HostKeyError, RemoteError
from dcops.measurements import CommandResult
from dcops.ports import RemoteRunner
from dcops.remote import run_many
from health.base import Check, CheckResult, CheckStatus, NodeFacts, needs_nvidia_gpus

log = logging.getLogger(__name__)

Argv = tuple[str, ...]
#: Called once per node as its result arrives: (node, done, total).
OnNode = Callable[[str, int, int], object]


@dataclass(frozen=True)
class NodeFindings:
    """What one node gave: its findings, or why it could not be checked at all."""

    node: str
    findings: tuple[CheckResult, ...] = ()
    error: str = ""  # node-level: unreachable, refused, host key, deadline
    duration_s: float = 0.0

    @property
    def unreachable(self) -> bool:
        return bool(self.error)


@dataclass
class _PlanRunner:
    """A RemoteRunner that, asked to run anything on a host, runs that host's plan."""

    inner: RemoteRunner
    plans: Mapping[str, Sequence[Argv]]
    outcomes: dict[str, dict[Argv, CommandResult | RemoteError]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(
        self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
    ) -> CommandResult:
        start = time.monotonic()
        deadline = start + timeout_s
        got: dict[Argv, CommandResult | RemoteError] = {}
        for args in self.plans[host]:
            left = deadline - time.monotonic()
            if left <= 0:
                got[args] = CommandTimeout(host, f"{args[0]}: no time left of {timeout_s:g}s")
                continue
            try:
                got[args] = self.inner.run(host, args, timeout_s=left)
            except (ConnectError, HostKeyError):
                raise  # the node, not the command: the whole node is an error
            except CommandTimeout as exc:
                got[args] = exc
            except RemoteError as exc:
                got[args] = exc
        with self._lock:
            self.outcomes[host] = got
        return CommandResult(host, tuple(argv), 0, "", "", time.monotonic() - start)


def skipped(check: Check, facts: NodeFacts) -> str:
    """Why ``check`` does not apply to the node ("" when it does): nothing of it runs."""
    if needs_nvidia_gpus(check) and not facts.nvidia_gpus:
        return f"skipped: no NVIDIA GPUs on this node (SKU {facts.sku})"
    return ""


def plan(checks: Sequence[Check], facts: NodeFacts) -> tuple[list[Argv], dict[str, list[Argv]]]:
    """The node's distinct argv lists in order, and each check's own argv lists."""
    per_check: dict[str, list[Argv]] = {}
    for check in checks:
        if skipped(check, facts):
            continue
        per_check[check.name] = [tuple(a) for a in check.commands(facts)]
    ordered = list(dict.fromkeys(a for argvs in per_check.values() for a in argvs))
    return ordered, per_check


def judge(
    checks: Sequence[Check],
    facts: NodeFacts,
    per_check: Mapping[str, Sequence[Argv]],
    outcomes: Mapping[Argv, CommandResult | RemoteError],
) -> list[CheckResult]:
    """Every check's findings from the node's command outcomes (a failing command: error)."""
    findings: list[CheckResult] = []
    for check in checks:
        why = skipped(check, facts)
        if why:
            findings.append(
                CheckResult(check=check.name, node=facts.node, status=CheckStatus.SKIP, message=why)
            )
            continue
        argvs = per_check.get(check.name, [])
        results: list[CommandResult] = []
        problem = ""
        for args in argvs:
            outcome = outcomes.get(args)
            if outcome is None:
                problem = f"{args[0]}: not run"
                break
            if isinstance(outcome, RemoteError):
                problem = str(outcome).removeprefix(f"{facts.node}: ")
                break
            results.append(outcome)
        if problem:
            findings.append(_error(check.name, facts.node, problem))
            continue
        try:
            found = check.judge(results, facts)
        except Exception as exc:  # a check's bug must not sink a sweep of thousands
            log.exception("check %s failed to judge %s", check.name, facts.node)
            found = [_error(check.name, facts.node, f"check crashed: {type(exc).__name__}: {exc}")]
        if not found:
            found = [CheckResult(check=check.name, node=facts.node, status=CheckStatus.OK)]
        findings.extend(found)
    return findings


def _error(check: str, node: str, message: str) -> CheckResult:
    return CheckResult(check=check, node=node, status=CheckStatus.ERROR, message=message)


def collect(
    runner: RemoteRunner,
    checks: Sequence[Check],
    facts: Mapping[str, NodeFacts],
    *,
    timeout_s: float,
    concurrency: int,
    deadline_s: float | None = None,
    on_node: OnNode | None = None,
) -> dict[str, NodeFindings]:
    """Run and judge ``checks`` on every node of ``facts`` (agentless)."""
    nodes = list(facts)
    plans: dict[str, list[Argv]] = {}
    per_check: dict[str, dict[str, list[Argv]]] = {}
    planning_errors: dict[str, str] = {}
    for node in nodes:
        try:
            plans[node], per_check[node] = plan(checks, facts[node])
        except Exception as exc:  # a check that cannot even say what to run
            log.exception("planning checks for %s failed", node)
            planning_errors[node] = f"planning checks failed: {type(exc).__name__}: {exc}"
            plans[node], per_check[node] = [], {}
    plan_runner = _PlanRunner(runner, plans)
    done = 0

    def seen(host: str, _outcome: object) -> None:
        nonlocal done
        done += 1
        if on_node is not None:
            on_node(host, done, len(nodes))

    todo = [n for n in nodes if n not in planning_errors]
    raw = run_many(
        plan_runner,
        todo,
        ("dcops-sweep-plan",),
        timeout_s=timeout_s,
        concurrency=concurrency,
        deadline_s=deadline_s,
        on_result=seen,
    )
    out: dict[str, NodeFindings] = {}
    for node in nodes:
        if node in planning_errors:
            out[node] = NodeFindings(node, error=planning_errors[node])
            continue
        outcome = raw[node]
        if isinstance(outcome, RemoteError):
            out[node] = NodeFindings(node, error=str(outcome).removeprefix(f"{node}: "))
            continue
        findings = judge(checks, facts[node], per_check[node], plan_runner.outcomes[node])
        out[node] = NodeFindings(node, tuple(findings), duration_s=outcome.duration_s)
    return out


# --- dcops on the node ------------------------------------------------------------------------


def remote_argv(dcops: str, checks: Sequence[str] | None, expected_gpus: int | None) -> Argv:
    """The command that sweeps a node from the inside: read-only, JSON, no lock."""
    argv = [dcops, "sweep", "--local", "--json", "--no-lock"]
    if checks:
        argv += ["--checks", ",".join(checks)]
    if expected_gpus is not None:
        argv += ["--expected-gpus", str(expected_gpus)]
    return tuple(argv)


def parse_remote(node: str, outcome: CommandResult | RemoteError) -> NodeFindings:
    """A node's findings from its ``dcops sweep --local --json`` output (exit 0 or 1)."""
    if isinstance(outcome, RemoteError):
        return NodeFindings(node, error=str(outcome).removeprefix(f"{node}: "))
    if outcome.returncode not in (0, 1):
        first = next((ln for ln in outcome.stderr.splitlines() if ln.strip()), "no output")
        why = f"remote dcops exited {outcome.returncode}: {first.strip()}"
        return NodeFindings(node, error=why, duration_s=outcome.duration_s)
    try:
        data: Any = json.loads(outcome.stdout)
        remote_nodes = data["nodes"]
        if len(remote_nodes) != 1:
            raise ValueError(f"expected 1 node, got {len(remote_nodes)}")
        entry = remote_nodes[0]
        findings = tuple(_finding(node, f) for f in entry["checks"])
    except (ValueError, KeyError, TypeError) as exc:
        why = f"remote dcops output does not parse: {type(exc).__name__}: {exc}"
        return NodeFindings(node, error=why, duration_s=outcome.duration_s)
    if entry.get("error"):
        return NodeFindings(node, findings, error=str(entry["error"]))
    return NodeFindings(node, findings, duration_s=outcome.duration_s)


def _finding(node: str, data: Mapping[str, Any]) -> CheckResult:
    return CheckResult(
        check=str(data["check"]),
        node=node,
        status=CheckStatus(data["status"]),
        message=str(data.get("message", "")),
        fatal=bool(data.get("fatal", False)),
        gpu=data.get("gpu"),
        metric=str(data.get("metric", "")),
        value=data.get("value"),
        threshold=data.get("threshold"),
        action=str(data.get("action", "")),
        evidence=dict(data.get("evidence") or {}),
    )


def collect_remote_dcops(
    runner: RemoteRunner,
    facts: Mapping[str, NodeFacts],
    *,
    dcops: str,
    checks: Sequence[str] | None,
    timeout_s: float,
    concurrency: int,
    deadline_s: float | None = None,
    on_node: OnNode | None = None,
) -> dict[str, NodeFindings]:
    """Run ``dcops sweep --local --json`` on every node and merge what they found."""
    nodes = list(facts)
    by_gpus: dict[int, list[str]] = {}
    for node in nodes:  # 0 for a node without NVIDIA GPUs: its GPU checks are skipped there
        gpus = facts[node].expected_gpus if facts[node].nvidia_gpus else 0
        by_gpus.setdefault(gpus, []).append(node)
    out: dict[str, NodeFindings] = {}
    done = 0

    def seen(host: str, _outcome: object) -> None:
        nonlocal done
        done += 1
        if on_node is not None:
            on_node(host, done, len(nodes))

    start = time.monotonic()
    for gpus, group in by_gpus.items():
        left = None if deadline_s is None else deadline_s - (time.monotonic() - start)
        if left is not None and left <= 0:
            for node in group:
                out[node] = NodeFindings(
                    node, error=f"no result within the {deadline_s:g}s deadline"
                )
            continue
        raw = run_many(
            runner,
            group,
            remote_argv(dcops, checks, gpus),
            timeout_s=timeout_s,
            concurrency=concurrency,
            deadline_s=left,
            on_result=seen,
        )
        for node, outcome in raw.items():
            out[node] = parse_remote(node, outcome)
    return {node: out[node] for node in nodes}

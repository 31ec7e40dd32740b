"""The actuator: the one place where dcops changes the fleet (drain, resume, cordon, reboot...).

Burn-in, health sweeps, runbooks, capacity reservations and the operator
commands (``dcops node``, ``dcops actions``) build :class:`ActionRequest` s and
pass them to :meth:`Actuator.submit`; nothing else calls a node-actions backend
to change anything. ::

    from dcops.actions import Actuator, ActionRequest, Source, evidence

    actuator = Actuator(audit, node_actions=backend, settings=cfg.actions,
                        topology=topology_of(site), lock_dir=cfg.data_dir / "locks")
    request = ActionRequest.make(
        "drain", "gb200-r01-t07",
        reason="dcops: burnin bi-...: gemm: 612 TFLOP/s < 1900",
        source=Source("burnin", run_id), requested_by="cron:burnin",
        evidence=[evidence("gemm", "slow GEMM", metric="tflops", value=612, threshold=1900)],
    )
    [result] = actuator.submit([request], apply=True)
    result.status          # Status.DONE, SKIPPED, REFUSED, PENDING, FAILED, DRY_RUN...
    result.steps           # ownership -> level -> breaker -> dry-run/execute, each with its verdict
    result.call            # the exact backend call (argv for Slurm)

The policy, in order (each step recorded; see docs/actions.md):

1. **ownership** (:mod:`dcops.actions.ownership`): re-read the scheduler; return
   only what dcops took out, and only by the same kind of evidence (a burn-in
   drain comes back after a burn-in recheck, never from a sweep); never
   overwrite an operator's drain; an operator's drain takes a node over;
2. **autonomy level** per kind and source (``[actions] levels``): observe,
   recommend, approve (queued; ``approve``/``deny``, expiring), act;
3. **circuit breaker** (:mod:`dcops.actions.breaker`): rack and fleet shares
   within a window, a cap per run, a rate per node, a cooldown after an
   operator reverses dcops; a refusal is exit code 5 from every command;
4. **dry-run** without ``apply``: the exact backend call, nothing stored;
5. **execute** with a timeout, intent (``started``) stored and audited before the
   call and the outcome after; a lock per node; a failure is an outcome; a run
   that died leaves an intent the next actuator reconciles;
6. **audit and undo**: every outcome in the audit chain with its evidence; a
   done drain/cordon can be reversed by ``undo(id)``.

Kinds are a registry (:mod:`dcops.actions.kinds`: ``register``, ``create``,
``names``); runbooks add ``reboot``, ``gpu_reset``... with a
:class:`CallableExecutor` and ``default_level=Level.APPROVE``.

Other entry points: ``approve(id, approver)``, ``deny(id, approver, reason)``,
``undo(id, requested_by)``, ``reconcile()``, ``expire()``,
``list_actions(pending=...)``, ``show(id)``. :func:`exit_code` maps results to
the CLI's exit code.
"""

from __future__ import annotations

from collections.abc import Iterable

from dcops.actions import host_kinds as _host_kinds  # noqa: F401 - registers reboot, gpu_reset
from dcops.actions.actuator import Actuator
from dcops.actions.breaker import BreakerVerdict, NodeHistory, Topology
from dcops.actions.kinds import (
    ActionKind,
    CallableExecutor,
    ExecContext,
    Executor,
    NodeActionsExecutor,
    create,
    get,
    names,
    register,
)
from dcops.actions.lock import TargetLock
from dcops.actions.ownership import origin_of_reason
from dcops.actions.request import (
    SOURCE_KINDS,
    ActionRequest,
    ActionResult,
    Level,
    Source,
    Status,
    Step,
    evidence,
)
from dcops.actions.settings import ActionSettings
from dcops.errors import DcopsError, ExitCode


def topology_of(site: object) -> Topology:
    """Fleet and rack sizes of a :class:`dcops.inventory.Site`, for the breaker's shares."""
    from dcops.inventory import Site

    assert isinstance(site, Site)
    racks = {r.name: len(r.nodes) for r in site.racks}

    def rack_of(node: str) -> str | None:
        try:
            return site.node(node).rack
        except DcopsError:  # a node outside the site: no rack share applies
            return None

    return Topology(fleet=site.nodes(), rack_of=rack_of, rack_sizes=racks)


def exit_code(results: Iterable[ActionResult], *, applied: bool = True) -> ExitCode:
    """REFUSED (5) if the breaker refused anything, INTERNAL (3) if an action failed, else OK.

    A dry run (``applied=False``) reports what the breaker would refuse but exits OK.
    """
    items = list(results)
    if applied and any(r.status is Status.REFUSED for r in items):
        return ExitCode.REFUSED
    if any(r.status is Status.FAILED for r in items):
        return ExitCode.INTERNAL
    return ExitCode.OK


__all__ = [
    "SOURCE_KINDS",
    "ActionKind",
    "ActionRequest",
    "ActionResult",
    "ActionSettings",
    "Actuator",
    "BreakerVerdict",
    "CallableExecutor",
    "ExecContext",
    "Executor",
    "Level",
    "NodeActionsExecutor",
    "NodeHistory",
    "Source",
    "Status",
    "Step",
    "TargetLock",
    "Topology",
    "create",
    "evidence",
    "exit_code",
    "get",
    "names",
    "origin_of_reason",
    "register",
    "topology_of",
]

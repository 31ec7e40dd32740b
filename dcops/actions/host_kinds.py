"""Action kinds that run a command on the node: ``reboot``, ``gpu_reset``, ``service_restart``.

And ``runbook_approval``: a gate with nothing to execute, so a runbook's
``approve`` step (and the re-run of a step that is not idempotent after a
crash) waits in the same approval queue (``dcops actions approve``).

The command runs through ``ExecContext.runner``; when the actuator has no
runner (an operator approving from another process), the request's
``params["runner"]`` says how to make one: ``{"kind": "ssh", "settings":
{...}}`` (the ``[ssh]`` config of the requester, no secrets: key *paths*),
``{"kind": "local"}``, or ``{"kind": "sim", "scenario": PATH, "state_db":
PATH}`` (the simulated fleet as the state store keeps it; saved after).
Every kind defaults to the ``approve`` level.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dcops.actions.kinds import ActionKind, CallableExecutor, ExecContext, Executor, register
from dcops.actions.request import ActionRequest, Level
from dcops.errors import BackendError, InputError, RemoteError

if TYPE_CHECKING:
    from dcops.ports import RemoteRunner

#: How long one node command may take (a GPU reset takes ~20 s; a reboot returns at once).
COMMAND_TIMEOUT_S = 90.0


def host_argv(kind: str, params: Mapping[str, Any]) -> list[str]:
    """The argv a kind runs on a node."""
    if kind == "reboot":
        return ["systemctl", "reboot"]
    if kind == "gpu_reset":
        gpu = str(params.get("gpu", ""))
        if not gpu.isdigit():
            raise InputError(f"gpu_reset needs a GPU index, got {gpu!r}")
        return ["nvidia-smi", "-r", "-i", gpu]
    if kind == "service_restart":
        service = str(params.get("service", ""))
        if not service or service.startswith("-") or "/" in service:
            raise InputError(f"service_restart needs a service name, got {service!r}")
        return ["systemctl", "restart", service]
    raise InputError(f"{kind!r} runs no node command")


def _with_runner(
    context: ExecContext, spec: Mapping[str, Any] | None, work: Callable[[RemoteRunner], str]
) -> str:
    if context.runner is not None:
        return work(context.runner)
    kind = (spec or {}).get("kind")
    if kind == "sim":
        from dcops.sim.world import open_world, save_world
        from dcops.store import Store

        assert spec is not None
        with Store(str(spec["state_db"])) as store:
            world = open_world(store, str(spec["scenario"]))
            try:
                return work(world.fleet.runner)
            finally:
                save_world(store, world)
                world.fleet.close()
    if kind == "ssh":
        from dcops.remote.ssh import SshRunner
        from dcops.remote.ssh_settings import SshSettings

        settings = dict((spec or {}).get("settings", {}))
        if "identity_files" in settings:
            settings["identity_files"] = tuple(settings["identity_files"])
        runner = SshRunner(SshSettings(**settings))
        try:
            return work(runner)
        finally:
            runner.close()
    if kind == "local":
        from dcops.remote.local import LocalRunner

        return work(LocalRunner())
    raise BackendError("no runner to reach the node (the action names none)")


def _executor(kind: str) -> Callable[[ExecContext], Executor]:
    def factory(context: ExecContext) -> Executor:
        def plan(request: ActionRequest, targets: Sequence[str]) -> list[str]:
            return [*host_argv(kind, request.params), "@", ",".join(targets)]

        def run(request: ActionRequest, targets: Sequence[str]) -> str:
            argv = host_argv(kind, request.params)
            timeout = float(request.params.get("timeout_s", COMMAND_TIMEOUT_S))

            def work(runner: RemoteRunner) -> str:
                done = []
                for node in targets:
                    try:
                        result = runner.run(node, argv, timeout_s=timeout)
                    except RemoteError as exc:
                        raise BackendError(f"{' '.join(argv)} on {node}: {exc}") from exc
                    if result.returncode != 0:
                        why = (result.stderr or result.stdout).strip().splitlines()
                        raise BackendError(
                            f"{' '.join(argv)} on {node} exited {result.returncode}: "
                            f"{why[0] if why else ''}"
                        )
                    done.append(node)
                return f"{' '.join(argv)} on {','.join(done)}"

            return _with_runner(context, request.params.get("runner"), work)

        return CallableExecutor(run=run, plan=plan)

    return factory


def _gate(context: ExecContext) -> Executor:
    return CallableExecutor(
        run=lambda request, targets: f"approved: {request.reason}",
        plan=lambda request, targets: ["approve", request.reason],
    )


for _kind in (
    ActionKind(
        "reboot",
        _executor("reboot"),
        default_level=Level.APPROVE,
        description="reboot the node (systemctl reboot over SSH)",
    ),
    ActionKind(
        "gpu_reset",
        _executor("gpu_reset"),
        default_level=Level.APPROVE,
        description="reset one GPU (nvidia-smi -r -i N); the node must be idle",
    ),
    ActionKind(
        "service_restart",
        _executor("service_restart"),
        default_level=Level.APPROVE,
        description="restart a systemd service (e.g. nvidia-fabricmanager)",
    ),
    ActionKind(
        "runbook_approval",
        _gate,
        default_level=Level.APPROVE,
        description="a runbook's approval gate (nothing runs on the node)",
    ),
):
    register(_kind)

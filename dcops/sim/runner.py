"""SimRemoteRunner: a few commands answered plausibly by simulated hosts (the RemoteRunner port).

Built in: ``hostname``, ``true``, ``false``, ``echo ARGS``, ``nvidia-smi -L``
and ``nvidia-smi -q -x`` (the node's probe reading as XML, see
:mod:`dcops.sim.smi_xml`). Anything else exits 127 ("command not found").
More commands can be added with :meth:`SimRemoteRunner.register`; no shell is
interpreted (argv lists only).

A host not in the site cannot be resolved (ConnectError), as over SSH;
unreachable and hung nodes behave as in every simulated adapter. The runner
does not sleep: ``duration_s`` is a plausible figure per command.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dcops.errors import ConnectError
from dcops.measurements import CommandResult
from dcops.sim import smi_xml
from dcops.sim.model import FleetModel, gpu_uuid
from dcops.sim.noise import Stream
from dcops.sim.probe import SimGpuProbe


@dataclass(frozen=True)
class Answer:
    """What a simulated command prints and returns."""

    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.01


#: A command handler: (host, argv, stdin) -> Answer.
Handler = Callable[[str, Sequence[str], str | None], Answer]


class SimRemoteRunner:
    """RemoteRunner over a :class:`~dcops.sim.model.FleetModel`."""

    def __init__(self, model: FleetModel, probe: SimGpuProbe | None = None) -> None:
        self.model = model
        self.probe = probe or SimGpuProbe(model, stream=Stream.RUNNER)
        self._commands: dict[str, Handler] = {
            "hostname": lambda host, argv, stdin: Answer(stdout=f"{host}\n"),
            "true": lambda host, argv, stdin: Answer(),
            "false": lambda host, argv, stdin: Answer(returncode=1),
            "echo": lambda host, argv, stdin: Answer(stdout=" ".join(argv[1:]) + "\n"),
            "nvidia-smi": self._nvidia_smi,
        }

    def register(self, command: str, handler: Handler) -> None:
        """Answer ``command`` (argv[0]) with ``handler`` from now on."""
        self._commands[command] = handler

    def run(
        self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
    ) -> CommandResult:
        if not argv:
            raise ValueError("argv must not be empty")
        model = self.model
        model.refresh()
        if host not in model.node_index:
            raise ConnectError(host, "could not resolve hostname (not in the simulated site)")
        model.check_nodes([host], timeout_s)
        handler = self._commands.get(argv[0])
        if handler is None:
            answer = Answer(returncode=127, stderr=f"bash: {argv[0]}: command not found\n")
        else:
            answer = handler(host, argv, stdin)
        return CommandResult(
            host=host,
            argv=tuple(argv),
            returncode=answer.returncode,
            stdout=answer.stdout,
            stderr=answer.stderr,
            duration_s=answer.duration_s,
        )

    def _nvidia_smi(self, host: str, argv: Sequence[str], stdin: str | None) -> Answer:
        args = list(argv[1:])
        reading = self.probe.read(host)
        lost = smi_xml.lost_gpu_message(reading)
        if lost is not None:
            return Answer(returncode=smi_xml.EXIT_GPU_LOST, stdout=lost, duration_s=2.0)
        if args == ["-L"]:
            lines = [
                f"GPU {g.gpu.index}: {g.name} (UUID: {gpu_uuid(host, g.gpu.index)})"
                for g in reading.gpus
            ]
            return Answer(stdout="".join(line + "\n" for line in lines), duration_s=0.05)
        if sorted(args) == ["-q", "-x"]:
            limit = self.model.profiles[self.model.node_idx(host)].gpu.power_w
            return Answer(stdout=smi_xml.render(reading, power_limit_w=limit), duration_s=0.8)
        return Answer(
            returncode=2,
            stderr="Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n",
        )

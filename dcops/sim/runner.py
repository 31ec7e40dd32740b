"""SimRemoteRunner: a few commands answered plausibly by simulated hosts (the RemoteRunner port).

Built in: ``hostname``, ``true``, ``false``, ``echo ARGS``, ``nvidia-smi -L``
and ``nvidia-smi -q -x`` (the node's probe reading as XML, see
:mod:`dcops.sim.smi_xml`), and what the health checks run (see
:mod:`dcops.sim.host_cmds`): ``nvidia-smi nvlink --status`` / ``-e``,
``journalctl -k``, ``dmesg``, ``ls -1 /proc/driver/nvidia/gpus``, ``df``,
``cat /proc/meminfo`` and ``find`` under ``/sys/class/infiniband``. Anything
else exits 127 ("command not found") -- ``dcgmi`` among them: DCGM is not
installed on a simulated node unless a test registers an answer.
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
from dcops.measurements import CommandResult, NodeReading
from dcops.sim import host_cmds, smi_xml
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
        #: Called with the host before every command; may raise (a node that is rebooting).
        self.gate: Callable[[str], None] | None = None
        self._commands: dict[str, Handler] = {
            "hostname": lambda host, argv, stdin: Answer(stdout=f"{host}\n"),
            "true": lambda host, argv, stdin: Answer(),
            "false": lambda host, argv, stdin: Answer(returncode=1),
            "echo": lambda host, argv, stdin: Answer(stdout=" ".join(argv[1:]) + "\n"),
            "nvidia-smi": self._nvidia_smi,
            "journalctl": self._journalctl,
            "dmesg": self._dmesg,
            "ls": self._ls,
            "cat": self._cat,
            "df": self._df,
            "find": self._find,
        }

    def register(self, command: str, handler: Handler) -> None:
        """Answer ``command`` (argv[0]) with ``handler`` from now on."""
        self._commands[command] = handler

    def handler(self, command: str) -> Handler | None:
        """The handler answering ``command`` now (to wrap it)."""
        return self._commands.get(command)

    def run(
        self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
    ) -> CommandResult:
        if not argv:
            raise ValueError("argv must not be empty")
        model = self.model
        model.refresh()
        if host not in model.node_index:
            raise ConnectError(host, "could not resolve hostname (not in the simulated site)")
        if self.gate is not None:
            self.gate(host)
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
            n = self.model.node_idx(host)
            limit = self.model.profiles[n].gpu.power_w
            xml = smi_xml.render(reading, power_limit_w=limit, clique=self._clique(host))
            return Answer(stdout=xml, duration_s=0.8)
        if args in (["nvlink", "--status"], ["nvlink", "-s"]):
            text = host_cmds.nvlink_status(reading, self._link_gbps(host, reading))
            return Answer(stdout=text, duration_s=0.3)
        if args in (["nvlink", "-e"], ["nvlink", "--errorcounters"]):
            return Answer(stdout=host_cmds.nvlink_errors(reading), duration_s=0.3)
        return Answer(
            returncode=2,
            stderr="Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n",
        )

    # -- what the health checks run (dcops.sim.host_cmds renders it) ----------------

    def _clique(self, host: str) -> tuple[int, str] | None:
        """(cliqueId, clusterUuid) of a node in a rack-wide NVLink domain, else None."""
        model = self.model
        n = model.node_idx(host)
        if model.profiles[n].nvlink_domain != "rack":
            return None
        domain = model.domain_of_node[n]
        clique = sorted(set(model.domain_of_node)).index(domain) + 1
        return clique, gpu_uuid(f"domain/{domain}", 0).removeprefix("GPU-")

    def _link_gbps(self, host: str, reading: NodeReading) -> list[float]:
        model = self.model
        gpu = model.profiles[model.node_idx(host)].gpu
        per_link = gpu.nvlink_gbps / gpu.nvlink_links if gpu.nvlink_links else 0.0
        first = model.node_gpus(host)
        factors = model.state.link_factor
        return [per_link * float(factors[first[g.gpu.index]]) for g in reading.gpus]

    def _journalctl(self, host: str, argv: Sequence[str], stdin: str | None) -> Answer:
        args = list(argv[1:])
        since: float | None = None
        if "--since" in args:
            pos = args.index("--since") + 1
            value = args[pos] if pos < len(args) else ""
            try:
                since = float(value.removeprefix("@"))
            except ValueError:
                return Answer(returncode=1, stderr=f"Failed to parse timestamp: {value}\n")
        if "-k" not in args:
            return Answer(stdout="-- No entries --\n", duration_s=0.1)
        reading = self.probe.read(host)
        return Answer(stdout=host_cmds.journal(host, reading, since), duration_s=0.2)

    def _dmesg(self, host: str, argv: Sequence[str], stdin: str | None) -> Answer:
        return Answer(stdout=host_cmds.dmesg(self.probe.read(host)), duration_s=0.05)

    def _ls(self, host: str, argv: Sequence[str], stdin: str | None) -> Answer:
        paths = [a for a in argv[1:] if not a.startswith("-")]
        if paths == ["/proc/driver/nvidia/gpus"]:
            return Answer(stdout=host_cmds.proc_gpus(self.probe.read(host)))
        missing = "".join(f"ls: cannot access '{p}': No such file or directory\n" for p in paths)
        return Answer(returncode=2, stderr=missing)

    def _cat(self, host: str, argv: Sequence[str], stdin: str | None) -> Answer:
        if list(argv[1:]) == ["/proc/meminfo"]:
            return Answer(stdout=host_cmds.meminfo())
        missing = "".join(f"cat: {p}: No such file or directory\n" for p in argv[1:])
        return Answer(returncode=1, stderr=missing)

    def _df(self, host: str, argv: Sequence[str], stdin: str | None) -> Answer:
        code, out, err = host_cmds.df([a for a in argv[1:] if not a.startswith("-")])
        return Answer(returncode=code, stdout=out, stderr=err, duration_s=0.02)

    def _find(self, host: str, argv: Sequence[str], stdin: str | None) -> Answer:
        roots = [a for a in argv[1:] if a.startswith("/")]
        if roots and roots[0].rstrip("/") == host_cmds.IB_ROOT:
            return Answer(stdout=host_cmds.ib_states(host_cmds.IB_ROOT), duration_s=0.05)
        where = roots[0] if roots else "."
        return Answer(returncode=1, stderr=f"find: '{where}': No such file or directory\n")

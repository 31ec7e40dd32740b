"""What simulated nodes do for remediation commands: reboot, GPU reset, services, evidence.

Installed on a :class:`~dcops.sim.fleet.SimFleet` by :func:`install`, it
answers (argv lists, no shell):

- ``systemctl reboot`` / ``reboot``: exit 0, then the node is down (every
  command: ConnectError) for ``reboot_s`` of virtual time; when it is back,
  the *transient* faults are gone: XID events (the kernel log is per boot; an
  XID 79 GPU is back on the bus), pending row remaps (applied), NVLink links
  down. Hardware faults stay: uncorrectable ECC counts, failed remaps, SDC,
  slow GPUs, missing GPUs, thermal and power faults. A hung node stays hung
  (the reboot command itself times out) and an unreachable one unreachable;
- ``nvidia-smi -r -i N`` (GPU reset): the same transient faults cleared on
  that GPU; a GPU that fell off the bus cannot be reset (exit 15);
- ``systemctl restart|is-active|status SERVICE``: services are always active;
  a fabric-manager restart clears the node's XID 45 events;
- ``nvidia-smi -q -d TEMPERATURE|PERFORMANCE``, ``nvidia-smi
  --query-remapped-rows=...``, ``nvidia-bug-report.sh``: evidence text.

The virtual clock does not move by itself: the runbook engine's waits advance
it (:meth:`Maintenance.sleep`). :func:`world_state` / :func:`restore_world`
turn what happened into JSON and back, so ``--sim`` commands see the fleet as
the previous command left it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dcops.errors import ConnectError
from dcops.sim.faults import Fault
from dcops.sim.runner import Answer

if TYPE_CHECKING:
    from dcops.sim.fleet import SimFleet

REBOOT_S = 240.0  # a GB200 tray: BIOS, BMC handshake, driver load
TRANSIENT_KINDS = frozenset({"xid", "nvlink_down"})


class Maintenance:
    """Boot state of simulated nodes and the remediation commands they answer."""

    def __init__(self, fleet: SimFleet, reboot_s: float = REBOOT_S) -> None:
        self.fleet = fleet
        self.reboot_s = reboot_s
        self.booting_until: dict[str, float] = {}
        self.boots: dict[str, int] = {}
        self.resets: dict[str, int] = {}
        runner = fleet.runner
        for name in ("systemctl", "reboot", "nvidia-bug-report.sh"):
            runner.register(name, self._dispatch)
        smi = runner.handler("nvidia-smi")
        assert smi is not None
        self._smi = smi  # the built-in answers for everything else
        runner.register("nvidia-smi", self._nvidia_smi)
        runner.gate = self._gate

    # -- time ----------------------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time (nodes finish booting)."""
        self.fleet.advance(max(0.0, seconds))
        self._settle()

    def _settle(self) -> None:
        now = self.fleet.clock.now()
        for node, until in list(self.booting_until.items()):
            if now >= until:
                del self.booting_until[node]

    def _gate(self, host: str) -> None:
        self._settle()
        if host in self.booting_until:
            raise ConnectError(host, "connection refused (rebooting)")

    # -- commands ------------------------------------------------------------------------

    def _dispatch(self, host: str, argv: Sequence[str], stdin: str | None) -> Answer:
        args = list(argv)
        if args[0] == "reboot" or args[1:] == ["reboot"]:
            return self.reboot(host)
        if args[0] == "nvidia-bug-report.sh":
            return Answer(stdout="nvidia-bug-report.log.gz written\n", duration_s=60.0)
        if len(args) == 3 and args[1] in ("restart", "is-active", "status"):
            if args[1] == "restart":
                if "fabricmanager" in args[2]:
                    self._clear(host, None, codes={45})
                return Answer(duration_s=2.0)
            return Answer(stdout="active\n")
        return Answer(returncode=1, stderr=f"{args[0]}: unsupported arguments\n")

    def reboot(self, host: str) -> Answer:
        self._clear(host, None)
        self.boots[host] = self.boots.get(host, 0) + 1
        self.booting_until[host] = self.fleet.clock.now() + self.reboot_s
        return Answer(duration_s=0.5)

    def _clear(self, host: str, gpu: int | None, codes: set[int] | None = None) -> int:
        def drop(f: Fault) -> bool:
            hit = f.node == host and (gpu is None or f.gpus is None or gpu in f.gpus)
            transient = f.kind in TRANSIENT_KINDS or (
                f.kind == "remapped_rows" and f.state == "pending"
            )
            return hit and transient and (codes is None or (f.kind == "xid" and f.code in codes))

        return self.fleet.model.remove_faults(drop)

    def _nvidia_smi(self, host: str, argv: Sequence[str], stdin: str | None) -> Answer:
        args = list(argv[1:])
        if args[:1] in (["-r"], ["--gpu-reset"]) and "-i" in args:
            return self._reset(host, args[args.index("-i") + 1 :][:1])
        if args[:2] == ["-q", "-d"]:
            return self._query(host, args[2] if len(args) > 2 else "")
        if args and args[0].startswith("--query-remapped-rows"):
            reading = self.fleet.probe.read(host)
            lines = ["gpu_bus_id, remapped_rows.pending, remapped_rows.failure\n"]
            for g in reading.gpus:
                pending = "Yes" if g.remapped_rows_pending else "No"
                failed = "Yes" if g.remapped_rows_failed else "No"
                lines.append(f"GPU {g.gpu.index}, {pending}, {failed}\n")
            return Answer(stdout="".join(lines))
        return self._smi(host, argv, stdin)

    def _reset(self, host: str, which: list[str]) -> Answer:
        if not which or not which[0].isdigit():
            return Answer(returncode=2, stderr="Invalid GPU index\n")
        gpu = int(which[0])
        reading = self.fleet.probe.read(host)
        found = [g for g in reading.gpus if g.gpu.index == gpu]
        if not found:
            return Answer(returncode=6, stderr=f"No GPU with index {gpu}\n")
        if found[0].lost:
            return Answer(
                returncode=15,
                stderr=f"Unable to reset GPU {gpu}: GPU has fallen off the bus.\n",
            )
        self._clear(host, gpu)
        self.resets[host] = self.resets.get(host, 0) + 1
        return Answer(stdout=f"GPU {gpu} was successfully reset.\n", duration_s=20.0)

    def _query(self, host: str, what: str) -> Answer:
        reading = self.fleet.probe.read(host)
        out = []
        for g in reading.gpus:
            out.append(f"GPU {g.gpu.index}\n")
            if "TEMPERATURE" in what.upper():
                out.append(f"    GPU Current Temp : {g.temperature_c:.0f} C\n")
            if "PERFORMANCE" in what.upper():
                out.append(f"    Clocks Event Reasons : 0x{int(g.clocks_event_reasons):016x}\n")
                out.append(f"    SM Clock : {g.sm_clock_mhz or 0:.0f} MHz\n")
        return Answer(stdout="".join(out))


def install(fleet: SimFleet, reboot_s: float = REBOOT_S) -> Maintenance:
    """Teach ``fleet``'s runner the remediation commands; returns the boot state."""
    return Maintenance(fleet, reboot_s)


def world_state(fleet: SimFleet, maintenance: Maintenance) -> dict[str, Any]:
    """What happened to the fleet since its scenario began, as JSON-able data."""
    current = fleet.faults()
    scenario = list(fleet.scenario.faults)
    removed = [i for i, f in enumerate(scenario) if not any(f is g for g in current)]
    return {
        "clock_s": fleet.clock.now(),
        "removed_faults": removed,
        "booting_until": dict(maintenance.booting_until),
        "boots": dict(maintenance.boots),
        "resets": dict(maintenance.resets),
    }


def restore_world(fleet: SimFleet, maintenance: Maintenance, state: dict[str, Any]) -> None:
    """Bring a freshly built fleet to ``state`` (see :func:`world_state`)."""
    clock = fleet.virtual_clock
    target = float(state.get("clock_s", clock.now()))
    if target > clock.now():
        clock.set(target)
    removed = {int(i) for i in state.get("removed_faults", [])}
    fleet.model.set_faults(f for i, f in enumerate(fleet.scenario.faults) if i not in removed)
    maintenance.booting_until = {k: float(v) for k, v in state.get("booting_until", {}).items()}
    maintenance.boots = {k: int(v) for k, v in state.get("boots", {}).items()}
    maintenance.resets = {k: int(v) for k, v in state.get("resets", {}).items()}

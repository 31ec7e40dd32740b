"""Slurm node actions through its command-line clients (``scontrol``, ``sinfo``).

Every command is an argv list run by :class:`dcops.slurm.commands.SlurmCommands`,
either here (:class:`dcops.remote.LocalRunner`) or on a head node through a
:class:`dcops.ports.RemoteRunner` (SSH), which quotes at its own boundary::

    actions = SlurmCliNodeActions(slurm_conf="/tmp/dcops-rig/slurm/etc/slurm.conf")
    actions.drain("sim-r01-t[03-04]", "dcops: nvlink errors on gpu2")
    actions.states("sim-r01-t03")["sim-r01-t03"].drain     # True

Drain is ``scontrol update NodeName=<hostlist> State=DRAIN Reason=<reason>``,
resume ``State=RESUME``. States come from ``scontrol --json show node``
(Slurm >= 23.02) or, where scontrol has no ``--json`` (22.05 and older),
``sinfo --json``; the source is found on first use and kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from dcops.errors import SchedulerError, UnknownNodeError
from dcops.hostlist import compress
from dcops.measurements import CommandResult
from dcops.node_actions.base import (
    NodeActionFeature,
    SchedulerNodeState,
    check_reason,
    node_names,
    register,
)
from dcops.node_actions.slurm_json import parse_nodes_json
from dcops.ports import RemoteRunner
from dcops.slurm.commands import SlurmCommands, first_line

#: What scontrol prints for a node name slurmctld does not know.
_UNKNOWN_NODE_MARKERS = ("invalid node name", "node not found", "no such node")


@register("slurm-cli")
class SlurmCliNodeActions:
    """NodeActions for Slurm, via scontrol/sinfo locally or on a head node."""

    name = "slurm-cli"
    features = frozenset(NodeActionFeature)

    def __init__(
        self,
        *,
        slurm_conf: str | Path | None = None,
        runner: RemoteRunner | None = None,
        host: str = "localhost",
        env: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        """``runner``/``host``: where to run (default: here, :class:`dcops.remote.LocalRunner`).

        ``slurm_conf`` (as ``SLURM_CONF``) and ``env`` (more variables, e.g.
        ``SLURM_TIME_FORMAT``) reach the commands as ``env K=V ... scontrol ...``,
        the same here and over SSH.
        """
        self.slurm_conf = str(slurm_conf) if slurm_conf is not None else None
        self.host = host
        self.timeout_s = timeout_s
        self.env = dict(env or {})
        if self.slurm_conf is not None:
            self.env["SLURM_CONF"] = self.slurm_conf
        self.commands = SlurmCommands(env=self.env, runner=runner, host=host, timeout_s=timeout_s)
        self.runner: RemoteRunner = self.commands.runner
        self._json_source: str | None = None  # "scontrol" or "sinfo", found on first use

    # --- the port ---------------------------------------------------------------------

    def drain(self, nodes: str | Iterable[str], reason: str) -> list[str]:
        names = node_names(nodes)
        text = check_reason(reason)
        if not names:
            return []
        self.states(names)  # every name known, or UnknownNodeError before any change
        self._scontrol_update(names, "DRAIN", reason=text)
        return names

    def resume(self, nodes: str | Iterable[str]) -> list[str]:
        names = node_names(nodes)
        if not names:
            return []
        current = self.states(names)
        todo = [n for n in names if current[n].drain or current[n].down]
        if todo:
            self._scontrol_update(todo, "RESUME")
        return todo

    def states(self, nodes: str | Iterable[str] | None = None) -> dict[str, SchedulerNodeState]:
        every = self._all_states()
        if nodes is None:
            return every
        names = node_names(nodes)
        missing = [n for n in names if n not in every]
        if missing:
            raise UnknownNodeError(f"not known to Slurm: {compress(missing)}")
        return {n: every[n] for n in names}

    # --- commands ---------------------------------------------------------------------

    def _run(self, argv: Sequence[str]) -> CommandResult:
        return self.commands.run(argv)

    def command_for(self, verb: str, nodes: Iterable[str], reason: str | None = None) -> list[str]:
        """The exact argv a ``drain`` or ``resume`` of ``nodes`` runs (for dry-runs)."""
        state = {"drain": "DRAIN", "resume": "RESUME"}[verb]
        where = [] if self.host == "localhost" else [f"(on {self.host})"]
        return [*where, *self.commands.argv(self._update_argv(node_names(nodes), state, reason))]

    @staticmethod
    def _update_argv(names: list[str], state: str, reason: str | None) -> list[str]:
        argv = ["scontrol", "update", f"NodeName={compress(names)}", f"State={state}"]
        if reason is not None:
            argv.append(f"Reason={reason}")
        return argv

    def _scontrol_update(self, names: list[str], state: str, *, reason: str | None = None) -> None:
        argv = self._update_argv(names, state, reason)
        result = self._run(argv)
        if result.ok:
            return
        message = first_line(result.stderr, result.stdout)
        if any(marker in message.lower() for marker in _UNKNOWN_NODE_MARKERS):
            raise UnknownNodeError(f"not known to Slurm: {compress(names)} ({message})")
        raise SchedulerError(f"scontrol update State={state} on {compress(names)}: {message}")

    def _all_states(self) -> dict[str, SchedulerNodeState]:
        if self._json_source in (None, "scontrol"):
            result = self._run(["scontrol", "--json", "show", "node"])
            if result.ok:
                self._json_source = "scontrol"
                return parse_nodes_json(result.stdout)
            message = first_line(result.stderr, result.stdout)
            if not any(m in message.lower() for m in ("unrecognized option", "invalid option")):
                raise SchedulerError(f"scontrol show node: {message}")
            self._json_source = "sinfo"  # scontrol of 22.05 and older has no --json
        result = self._run(["sinfo", "--all", "--json"])
        if not result.ok:
            raise SchedulerError(f"sinfo --json: {first_line(result.stderr, result.stdout)}")
        return parse_nodes_json(result.stdout)

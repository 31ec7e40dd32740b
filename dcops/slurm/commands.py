"""Slurm's client commands (sbatch, squeue, sacct, scontrol, sinfo, sacctmgr, srun...), run one way.

Every Slurm command dcops runs goes through :class:`SlurmCommands`: on this
machine (:class:`dcops.remote.local.LocalRunner`, the default) or on a head
node through any :class:`dcops.ports.RemoteRunner` (SSH)::

    slurm = SlurmCommands(slurm_conf="/etc/slurm/slurm.conf")
    doc = slurm.json(["squeue", "--json"])
    result = slurm.run(["sbatch", "--parsable"], stdin=script, env=tenant_env,
                       clean_env=True, cwd=workdir)

What it adds to the runner:

* **environment**: ``SLURM_CONF`` from config, the instance's ``env`` and the
  call's ``env``, in that order. Here, the child inherits dcops's environment
  (without its ``SLURM_*``/``SBATCH_*``/``SALLOC_*``/``SRUN_*`` variables when
  ``drop_inherited_slurm``), or nothing but the given variables with
  ``clean_env`` (a tenant's commands). Through another runner the variables
  travel as ``env [-i] [-C DIR] K=V ... argv`` (GNU env; no shell), which is
  also how :meth:`SlurmCommands.argv` shows a command for dry-runs.
* **working directory** (``cwd``) and **stdin**.
* **timeout** per instance or per call: past it the command's process group is
  killed and :class:`dcops.errors.CommandTimeout` (a ``BackendError``) raised.
* **output cap**: ``max_output_bytes`` per stream (default 1 GiB here, far
  above the runner's 1 MiB default, for ``squeue/sacct/scontrol --json`` on a
  large fleet; a RemoteRunner keeps its own cap). Output past the cap is a
  :class:`dcops.errors.SchedulerError`: a cut JSON document is never parsed.
* **errors**, each one line: a Slurm command that is not installed (exit 126 or
  127 with the shell's, env's or runuser's "not found" for that command) is a
  ``SchedulerError``; a non-zero exit is a result from :meth:`SlurmCommands.run`
  and a ``SchedulerError`` from :meth:`SlurmCommands.output` and
  :meth:`SlurmCommands.json`.
"""

from __future__ import annotations

import json as _json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from dcops.errors import SchedulerError
from dcops.measurements import CommandResult
from dcops.ports import RemoteRunner
from dcops.remote.local import LocalRunner

#: Default output cap per stream for Slurm commands run here (1 GiB).
DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024 * 1024

#: Inherited variables that ``drop_inherited_slurm`` keeps from a Slurm command.
SLURM_ENV_PREFIXES = ("SLURM_", "SBATCH_", "SALLOC_", "SRUN_")


def first_line(*texts: str) -> str:
    """The first non-blank line of the first text that has one (at most 300 characters)."""
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                return line.strip()[:300]
    return "no output"


def _check_env_names(env: Mapping[str, str]) -> None:
    for key in env:
        if not key or "=" in key or not key.replace("_", "a").isalnum():
            raise ValueError(f"bad environment variable name {key!r}")


class SlurmCommands:
    """Runs Slurm client commands here or on ``host`` (see the module docstring)."""

    def __init__(
        self,
        *,
        slurm_conf: str | None = None,
        env: Mapping[str, str] | None = None,
        runner: RemoteRunner | None = None,
        host: str = "localhost",
        timeout_s: float = 60.0,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        drop_inherited_slurm: bool = False,
    ) -> None:
        if max_output_bytes < 1:
            raise ValueError("max_output_bytes must be >= 1")
        self.slurm_conf = slurm_conf
        self.env = dict(env or {})
        self.runner: RemoteRunner = runner if runner is not None else LocalRunner()
        self.host = host
        self.timeout_s = timeout_s
        self.max_output_bytes = max_output_bytes
        self.drop_inherited_slurm = drop_inherited_slurm

    def variables(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables a command gets on top of what it inherits: SLURM_CONF, ours, the call's."""
        out = {"SLURM_CONF": self.slurm_conf} if self.slurm_conf else {}
        out.update(self.env)
        out.update(env or {})
        return out

    def argv(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        clean_env: bool = False,
        cwd: str | None = None,
    ) -> list[str]:
        """``argv`` as it runs through a RemoteRunner (and as dry-runs show it)."""
        variables = self.variables(env)
        if not variables and not clean_env and cwd is None:
            return list(argv)
        _check_env_names(variables)
        prefix = ["env"]
        if clean_env:
            prefix.append("-i")
        if cwd is not None:
            prefix += ["-C", cwd]
        return [*prefix, *(f"{k}={v}" for k, v in variables.items()), *argv]

    def environment(
        self, env: Mapping[str, str] | None = None, *, clean_env: bool = False
    ) -> dict[str, str]:
        """The whole environment of a command started here."""
        if clean_env:
            base: dict[str, str] = {}
        elif self.drop_inherited_slurm:
            base = {k: v for k, v in os.environ.items() if not k.startswith(SLURM_ENV_PREFIXES)}
        else:
            base = dict(os.environ)
        return {**base, **self.variables(env)}

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        clean_env: bool = False,
        cwd: str | None = None,
        stdin: str | None = None,
        timeout_s: float | None = None,
    ) -> CommandResult:
        """Run one Slurm command; a non-zero exit is a result, every other failure an error."""
        if isinstance(argv, str | bytes) or not argv:
            raise ValueError("argv must be a non-empty list of arguments")
        limit = self.timeout_s if timeout_s is None else timeout_s
        if isinstance(self.runner, LocalRunner):
            result = self.runner.run(
                self.host,
                argv,
                timeout_s=limit,
                stdin=stdin,
                env=self.environment(env, clean_env=clean_env),
                cwd=cwd,
                max_output_bytes=self.max_output_bytes,
            )
        else:
            full = self.argv(argv, env=env, clean_env=clean_env, cwd=cwd)
            result = self.runner.run(self.host, full, timeout_s=limit, stdin=stdin)
        name = os.path.basename(argv[0])
        where = "" if self.host == "localhost" else f" on {self.host}"
        if result.returncode in (126, 127) and _not_found(result.stderr, name):
            said = first_line(result.stderr)
            if not said.lower().startswith(name.lower()):
                said = f"{name}: {said}"
            raise SchedulerError(f"{said}{where} (is the Slurm client installed?)")
        if result.truncated:
            raise SchedulerError(
                f"{name}{where}: output passed the runner's cap and was cut"
                f" ({self._cap_text()}); nothing was read from it"
            )
        return result

    def output(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        clean_env: bool = False,
        cwd: str | None = None,
        stdin: str | None = None,
        timeout_s: float | None = None,
    ) -> str:
        """stdout of a command that must succeed; a non-zero exit is a SchedulerError."""
        result = self.run(
            argv, env=env, clean_env=clean_env, cwd=cwd, stdin=stdin, timeout_s=timeout_s
        )
        if not result.ok:
            raise SchedulerError(
                f"{' '.join(argv[:3])} exited {result.returncode}: "
                f"{first_line(result.stderr, result.stdout)}"
            )
        return result.stdout

    def json(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """The JSON document a ``--json`` command prints; anything else is a SchedulerError."""
        text = self.output(argv, env=env, timeout_s=timeout_s)
        try:
            return _json.loads(text)
        except ValueError as exc:
            raise SchedulerError(f"{' '.join(argv[:3])} printed no JSON ({exc})") from exc

    def _cap_text(self) -> str:
        if isinstance(self.runner, LocalRunner):
            return f"max_output_bytes={self.max_output_bytes}"
        return "the remote runner's max_output_bytes"


def _not_found(stderr: str, name: str) -> bool:
    """stderr says that ``name`` itself could not be found or executed."""
    low = stderr.lower()
    n = name.lower()
    return any(
        marker in low
        for marker in (
            f"{n}: command not found",
            f"'{n}': no such file",
            f"'{n}': permission denied",
            f"execute {n}",
            f"{n}: no such file",
            f"{n}: permission denied",
        )
    )

"""Remote execution: run argv lists on this machine or on nodes over SSH.

Runners implement :class:`dcops.ports.RemoteRunner` and are picked by name::

    runner = get_runner("ssh", SshSettings(identity_files=("/etc/dcops/id_ed25519",)))
    results = run_many(runner, hosts, ["nvidia-smi", "-L"], timeout_s=30, deadline_s=120)

``local`` (:mod:`dcops.remote.local`) and ``ssh`` (:mod:`dcops.remote.ssh`)
ship here; others (the fleet simulator's) join with :func:`register_runner`.
paramiko is imported only when an SSH runner is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dcops.registry import Registry
from dcops.remote.fanout import run_many

if TYPE_CHECKING:
    from dcops.ports import RemoteRunner
    from dcops.remote.ssh_settings import SshSettings

RunnerFactory = Callable[["SshSettings | None"], "RemoteRunner"]


def _local(settings: SshSettings | None) -> RemoteRunner:
    from dcops.remote.local import LocalRunner

    if settings is not None:
        return LocalRunner(max_output_bytes=settings.max_output_bytes)
    return LocalRunner()


def _ssh(settings: SshSettings | None) -> RemoteRunner:
    from dcops.remote.ssh import SshRunner

    return SshRunner(settings)


#: Every runner by name: ``local`` and ``ssh`` here; others join with :func:`register_runner`.
RUNNERS: Registry[RemoteRunner] = Registry("runner")
RUNNERS.add("local", _local)
RUNNERS.add("ssh", _ssh)


def register_runner(name: str, factory: RunnerFactory) -> None:
    """Make ``get_runner(name, ...)`` call ``factory(settings)``; a name is registered once."""
    RUNNERS.add(name, factory)


def runner_names() -> tuple[str, ...]:
    return tuple(RUNNERS.names())


def get_runner(name: str, settings: SshSettings | None = None) -> RemoteRunner:
    """The runner called ``name``; an unknown name raises UnknownNameError listing the known."""
    return RUNNERS.create(name, settings)


__all__ = ["RUNNERS", "get_runner", "register_runner", "run_many", "runner_names"]

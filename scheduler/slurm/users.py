"""Running a command as a tenant's Unix user: ``runuser``, ``setpriv``, ``sudo`` or directly.

* dcops runs as the tenant user already: the command runs directly;
* dcops runs as root (the bridge host): ``runuser -u USER --`` (PAM limits
  apply, no password) or ``setpriv`` (no PAM, cheapest);
* otherwise: ``sudo -n -u USER --`` (needs a sudoers rule for sbatch, scancel
  and tail; without it the command fails with a clear error).

The child gets a clean environment (PATH, HOME, USER, LOGNAME, LANG and
SLURM_CONF only): nothing of the operator's environment reaches a tenant job.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
from collections.abc import Sequence

from dcops.errors import InputError, SchedulerError

SWITCH_USER_METHODS = ("auto", "runuser", "setpriv", "sudo", "none")


class UserSwitch:
    """How to run a command as another Unix user (see the module docstring)."""

    def __init__(self, method: str = "auto", slurm_conf: str | None = None) -> None:
        if method not in SWITCH_USER_METHODS:
            raise InputError(f"switch_user: {method!r} (known: {', '.join(SWITCH_USER_METHODS)})")
        self.method = method
        self.slurm_conf = slurm_conf

    def env(self, user: str) -> dict[str, str]:
        try:
            entry = pwd.getpwnam(user)
        except KeyError as exc:
            raise SchedulerError(f"unix user {user!r} does not exist on this host") from exc
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": entry.pw_dir,
            "USER": user,
            "LOGNAME": user,
            "LANG": "C.UTF-8",
        }
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return env

    def argv(self, user: str, argv: Sequence[str]) -> list[str]:
        method = self.method
        if method == "none" or user == _current_user():
            return list(argv)
        if method == "auto":
            method = "runuser" if os.geteuid() == 0 else "sudo"
        if method == "runuser":
            return [_tool("runuser"), "-u", user, "--", *argv]
        if method == "setpriv":
            entry = pwd.getpwnam(user)
            return [
                _tool("setpriv"),
                f"--reuid={entry.pw_uid}",
                f"--regid={entry.pw_gid}",
                "--init-groups",
                "--",
                *argv,
            ]
        # sudo resets the environment: pass SLURM_CONF explicitly.
        extra = [f"SLURM_CONF={self.slurm_conf}"] if self.slurm_conf else []
        return [_tool("sudo"), "-n", "-u", user, "--", "env", *extra, *argv]


def _tool(name: str) -> str:
    """Absolute path of a user-switch tool (the child's clean PATH lacks /usr/sbin)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin") or name


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"

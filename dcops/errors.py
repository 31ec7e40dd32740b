"""One error hierarchy for all of dcops.

Every error a user can cause or meet derives from :class:`DcopsError`. The CLI
has exactly one handler that turns a ``DcopsError`` into a one-line message on
stderr and the error's ``exit_code``; anything else is a bug.

::

    DcopsError                      exit 3  internal or backend failure
    ├── InputError                  exit 2  the user gave us something wrong
    │   ├── ConfigError                     config file / env / flag values
    │   ├── HostlistError                   malformed hostlist expression
    │   ├── SiteError                       bad site (inventory) file
    │   ├── ScenarioError                   bad simulator scenario file
    │   ├── UnknownNodeError                a node the inventory does not hold
    │   ├── UnknownNameError                unknown SKU, backend, check, run id...
    │   ├── QuotaExceededError              a tenant's request is over its quota
    │   └── AuthenticationError             an API credential is bad, revoked or expired
    ├── BackendError                exit 3  an adapter's service or library failed
    │   ├── RemoteError                     remote execution
    │   │   ├── ConnectError                host unreachable / refused / auth failed
    │   │   ├── HostKeyError                host key unknown or changed (never ignored)
    │   │   └── CommandTimeout              a command did not finish in time
    │   └── SchedulerError                  Slurm / Kubernetes said no or broke
    ├── StoreError                  exit 3  the state store cannot be read or written
    ├── BusyError                   exit 4  another run holds the lock (cron overlap)
    └── RefusedError                exit 5  the circuit breaker refused the action

Adapters wrap library exceptions with ``raise SomeError(...) from exc`` so the
cause stays available to ``--debug`` without reaching the user by default.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of every ``dcops`` command (documented in README)."""

    OK = 0
    UNHEALTHY = 1  # the command worked and found something failed/unhealthy/tampered
    INPUT = 2  # usage or input error: nothing was changed
    INTERNAL = 3  # the command itself failed (backend, store, bug)
    BUSY = 4  # another run holds the lock; nothing was done
    REFUSED = 5  # the circuit breaker (or rate limit) refused an action; it was not done


class DcopsError(Exception):
    """Root of every dcops error. ``str(err)`` is the one-line user message."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        # Exactly one line, whatever the message held.
        return " ".join(self.message.split())


class InputError(DcopsError):
    """The user gave something malformed or unknown; nothing was changed."""

    exit_code = ExitCode.INPUT


class ConfigError(InputError):
    """A config file, ``DCOPS_*`` variable or flag holds a bad value."""


class HostlistError(InputError):
    """A hostlist expression does not parse."""


class LocatedInputError(InputError):
    """An input error in a file, located by path and (when known) line and key."""

    def __init__(
        self, path: str, what: str, *, line: int | None = None, key: str | None = None
    ) -> None:
        where = path
        if line is not None:
            where += f":{line}"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {what}")
        self.path = path
        self.line = line
        self.key = key
        self.what = what


class SiteError(LocatedInputError):
    """A site (inventory) file is malformed or inconsistent."""


class ScenarioError(LocatedInputError):
    """A simulator scenario file is malformed or inconsistent."""


class UnknownNodeError(InputError):
    """One or more nodes are not in the inventory."""


class UnknownNameError(InputError):
    """A name (SKU, backend, check, run id...) is not among the known ones."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]) -> None:
        listed = ", ".join(sorted(known)) if known else "none"
        super().__init__(f"unknown {kind} {name!r} (known: {listed})")
        self.kind = kind
        self.name = name
        self.known = tuple(known)


class QuotaExceededError(InputError):
    """A tenant's request would exceed its quota; nothing was submitted."""


class AuthenticationError(InputError):
    """An API credential is malformed, unknown, revoked or expired (HTTP 401)."""


class BackendError(DcopsError):
    """An adapter's service or library failed."""


class RemoteError(BackendError):
    """Remote execution failed."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"{host}: {message}")
        self.host = host


class ConnectError(RemoteError):
    """The host could not be reached, refused us, or authentication failed."""


class HostKeyError(RemoteError):
    """The host key is unknown or does not match known_hosts."""


class CommandTimeout(RemoteError):
    """A command did not finish within its timeout."""


class SchedulerError(BackendError):
    """A scheduler (Slurm, Kubernetes) refused or failed an operation."""


class StoreError(DcopsError):
    """The state store cannot be opened, migrated, read or written."""


class BusyError(DcopsError):
    """Another run holds the lock; this one did nothing."""

    exit_code = ExitCode.BUSY


class RefusedError(DcopsError):
    """The actuator's circuit breaker or rate limit refused an action; nothing was done."""

    exit_code = ExitCode.REFUSED

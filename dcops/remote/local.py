"""Run commands on this machine: the default target, and the fan-out's baseline.

``LocalRunner`` implements :class:`dcops.ports.RemoteRunner` with
:mod:`subprocess`, argv lists only (never a shell). Behaviour matches the SSH
runner so code above the port cannot tell them apart:

* a command that cannot be found exits 127, one that cannot be executed 126
  (what a remote shell answers), with a one-line message on stderr;
* the command is finished when it has exited *and* closed its output (a
  background child still holding stdout keeps it running, as with ssh);
* past ``timeout_s`` the whole process group is killed with SIGKILL (the
  command runs in a new session) and :class:`dcops.errors.CommandTimeout` is
  raised;
* a process killed by a signal has ``returncode == -signum``;
* each of stdout and stderr keeps its first ``max_output_bytes`` bytes (per
  runner, or per call), decoded as UTF-8 with undecodable bytes replaced; a note
  says how much was dropped and the result's ``truncated`` is set;
* beyond the port, a call may give the child's whole environment (``env``; by
  default it inherits ours) and its working directory (``cwd``); a ``cwd`` that
  does not exist is a :class:`dcops.errors.RemoteError`, not "command not found".

The ``host`` argument is only recorded in the result: everything runs here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

from dcops.errors import CommandTimeout, RemoteError
from dcops.measurements import CommandResult
from dcops.remote._common import CHUNK_BYTES, DEFAULT_MAX_OUTPUT_BYTES, OutputBuffer, check_argv

log = logging.getLogger(__name__)

_POLL_IN = select.POLLIN | select.POLLHUP | select.POLLERR
_POLL_OUT = select.POLLOUT | select.POLLHUP | select.POLLERR


class LocalRunner:
    """Runs argv lists on this machine (see the module docstring for the rules)."""

    name = "local"

    def __init__(self, *, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> None:
        self.max_output_bytes = max_output_bytes

    def run(
        self,
        host: str,
        argv: Sequence[str],
        *,
        timeout_s: float,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        max_output_bytes: int | None = None,
    ) -> CommandResult:
        args = check_argv(argv)
        cap = self.max_output_bytes if max_output_bytes is None else max_output_bytes
        if cwd is not None and not os.path.isdir(cwd):
            raise RemoteError(host, f"cannot run {args[0]!r} in {cwd}: no such directory")
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError as exc:
            if cwd is not None and exc.filename == cwd:
                raise RemoteError(
                    host, f"cannot run {args[0]!r} in {cwd}: no such directory"
                ) from exc
            return _failed_start(host, args, 127, "command not found", start)
        except PermissionError as exc:
            if cwd is not None and exc.filename == cwd:
                raise RemoteError(
                    host, f"cannot run {args[0]!r} in {cwd}: permission denied"
                ) from exc
            return _failed_start(host, args, 126, "permission denied", start)
        except OSError as exc:
            raise RemoteError(host, f"cannot start {args[0]!r}: {exc.strerror or exc}") from exc

        out = OutputBuffer(cap)
        err = OutputBuffer(cap)
        returncode: int | None = None
        try:
            if _pump(proc, stdin, out, err, start + timeout_s):
                returncode = proc.wait(timeout=max(start + timeout_s - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            pass
        finally:
            if proc.returncode is None:
                _kill_group(proc)
            _close_pipes(proc)
        if returncode is None:
            raise CommandTimeout(
                host, f"{args[0]} did not finish within {timeout_s:g}s (process group killed)"
            )
        return CommandResult(
            host=host,
            argv=args,
            returncode=returncode,
            stdout=out.text(),
            stderr=err.text(),
            duration_s=time.monotonic() - start,
            truncated=bool(out.dropped or err.dropped),
        )


def _failed_start(
    host: str, args: tuple[str, ...], code: int, why: str, start: float
) -> CommandResult:
    return CommandResult(
        host=host,
        argv=args,
        returncode=code,
        stdout="",
        stderr=f"{args[0]}: {why}\n",
        duration_s=time.monotonic() - start,
    )


def _pump(
    proc: subprocess.Popen[bytes],
    stdin: str | None,
    out: OutputBuffer,
    err: OutputBuffer,
    deadline: float,
) -> bool:
    """Feed stdin and drain stdout/stderr until both close; False when the deadline passed."""
    assert proc.stdout is not None
    assert proc.stderr is not None
    poller = select.poll()
    sinks: dict[int, OutputBuffer] = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    for fd in sinks:
        poller.register(fd, _POLL_IN)
    pending = memoryview(stdin.encode("utf-8")) if stdin is not None else memoryview(b"")
    in_fd: int | None = None
    if proc.stdin is not None:
        in_fd = proc.stdin.fileno()
        if pending:
            os.set_blocking(in_fd, False)
            poller.register(in_fd, _POLL_OUT)
        else:
            proc.stdin.close()
            in_fd = None
    open_reads = len(sinks)
    while open_reads:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        for fd, _event in poller.poll(remaining * 1000):
            if fd == in_fd:
                try:
                    written = os.write(fd, pending[:CHUNK_BYTES])
                except BlockingIOError:
                    continue
                except OSError:  # the command closed its stdin early: fine
                    written = len(pending)
                pending = pending[written:]
                if not pending:
                    poller.unregister(fd)
                    assert proc.stdin is not None
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                    in_fd = None
                continue
            chunk = os.read(fd, CHUNK_BYTES)
            if chunk:
                sinks[fd].feed(chunk)
            else:
                poller.unregister(fd)
                open_reads -= 1
    return True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the command's whole process group (it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # stuck in the kernel (D state): nothing more to do
        log.warning("process %d did not exit after SIGKILL", proc.pid)


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()

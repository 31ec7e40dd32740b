"""Run commands on nodes over SSH (paramiko), with strict host keys and pooled connections.

Security rules (not options):

* Host keys are checked against one pinned known_hosts file before anything
  else is sent. An unknown, changed or revoked key raises
  :class:`dcops.errors.HostKeyError`; keys are never added automatically.
* Key authentication only, from identity files (``SshSettings.identity_files``
  plus ``IdentityFile`` lines of the ssh_config); no agent, no agent forwarding,
  no passwords. ``~/.ssh/id_*`` are tried only when ``look_for_keys`` is set.
* argv lists are quoted with :func:`shlex.join` here, at the SSH boundary, and
  nowhere else. The remote login shell sees one correctly quoted command.
* Nothing secret is logged or put in an error message (paths, user and host
  names, key types and public fingerprints only).

Host names are resolved like OpenSSH does, from an optional client config
(``HostName``, ``Port``, ``User``, ``IdentityFile``, ``HostKeyAlias``); see
:mod:`dcops.remote.ssh_settings`.

Timeouts: ``timeout_s`` bounds the whole call, connecting included (the
connect phase also stops at ``connect_timeout_s``). When it passes, the channel
is closed and :class:`dcops.errors.CommandTimeout` is raised. Closing a pty-less
channel does not stop the remote process, so by default the remote command is
wrapped as ``timeout --kill-after=2 <T+1> argv...`` (GNU coreutils): it is sent
SIGTERM one second after our own deadline (and SIGKILL two seconds later), with
its whole process group. Set ``remote_timeout=False`` for hosts without GNU
``timeout``; then a hung remote command is only abandoned, not killed.

Connections are pooled per host name (one transport, many channels), shared by
threads, reopened when the transport died, and at most ``max_connections`` are
kept open when idle (least recently used closed first). Concurrent commands on
one host share its connection, so they are bounded by the server's
``MaxSessions`` (OpenSSH default 10).

A command killed by a signal on the remote side (no exit status sent) has
``returncode == -1``.
"""

from __future__ import annotations

import contextlib
import logging
import select
import shlex
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dcops.errors import CommandTimeout, ConfigError, ConnectError, HostKeyError, RemoteError
from dcops.measurements import CommandResult
from dcops.remote._common import CHUNK_BYTES, OutputBuffer, Watchdog, check_argv
from dcops.remote.known_hosts import KnownHosts
from dcops.remote.ssh_settings import SshResolver, SshSettings, SshTarget, load_key

if TYPE_CHECKING:
    from paramiko import Channel, PKey, Transport

log = logging.getLogger(__name__)

#: Seconds between our deadline and the remote ``timeout`` wrapper's SIGTERM.
REMOTE_GRACE_S = 1.0


@dataclass
class _Conn:
    transport: Transport
    users: int = 0


class SshRunner:
    """A :class:`dcops.ports.RemoteRunner` over SSH. Close it (or use ``with``) when done."""

    name = "ssh"

    def __init__(self, settings: SshSettings | None = None) -> None:
        self.settings = settings or SshSettings()
        s = self.settings
        self._known_hosts = KnownHosts.load(
            s.known_hosts or "~/.ssh/known_hosts", required=s.known_hosts is not None
        )
        self._resolver = SshResolver(s)
        self._keys: dict[str, PKey] = {}
        for path in s.identity_files:
            self._keys[path] = load_key(path)  # fail fast: a bad configured key is ConfigError
        self._lock = threading.Lock()
        self._conns: OrderedDict[str, _Conn] = OrderedDict()
        self._connect_locks: dict[str, threading.Lock] = {}
        self.connections_opened = 0  # transports opened so far (for tests and stats)

    # -- RemoteRunner ---------------------------------------------------------------

    def run(
        self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
    ) -> CommandResult:
        args = check_argv(argv)
        start = time.monotonic()
        deadline = start + timeout_s
        if timeout_s <= 0:
            raise CommandTimeout(host, f"{args[0]}: no time left to run it")
        target = self.resolve(host)
        conn, chan = self._open_channel(target, deadline)
        try:
            return self._exec(target, chan, args, stdin, start, deadline, timeout_s)
        finally:
            chan.close()
            self._release(host, conn)

    # -- public helpers -----------------------------------------------------------

    def resolve(self, host: str) -> SshTarget:
        """Apply the ssh_config ``Host`` blocks and the settings to ``host``."""
        return self._resolver.resolve(host)

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            conns = list(self._conns.values())
            self._conns.clear()
        for conn in conns:
            conn.transport.close()

    def __enter__(self) -> SshRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for c in self._conns.values() if c.transport.is_active())

    # -- connection pool ------------------------------------------------------------

    def _open_channel(self, target: SshTarget, deadline: float) -> tuple[_Conn, Channel]:
        """A new session channel on the host's pooled connection (reconnecting once if dead)."""
        import paramiko

        for attempt in (1, 2):
            conn, fresh = self._acquire(target, deadline)
            budget = min(self.settings.connect_timeout_s, deadline - time.monotonic())
            try:
                if budget <= 0:
                    raise paramiko.SSHException("no time left to open a session")
                return conn, conn.transport.open_session(timeout=budget)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                self._release(target.host, conn, broken=True)
                if fresh or attempt == 2 or time.monotonic() >= deadline:
                    raise ConnectError(target.host, f"cannot open a session: {_why(exc)}") from exc
                log.debug("%s: pooled connection is dead; reconnecting", target.host)
        raise AssertionError("unreachable")

    def _acquire(self, target: SshTarget, deadline: float) -> tuple[_Conn, bool]:
        host = target.host
        with self._lock:
            conn = self._take_live(host)
            if conn is not None:
                return conn, False
            host_lock = self._connect_locks.setdefault(host, threading.Lock())
        if not host_lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise ConnectError(host, "timed out waiting for another connection attempt")
        try:
            with self._lock:
                conn = self._take_live(host)
                if conn is not None:
                    return conn, False
            transport = self._connect(target, deadline)
            with self._lock:
                conn = _Conn(transport, users=1)
                self._conns[host] = conn
                self.connections_opened += 1
                doomed = self._evict()
            for old in doomed:
                old.close()
            return conn, True
        finally:
            host_lock.release()

    def _take_live(self, host: str) -> _Conn | None:
        """Under the lock: the host's live pooled connection, marked in use."""
        conn = self._conns.get(host)
        if conn is None:
            return None
        if not conn.transport.is_active():
            if conn.users == 0:
                del self._conns[host]
                conn.transport.close()
            return None
        conn.users += 1
        self._conns.move_to_end(host)
        return conn

    def _release(self, host: str, conn: _Conn, *, broken: bool = False) -> None:
        doomed: list[Transport] = []
        with self._lock:
            conn.users -= 1
            dead = broken or not conn.transport.is_active()
            if dead and self._conns.get(host) is conn:
                del self._conns[host]
            if dead and conn.users == 0:
                doomed.append(conn.transport)
            doomed.extend(self._evict())
        for transport in doomed:
            transport.close()

    def _evict(self) -> list[Transport]:
        """Under the lock: drop idle connections, oldest first, down to max_connections."""
        doomed: list[Transport] = []
        for host in list(self._conns):
            if len(self._conns) <= self.settings.max_connections:
                break
            if self._conns[host].users == 0:
                doomed.append(self._conns.pop(host).transport)
        return doomed

    # -- connecting -----------------------------------------------------------------

    def _connect(self, target: SshTarget, deadline: float) -> Transport:
        import paramiko

        host, where = target.host, f"{target.hostname}:{target.port}"
        timeout = min(self.settings.connect_timeout_s, deadline - time.monotonic())
        if timeout <= 0:
            raise ConnectError(host, f"{where}: no time left to connect")
        try:
            sock = socket.create_connection((target.hostname, target.port), timeout=timeout)
        except TimeoutError as exc:
            raise ConnectError(host, f"{where}: connect timed out after {timeout:g}s") from exc
        except ConnectionRefusedError as exc:
            raise ConnectError(host, f"{where}: connection refused") from exc
        except socket.gaierror as exc:
            raise ConnectError(host, f"cannot resolve {target.hostname!r}") from exc
        except OSError as exc:
            raise ConnectError(host, f"{where}: {exc.strerror or exc}") from exc
        transport = paramiko.Transport(sock)
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.auth_timeout = timeout
        self._prefer_known_key_types(transport, target.host_key_name)
        remaining = deadline - time.monotonic()
        with Watchdog(min(timeout, remaining), transport.close) as dog:
            try:
                transport.start_client(timeout=timeout)
                self._check_host_key(target, transport.get_remote_server_key())
                self._authenticate(transport, target)
            except RemoteError:
                transport.close()
                raise
            except (paramiko.SSHException, EOFError, OSError) as exc:
                transport.close()
                if dog.fired:
                    raise ConnectError(
                        host, f"{where}: no SSH session within {timeout:g}s"
                    ) from exc
                raise ConnectError(host, f"{where}: SSH handshake failed: {_why(exc)}") from exc
            if dog.fired:
                transport.close()
                raise ConnectError(host, f"{where}: no SSH session within {timeout:g}s")
        log.debug("%s: connected to %s as %s", host, where, target.user)
        return transport

    def _prefer_known_key_types(self, transport: Transport, name: str) -> None:
        """Ask first for a host key type we have pinned, as OpenSSH does."""
        known = self._known_hosts.known_types(name)
        if "ssh-rsa" in known:
            known = [*known, "rsa-sha2-512", "rsa-sha2-256"]
        options = transport.get_security_options()
        current = list(options.key_types)
        first = [t for t in current if t in known]
        if first:
            options.key_types = first + [t for t in current if t not in first]

    def _check_host_key(self, target: SshTarget, key: PKey) -> None:
        verdict = self._known_hosts.check(target.host_key_name, key)
        if verdict == "ok":
            return
        what = f"{key.get_name()} {key.fingerprint}"
        name, path = target.host_key_name, self._known_hosts.path
        if verdict == "unknown":
            message = f"host key {what} for {name!r} is not in {path}; refusing to connect"
        elif verdict == "revoked":
            message = f"host key {what} for {name!r} is revoked in {path}"
        else:
            message = (
                f"HOST KEY CHANGED: {name!r} offered {what}, which does not match {path};"
                " refusing to connect (possible man-in-the-middle or reinstalled node)"
            )
        raise HostKeyError(target.host, message)

    def _authenticate(self, transport: Transport, target: SshTarget) -> None:
        import paramiko

        keys = self._identities(target)
        if not keys:
            raise ConnectError(
                target.host, "no usable identity file (set ssh.identity_files or IdentityFile)"
            )
        for key in keys:
            try:
                more = transport.auth_publickey(target.user, key)
            except paramiko.BadAuthenticationType as exc:
                allowed = ",".join(exc.allowed_types) or "none"
                raise ConnectError(
                    target.host, f"server refuses public-key login (allows: {allowed})"
                ) from exc
            except paramiko.AuthenticationException as exc:
                # paramiko says "Authentication timeout." (or "failed" once the link died)
                # when no answer came: the network's fault, not a refused key.
                if "timeout" in str(exc).lower() or not transport.is_active():
                    raise ConnectError(
                        target.host,
                        f"no answer to public-key authentication as {target.user!r} "
                        "(timed out or connection lost)",
                    ) from exc
                continue
            if transport.is_authenticated():
                return
            raise ConnectError(
                target.host, f"server asks for more authentication ({','.join(more)})"
            )
        raise ConnectError(
            target.host, f"authentication as {target.user!r} refused for {len(keys)} key(s)"
        )

    def _identities(self, target: SshTarget) -> list[PKey]:
        keys: list[PKey] = []
        for path in target.identity_files:
            with self._lock:
                key = self._keys.get(path)
            if key is None:
                if not Path(path).expanduser().is_file():
                    log.debug("%s: identity file %s missing; skipped", target.host, path)
                    continue
                try:
                    key = load_key(path)
                except ConfigError as exc:
                    raise ConnectError(target.host, str(exc)) from exc
                with self._lock:
                    self._keys[path] = key
            keys.append(key)
        return keys

    # -- running ----------------------------------------------------------------------

    def _command_line(self, args: tuple[str, ...], deadline: float) -> str:
        if not self.settings.remote_timeout:
            return shlex.join(args)
        limit = max(deadline - time.monotonic(), 0.0) + REMOTE_GRACE_S
        return shlex.join(["timeout", "--kill-after=2", "--", f"{limit:.1f}", *args])

    def _exec(
        self,
        target: SshTarget,
        chan: Channel,
        args: tuple[str, ...],
        stdin: str | None,
        start: float,
        deadline: float,
        timeout_s: float,
    ) -> CommandResult:
        import paramiko

        out = OutputBuffer(self.settings.max_output_bytes)
        err = OutputBuffer(self.settings.max_output_bytes)
        with Watchdog(deadline - time.monotonic(), chan.close) as dog:
            try:
                chan.exec_command(self._command_line(args, deadline))
                if stdin is None:
                    chan.shutdown_write()
                else:
                    _feed_stdin(chan, stdin)
                _drain(chan, out, err, deadline)
                returncode = chan.recv_exit_status()
            except (paramiko.SSHException, EOFError, OSError) as exc:
                if dog.fired or time.monotonic() >= deadline:
                    raise _timeout(target.host, args, timeout_s) from exc
                raise RemoteError(target.host, f"{args[0]}: {_why(exc)}") from exc
            timed_out = dog.fired or not chan.exit_status_ready()
        if timed_out:
            raise _timeout(target.host, args, timeout_s)
        if returncode == -1 and not chan.get_transport().is_active():
            raise RemoteError(target.host, f"{args[0]}: connection lost while it ran")
        return CommandResult(
            host=target.host,
            argv=args,
            returncode=returncode,
            stdout=out.text(),
            stderr=err.text(),
            truncated=bool(out.dropped or err.dropped),
            duration_s=time.monotonic() - start,
        )


def _timeout(host: str, args: tuple[str, ...], timeout_s: float) -> CommandTimeout:
    return CommandTimeout(host, f"{args[0]} did not finish within {timeout_s:g}s (channel closed)")


def _feed_stdin(chan: Channel, text: str) -> None:
    """Send stdin from a helper thread so a command that writes before reading cannot deadlock."""

    def send() -> None:
        with contextlib.suppress(OSError, EOFError):
            chan.sendall(text.encode("utf-8"))
            chan.shutdown_write()

    threading.Thread(target=send, name="dcops-ssh-stdin", daemon=True).start()


def _drain(chan: Channel, out: OutputBuffer, err: OutputBuffer, deadline: float) -> None:
    """Read stdout and stderr until the remote end closes them or the deadline passes."""
    poller = select.poll()
    poller.register(chan.fileno(), select.POLLIN)
    while True:
        while chan.recv_ready():
            out.feed(chan.recv(CHUNK_BYTES))
        while chan.recv_stderr_ready():
            err.feed(chan.recv_stderr(CHUNK_BYTES))
        if chan.eof_received or chan.closed:
            if not (chan.recv_ready() or chan.recv_stderr_ready()):
                return
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        poller.poll(remaining * 1000)


def _why(exc: BaseException) -> str:
    """A short, secret-free reason for a library exception."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["SshRunner", "SshSettings", "SshTarget"]

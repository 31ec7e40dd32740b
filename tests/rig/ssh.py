"""A real, private OpenSSH server on 127.0.0.1 for the SSH tests (pytest plugin).

The session fixture ``sshd_rig`` starts ``sshd -D -f <generated config>`` on a
free loopback port, with a host key and a user key made for this test session
(ssh-keygen, ed25519), public-key login only for the current user, and its pid
file, log and keys in a temporary directory. As root on Debian it installs
``openssh-server`` when ``sshd`` is missing. It writes:

* ``known_hosts`` pinning the host key as ``[127.0.0.1]:PORT`` and under the
  HostKeyAlias ``dcops-rig``, plus ``dcops-rig-wrong`` pinned to *another* key;
* ``ssh_config`` where ``sim-*`` / ``node-*`` map to the rig (looked up as
  ``[127.0.0.1]:PORT``), ``keyed-*`` likewise under HostKeyAlias ``dcops-rig``,
  ``badkey-*`` under ``dcops-rig-wrong`` (a changed key), ``nokey-*`` under
  an alias with no pinned key, and ``closed-*`` to a loopback port nobody
  listens on.

The fixture skips, saying why, when sshd cannot be had or does not start.
sshd is stopped (with its connection processes) at the end of the session.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from dcops.remote.ssh import SshSettings

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
# Options newer than some supported OpenSSH releases: dropped when sshd -t rejects them.
OPTIONAL_OPTIONS = ("PerSourcePenalties", "UsePAM", "KbdInteractiveAuthentication", "SetEnv")


@dataclass(frozen=True)
class SshdRig:
    """Paths and names of the running rig, and ready-made client settings."""

    host: str
    port: int
    user: str
    workdir: Path
    pid: int
    identity_file: Path
    known_hosts: Path
    ssh_config: Path
    log_path: Path
    closed_port: int
    settings: SshSettings

    def settings_with(self, **changes: Any) -> SshSettings:
        return replace(self.settings, **changes)

    def connection_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener)."""
        return _children(self.pid)

    def drop_connections(self) -> None:
        """Kill every open connection on the server side (as a rebooted node would)."""
        for pid in self.connection_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def processes_with_argv(*argv: str) -> list[int]:
    """Pids of live processes whose argv contains ``argv`` as a contiguous run."""
    wanted = "\0".join(argv).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and wanted in cmdline:
            pids.append(int(entry.name))
    return pids


def _find_sshd() -> str | None:
    found = shutil.which("sshd")
    if found:
        return found
    return next((p for p in SSHD_CANDIDATES if os.access(p, os.X_OK)), None)


def _install_sshd() -> str | None:
    """apt-get install openssh-server (root on Debian only); the sshd path, or None."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "openssh-server"]
    for steps in ([install], [["apt-get", "update"], install]):
        try:
            for step in steps:
                subprocess.run(step, env=env, check=True, capture_output=True, timeout=600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
            continue
        if (path := _find_sshd()) is not None:
            return path
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    kind, blob = path.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {blob}"


def _sshd_config(work: Path, port: int, skip: set[str]) -> str:
    options = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        "AddressFamily inet",
        f"HostKey {work / 'ssh_host_ed25519_key'}",
        f"PidFile {work / 'sshd.pid'}",
        f"AuthorizedKeysFile {work / 'authorized_keys'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "UsePAM no",
        "AllowAgentForwarding no",
        "AllowTcpForwarding no",
        "X11Forwarding no",
        "PrintMotd no",
        "UseDNS no",
        "MaxStartups 200:30:400",
        "MaxSessions 64",
        "LoginGraceTime 30",
        "PerSourcePenalties no",
        # Debian's bash sources ~/.bashrc for ssh commands unless it is a nested shell;
        # SHLVL=1 keeps the developer's rc files (pyenv, conda...) out of the timings.
        "SetEnv SHLVL=1",
        "LogLevel VERBOSE",
    ]
    return "\n".join(o for o in options if o.split()[0] not in skip) + "\n"


def _check_config(sshd: str, config: Path, work: Path, port: int) -> str | None:
    """Write a config sshd accepts (dropping optional options it does not know)."""
    skip: set[str] = set()
    for _ in range(len(OPTIONAL_OPTIONS) + 1):
        config.write_text(_sshd_config(work, port, skip))
        check = subprocess.run(
            [sshd, "-t", "-f", str(config)], check=False, capture_output=True, text=True, timeout=30
        )
        if check.returncode == 0:
            return None
        bad = [o for o in OPTIONAL_OPTIONS if o in check.stderr and o not in skip]
        if not bad:
            return check.stderr.strip()
        skip.update(bad)
    return "sshd -t keeps rejecting the generated config"


def _wait_ready(proc: subprocess.Popen[bytes], port: int, timeout_s: float = 15.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.settimeout(1)
            if s.recv(64).startswith(b"SSH-"):
                return True
        time.sleep(0.05)
    return False


def _smoke_login(work: Path) -> str | None:
    """Log in once with OpenSSH's own client (when installed), so a broken rig is told apart
    from a dcops bug; the reason and sshd's last log lines when it fails."""
    ssh = shutil.which("ssh")
    if ssh is None:
        return None
    probe = subprocess.run(
        [ssh, "-F", str(work / "ssh_config"), "sim-rig-smoke", "true"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    if probe.returncode == 0:
        return None
    log = (work / "sshd.log").read_text(errors="replace").strip().splitlines()[-5:]
    return f"{probe.stderr.strip()} | sshd: {' / '.join(log)}"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for child in _children(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _client_files(work: Path, port: int, closed_port: int, user: str, host_pub: str) -> None:
    other_pub = _keygen(work / "other_host_key", "dcops-rig-other-host")
    (work / "known_hosts").write_text(
        f"[127.0.0.1]:{port} {host_pub}\ndcops-rig {host_pub}\ndcops-rig-wrong {other_pub}\n"
    )
    ident = work / "id_ed25519"
    common = f"    User {user}\n    IdentityFile {ident}\n"
    (work / "ssh_config").write_text(
        "# dcops test rig: every node name leads to the private sshd on loopback\n"
        f"Host sim-* node-*\n    HostName 127.0.0.1\n    Port {port}\n{common}\n"
        f"Host keyed-*\n    HostName 127.0.0.1\n    Port {port}\n{common}"
        "    HostKeyAlias dcops-rig\n\n"
        f"Host badkey-*\n    HostName 127.0.0.1\n    Port {port}\n{common}"
        "    HostKeyAlias dcops-rig-wrong\n\n"
        f"Host nokey-*\n    HostName 127.0.0.1\n    Port {port}\n{common}"
        "    HostKeyAlias dcops-rig-unknown\n\n"
        f"Host closed-*\n    HostName 127.0.0.1\n    Port {closed_port}\n{common}\n"
        # OpenSSH's own client reads the same file; these lines keep it strict.
        f"Host *\n    UserKnownHostsFile {work / 'known_hosts'}\n"
        "    StrictHostKeyChecking yes\n    BatchMode yes\n    IdentitiesOnly yes\n"
    )


@pytest.fixture(scope="session")
def sshd_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdRig]:
    """A running private sshd and client files pointing at it (see the module docstring)."""
    sshd = _find_sshd() or _install_sshd()
    if sshd is None:
        pytest.skip("sshd not found and cannot be installed (needs root and apt-get)")
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not found (package openssh-client)")
    if os.geteuid() == 0:
        # Privilege-separation directory; sshd refuses to start without it.
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    work = tmp_path_factory.mktemp("sshd")
    user = getpass.getuser()
    host_pub = _keygen(work / "ssh_host_ed25519_key", "dcops-rig-host")
    user_pub = _keygen(work / "id_ed25519", "dcops-rig-user")
    (work / "authorized_keys").write_text(user_pub + "\n")
    port, closed_port = _free_port(), _free_port()
    config = work / "sshd_config"
    problem = _check_config(sshd, config, work, port)
    if problem:
        pytest.skip(f"sshd rejects the rig config: {problem}")
    _client_files(work, port, closed_port, user, host_pub)
    log_path = work / "sshd.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    try:
        if not _wait_ready(proc, port):
            tail = log_path.read_text(errors="replace")[-800:]
            pytest.skip(f"sshd did not start on 127.0.0.1:{port}: {tail.strip()}")
        problem = _smoke_login(work)
        if problem:
            pytest.skip(f"cannot log in to the sshd rig as {user!r}: {problem}")
        settings = SshSettings(
            port=port,
            identity_files=(str(work / "id_ed25519"),),
            known_hosts=str(work / "known_hosts"),
            ssh_config=str(work / "ssh_config"),
            connect_timeout_s=5.0,
            command_timeout_s=10.0,
        )
        yield SshdRig(
            host="127.0.0.1",
            port=port,
            user=user,
            workdir=work,
            pid=proc.pid,
            identity_file=work / "id_ed25519",
            known_hosts=work / "known_hosts",
            ssh_config=work / "ssh_config",
            log_path=log_path,
            closed_port=closed_port,
            settings=settings,
        )
    finally:
        _stop(proc)

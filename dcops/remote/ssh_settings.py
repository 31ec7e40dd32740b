"""SSH settings, and how a node name becomes an address, user, keys and known_hosts name.

Resolution follows OpenSSH: an optional client config (``ssh_config``) is read
for ``HostName``, ``Port``, ``User``, ``IdentityFile`` and ``HostKeyAlias``.
Values from a matching ``Host`` block win over the fleet-wide defaults in
:class:`SshSettings`; ``IdentityFile`` lines come before ``identity_files``.
The known_hosts name is the ``HostKeyAlias`` as given, else ``hostname``
(port 22) or ``[hostname]:port``.

paramiko is imported only when a file is read.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dcops.errors import ConfigError
from dcops.remote._common import DEFAULT_MAX_OUTPUT_BYTES
from dcops.remote.known_hosts import known_hosts_name

if TYPE_CHECKING:
    from paramiko import PKey, SSHConfig

    from dcops.config import SshConfig

#: Tried only with ``look_for_keys=True`` (OpenSSH's defaults).
DEFAULT_KEYS = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")


@dataclass(frozen=True)
class SshSettings:
    """How dcops reaches nodes over SSH; filled from the ``[ssh]`` config section."""

    user: str | None = None  # None: the ssh_config User, else the local user
    port: int = 22
    identity_files: tuple[str, ...] = ()
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts (missing file: all unknown)
    ssh_config: str | None = None  # an OpenSSH client config file
    connect_timeout_s: float = 10.0
    command_timeout_s: float = 60.0  # the default per-command timeout for callers
    max_connections: int = 64
    look_for_keys: bool = False
    remote_timeout: bool = True  # wrap commands in GNU `timeout` so hung ones get killed
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"ssh.port must be 1..65535, not {self.port}")
        for name in ("connect_timeout_s", "command_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"ssh.{name} must be > 0")
        if self.max_connections < 1:
            raise ConfigError("ssh.max_connections must be >= 1")
        if self.max_output_bytes < 0:
            raise ConfigError("ssh.max_output_bytes must be >= 0")

    @classmethod
    def from_config(cls, ssh: SshConfig) -> SshSettings:
        """The settings of the ``[ssh]`` config section (every command builds them here)."""
        return cls(
            user=ssh.user,
            port=ssh.port,
            identity_files=ssh.identity_files,
            known_hosts=ssh.known_hosts,
            ssh_config=ssh.ssh_config,
            connect_timeout_s=ssh.connect_timeout_s,
            command_timeout_s=ssh.command_timeout_s,
            max_connections=ssh.max_connections,
        )


@dataclass(frozen=True)
class SshTarget:
    """Where a host name leads once the ssh_config and settings are applied."""

    host: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    host_key_name: str  # the name looked up in known_hosts


class SshResolver:
    """Turns node names into :class:`SshTarget` with the settings and the ssh_config."""

    def __init__(self, settings: SshSettings) -> None:
        self.settings = settings
        self._ssh_config = load_ssh_config(settings.ssh_config) if settings.ssh_config else None

    def resolve(self, host: str) -> SshTarget:
        """Apply the ssh_config ``Host`` blocks and the settings to ``host``."""
        s = self.settings
        hostname, port, user, alias = host, s.port, s.user, None
        files: list[str] = []
        if self._ssh_config is not None:
            found = self._ssh_config.lookup(host)
            hostname = str(found.get("hostname", host))
            if "port" in found:
                try:
                    port = int(found["port"])
                except ValueError:
                    raise ConfigError(f"{s.ssh_config}: bad Port for {host!r}") from None
            user = found.get("user", user)
            files.extend(found.get("identityfile", []))
            alias = found.get("hostkeyalias")
        files.extend(s.identity_files)
        if s.look_for_keys:
            files.extend(str(Path(p).expanduser()) for p in DEFAULT_KEYS)
        return SshTarget(
            host=host,
            hostname=hostname,
            port=port,
            user=user or getpass.getuser(),
            identity_files=tuple(dict.fromkeys(files)),
            host_key_name=known_hosts_name(hostname, port, alias),
        )


def load_key(path: str) -> PKey:
    import paramiko

    file = Path(path).expanduser()
    try:
        return paramiko.PKey.from_path(file)
    except (paramiko.PasswordRequiredException, TypeError):
        # cryptography says TypeError ("Password was not given but private key is encrypted")
        raise ConfigError(
            f"identity file {file} is passphrase-protected; dcops needs a dedicated"
            " unencrypted key (no agent is used)"
        ) from None
    except FileNotFoundError:
        raise ConfigError(f"identity file {file} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read identity file {file}: {exc.strerror}") from exc
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"identity file {file} is not a usable private key") from exc


def load_ssh_config(path: str) -> SSHConfig:
    import paramiko

    file = Path(path).expanduser()
    try:
        return paramiko.SSHConfig.from_path(str(file))
    except FileNotFoundError:
        raise ConfigError(f"ssh_config file {file} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read ssh_config file {file}: {exc.strerror}") from exc
    except (paramiko.ConfigParseError, ValueError) as exc:
        raise ConfigError(f"ssh_config file {file} does not parse: {exc}") from exc

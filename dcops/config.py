"""Configuration: one TOML file -> dataclasses, with a documented precedence.

Precedence, lowest first: built-in defaults < config file < ``DCOPS_*``
environment variables < command-line flags.

The file is ``--config FILE``, else ``$DCOPS_CONFIG``, else
``$XDG_CONFIG_HOME/dcops/config.toml`` when it exists. Example::

    site = "/etc/dcops/site.yaml"
    data_dir = "/var/lib/dcops"          # state.db, telemetry, reports
    audit_key = "/etc/dcops/audit.key"   # keys the audit chain; anchors beside it

    [ssh]
    user = "dcops"
    identity_files = ["/etc/dcops/id_ed25519"]
    known_hosts = "/etc/dcops/known_hosts"
    connect_timeout_s = 5

    [slurm]
    conf = "/etc/slurm/slurm.conf"

    [sweep]
    concurrency = 128
    resume_after_passes = 3

    [actions]                            # the actuator: levels and breaker (docs/actions.md)
    levels = ["reboot=approve", "sweep:drain=act"]
    max_drain_rack = 0.34
    node_max_actions = 3

Environment variables name a top-level key as ``DCOPS_<KEY>`` and a section key
as ``DCOPS_<SECTION>_<KEY>`` (``DCOPS_SITE``, ``DCOPS_SSH_USER``,
``DCOPS_SLURM_CONF``). Lists in the environment are comma-separated. Other
``DCOPS_*`` variables (the test rig's, for instance) are not config and are ignored.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from dcops.actions.settings import ActionSettings
from dcops.errors import ConfigError


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def default_data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "dcops"


def default_config_file() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "dcops" / "config.toml"


@dataclass(frozen=True)
class SshConfig:
    user: str | None = None
    port: int = 22
    identity_files: tuple[str, ...] = ()
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    ssh_config: str | None = None  # an OpenSSH client config (HostName/Port/User/...)
    connect_timeout_s: float = 10.0
    command_timeout_s: float = 60.0
    max_connections: int = 64


@dataclass(frozen=True)
class SlurmConfig:
    conf: str | None = None  # SLURM_CONF for the CLI tools; None: Slurm's default
    restd_url: str | None = None  # e.g. http://127.0.0.1:6820
    node_actions: str = "slurm-cli"


@dataclass(frozen=True)
class SweepConfig:
    """Health-sweep settings; ``None`` leaves the built-in default (see docs/sweeps.md)."""

    concurrency: int | None = None
    timeout_s: float | None = None
    deadline_s: float | None = None
    drain_after_failures: int | None = None
    resume_after_passes: int | None = None
    textfile_dir: str | None = None


@dataclass(frozen=True)
class RunbooksConfig:
    """Runbook settings (docs/runbooks.md)."""

    library_dirs: tuple[str, ...] = ()  # site runbook directories (after the built-in ones)
    escalate_webhook: str | None = None  # POST tickets here (JSON)
    escalate_dir: str | None = None  # else write tickets here; default data_dir/tickets
    max_remediations_7d: int = 3  # more runs on one node in 7 days -> escalate instead
    max_per_rack: int = 1  # runs acting at once in one rack
    max_fleet: int = 64  # runs acting at once in the fleet
    management_host: str | None = None  # where `host: management` command steps run (SSH)
    burnin_python: str = "python3"  # burnin steps over SSH: Python on the node (dcops, torch)
    burnin_thresholds: str | None = None  # burnin steps: a thresholds file (default: the SKU's)


@dataclass(frozen=True)
class Config:
    site: str | None = None  # site file; None = this machine alone
    data_dir: Path = field(default_factory=default_data_dir)
    state_db: Path | None = None  # default: data_dir / "state.db"
    audit_key: Path | None = None  # default: audit.key beside state.db (see dcops.store.seal)
    actor: str | None = None  # who is recorded in the audit log; default: the OS user
    ssh: SshConfig = field(default_factory=SshConfig)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    actions: ActionSettings = field(default_factory=ActionSettings)
    runbooks: RunbooksConfig = field(default_factory=RunbooksConfig)
    source: tuple[str, ...] = ()  # where values came from, for `dcops config show`
    #: (dotted key, where it was set) for every value not left at its default
    origins: tuple[tuple[str, str], ...] = ()
    #: the config file used, or the default path looked for when none was found
    config_file: str = ""
    config_file_found: bool = False

    @property
    def state_path(self) -> Path:
        return self.state_db if self.state_db is not None else self.data_dir / "state.db"

    @property
    def audit_key_path(self) -> Path:
        return (
            self.audit_key if self.audit_key is not None else self.state_path.with_name("audit.key")
        )


_SECTIONS: dict[str, type[Any]] = {
    "ssh": SshConfig,
    "slurm": SlurmConfig,
    "sweep": SweepConfig,
    "actions": ActionSettings,
    "runbooks": RunbooksConfig,
}
_META = {"source", "origins", "config_file", "config_file_found"}
_TOP_SKIP = set(_SECTIONS) | _META


def _coerce(where: str, name: str, hint: Any, value: Any) -> Any:
    """Convert a TOML or environment value to the field's type, or raise ConfigError."""
    text_hint = str(hint)
    try:
        if isinstance(value, str) and "tuple" in text_hint:
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if "tuple" in text_hint:
            if not isinstance(value, list | tuple):
                raise TypeError("expected a list")
            return tuple(str(v) for v in value)
        if "bool" in text_hint:
            if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
                return False
            if not isinstance(value, bool):
                raise TypeError("expected true or false")
            return value
        if "Path" in text_hint:
            return Path(os.path.expanduser(str(value)))
        if "float" in text_hint:
            if isinstance(value, bool):
                raise TypeError("expected a number")
            return float(value)
        if "int" in text_hint:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError("expected an integer")
            return int(value)
        if "str" in text_hint:
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise TypeError("expected a string")
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {name}: bad value {value!r} ({exc})") from exc
    return value


def _apply(cfg: Any, values: Mapping[str, Any], where: str, prefix: str = "") -> Any:
    hints = get_type_hints(type(cfg))
    known = {f.name for f in fields(cfg)} - (_META if not prefix else set())
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            listed = ", ".join(sorted(known - _TOP_SKIP | (set() if prefix else set(_SECTIONS))))
            raise ConfigError(f"{where}: unknown key '{prefix}{key}' (known: {listed})")
        if key in _SECTIONS and not prefix:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{key}] must be a table")
            changes[key] = _apply(getattr(cfg, key), value, where, prefix=f"{key}.")
        else:
            changes[key] = _coerce(where, prefix + key, hints[key], value)
    return replace(cfg, **changes)


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    top = {f.name for f in fields(Config)} - _TOP_SKIP
    for var, value in environ.items():
        if not var.startswith("DCOPS_") or var == "DCOPS_CONFIG":
            continue
        key = var[len("DCOPS_") :].lower()
        if key in top:
            out[key] = value
            continue
        for section, cls in _SECTIONS.items():
            sub = key.removeprefix(section + "_")
            if sub != key and sub in {f.name for f in fields(cls)}:
                out.setdefault(section, {})[sub] = value
                break
    return out


def _dotted(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in values.items():
        if key in _SECTIONS and not prefix and isinstance(value, Mapping):
            out += _dotted(value, prefix=f"{key}.")
        else:
            out.append(prefix + key)
    return out


def load_config(
    path: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the effective config: defaults < file < DCOPS_* env < ``overrides`` (flags)."""
    env = os.environ if environ is None else environ
    cfg = Config()
    sources = ["defaults"]
    origins: dict[str, str] = {}
    file = Path(path) if path else (Path(env["DCOPS_CONFIG"]) if env.get("DCOPS_CONFIG") else None)
    if file is None and default_config_file().is_file():
        file = default_config_file()
    looked_for = str(file if file is not None else default_config_file())
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{file}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from exc
        except (RecursionError, ValueError) as exc:  # deep nesting, 4,300+ digit integers
            raise ConfigError(f"{file}: invalid TOML: {str(exc)[:120]}") from exc
        cfg = _apply(cfg, data, str(file))
        sources.append(str(file))
        origins.update(dict.fromkeys(_dotted(data), str(file)))
    env_values = _from_env(env)
    if env_values:
        cfg = _apply(cfg, env_values, "environment")
        sources.append("environment")
        for key in _dotted(env_values):
            origins[key] = "environment DCOPS_" + key.replace(".", "_").upper()
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    if flags:
        cfg = _apply(cfg, flags, "command line")
        sources.append("flags")
        for key in _dotted(flags):
            origins[key] = "flag --" + key.replace("_", "-")
    return replace(
        cfg,
        source=tuple(sources),
        origins=tuple(sorted(origins.items())),
        config_file=looked_for,
        config_file_found=file is not None,
    )

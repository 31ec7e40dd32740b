"""``dcops config``: what configuration is in effect and where it came from."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import emit, get_config, json_option

if TYPE_CHECKING:
    from rich.console import Console

    from dcops.config import Config

_META = ("source", "origins", "config_file", "config_file_found")
_UNSET = {
    "site": "this machine alone",
    "state_db": "data_dir/state.db",
    "actor": "your user name",
    "ssh.user": "your user name",
    "ssh.known_hosts": "~/.ssh/known_hosts",
    "ssh.ssh_config": "none",
    "slurm.conf": "Slurm's default (SLURM_CONF or /etc/slurm/slurm.conf)",
    "slurm.restd_url": "none",
}


def _toml_value(value: Any) -> str:
    """One TOML value: strings are JSON-escaped basic strings (valid TOML), lists arrays."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def render_toml(cfg: Config) -> str:
    """The effective config as valid TOML; each value's source is a comment beside it."""
    origins = dict(cfg.origins)
    found = "" if cfg.config_file_found else " (not found: defaults, environment and flags only)"
    lines = [
        f"# config file: {cfg.config_file}{found}",
        "# precedence: defaults < file < DCOPS_* environment < flags",
    ]
    sections: list[tuple[str, dict[str, Any]]] = []
    for f in dataclasses.fields(cfg):
        if f.name in _META:
            continue
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            sections.append(
                (f.name, {g.name: getattr(value, g.name) for g in dataclasses.fields(value)})
            )
            continue
        lines.append(_line(f.name, f.name, value, origins))
    for section, values in sections:
        lines += ["", f"[{section}]"]
        lines += [_line(k, f"{section}.{k}", v, origins) for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _line(key: str, dotted: str, value: Any, origins: dict[str, str]) -> str:
    if value is None:
        unset = _UNSET.get(dotted, "built-in default")
        return f"# {key} is not set: {unset}"
    if isinstance(value, Path):
        value = str(value)
    return f"{key} = {_toml_value(value)}  # {origins.get(dotted, 'default')}"


@click.group()
def config() -> None:
    """Show the effective configuration (defaults < file < DCOPS_* env < flags)."""


@config.command()
@json_option
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective configuration as TOML, each value's source as a comment.

    The output is a valid config file: save it and edit it.
    """
    cfg = get_config(ctx)
    data = dataclasses.asdict(cfg)
    data["state_db"] = str(cfg.state_path)
    data["data_dir"] = str(cfg.data_dir)
    data["origins"] = dict(cfg.origins)

    def render(console: Console) -> None:
        click.echo(render_toml(cfg), nl=False)

    emit(data, as_json, render)

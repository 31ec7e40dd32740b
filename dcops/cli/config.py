"""``dcops config``: what configuration is in effect and where it came from."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import click

from dcops.cli.common import emit, get_config, json_option

if TYPE_CHECKING:
    from rich.console import Console


@click.group()
def config() -> None:
    """Show the effective configuration (defaults < file < DCOPS_* env < flags)."""


@config.command()
@json_option
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective configuration and its sources."""
    cfg = get_config(ctx)
    data = dataclasses.asdict(cfg)
    data["state_db"] = str(cfg.state_path)
    data["data_dir"] = str(cfg.data_dir)

    def render(console: Console) -> None:
        for key, value in data.items():
            click.echo(f"{key} = {value}")

    emit(data, as_json, render)

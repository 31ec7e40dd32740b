"""dcops tenant / jobs CLI: flags reach the store, the secret is printed once, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dcops.cli.jobs import jobs
from dcops.cli.tenant import tenant


@pytest.fixture
def cli() -> click.Group:
    return click.Group("dcops", commands={"tenant": tenant, "jobs": jobs})


def _invoke(group: click.Group, state: Path, *args: str) -> tuple[int, str]:
    obj = {"overrides": {"state_db": str(state)}}
    result = CliRunner().invoke(group, list(args), obj=obj, catch_exceptions=False)
    return result.exit_code, result.output


def test_create_token_show_revoke(cli: click.Group, tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    code, out = _invoke(
        cli,
        state,
        "tenant",
        "create",
        "acme",
        "--gpu-quota",
        "16",
        "--output-root",
        str(tmp_path),
        "--slurm-user",
        "acme01",
        "--json",
    )
    assert code == 0 and json.loads(out)["unix_users"] == ["acme01"]
    code, out = _invoke(cli, state, "tenant", "token", "acme", "--expires-days", "2", "--json")
    issued = json.loads(out)
    assert code == 0 and issued["token"].startswith("dct_")
    code, out = _invoke(cli, state, "tenant", "show", "acme", "--json")
    shown = json.loads(out)
    assert shown["tokens"][0]["token_id"] == issued["token_id"]
    assert issued["token"] not in out and issued["token"].split(".")[1] not in out
    code, out = _invoke(cli, state, "tenant", "quota", "acme", "8", "--json")
    assert json.loads(out)["gpu_quota"] == 8
    code, out = _invoke(cli, state, "tenant", "revoke", issued["token_id"], "--json")
    assert json.loads(out)["state"] == "revoked"
    code, out = _invoke(cli, state, "tenant", "list", "--json")
    assert [t["name"] for t in json.loads(out)] == ["acme"]


def test_render_takes_the_tenant_from_the_store(cli: click.Group, tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    _invoke(
        cli,
        state,
        "tenant",
        "create",
        "acme",
        "--gpu-quota",
        "16",
        "--output-root",
        str(tmp_path.resolve()),
    )
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: t\nresources: {nodes: 1, gpus_per_node: 4, time_limit: 1h}\n"
        "command: [python, train.py]\n"
    )
    code, out = _invoke(
        cli,
        state,
        "jobs",
        "render",
        str(spec),
        "--tenant",
        "acme",
        "--backend",
        "slurm",
        "--no-pyxis",
    )
    assert code == 0 and "#SBATCH --account=acme" in out

"""``dcops sweep`` through click: flags reach the core, exit codes, JSON, textfile, sim state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from dcops.cli.sweep import sweep
from dcops.config import Config
from dcops.errors import InputError, UnknownNameError
from tests.health import _sweep_checks  # noqa: F401  (registers the t-* checks)

pytestmark = pytest.mark.timeout(60)


@click.group()
@click.pass_context
def root(ctx: click.Context) -> None:
    ctx.ensure_object(dict)


root.add_command(sweep)


def scenario(tmp_path: Path, faults: list[dict[str, Any]]) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(json.dumps({"racks": 1, "seed": 1, "faults": faults}))
    return str(path)


def invoke(tmp_path: Path, *args: str) -> Result:
    obj = {"config": Config(data_dir=tmp_path / "data")}
    return CliRunner().invoke(root, ["sweep", "--checks", "t-smi,t-flag", *args], obj=obj)


def test_sim_dry_run_json_exit_1(tmp_path: Path) -> None:
    sc = scenario(tmp_path, [{"node": "sim-r01-t03", "kind": "xid", "gpu": 1, "code": 79}])
    result = invoke(tmp_path, "--sim", sc, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["mode"] == "sim" and report["apply"] is False
    assert report["summary"] == {"ok": 17, "warn": 0, "suspect": 0, "fail": 1, "error": 0}
    assert report["actions"][0] | {"evidence": None} == {
        "action": "drain",
        "node": "sim-r01-t03",
        "reason": "dcops: t-smi: GPU fell off the bus (XID 79)",
        "outcome": "dry-run",
        "status": "dry-run",
        "message": "",
        "id": None,
        "call": [
            "recording.drain",
            "sim-r01-t03",
            "reason=dcops: t-smi: GPU fell off the bus (XID 79)",
        ],
        "evidence": None,
    }
    assert report["checks"] == ["t-smi", "t-flag"]


def test_sim_apply_keeps_state_across_runs_and_writes_textfile(tmp_path: Path) -> None:
    sc = scenario(tmp_path, [{"node": "sim-r01-t03", "kind": "xid", "gpu": 1, "code": 79}])
    prom = tmp_path / "prom"
    prom.mkdir()
    first = invoke(tmp_path, "--sim", sc, "--apply", "--json", "--textfile", str(prom))
    assert first.exit_code == 1
    assert [a["outcome"] for a in json.loads(first.stdout)["actions"]] == ["ok"]
    assert (prom / "dcops_sweep.prom").read_text().count("dcops_node_health{") == 36
    # the in-memory scheduler of --sim is rebuilt from the store: no second drain
    second = json.loads(invoke(tmp_path, "--sim", sc, "--apply", "--json").stdout)
    node = next(n for n in second["nodes"] if n["node"] == "sim-r01-t03")
    assert second["actions"] == [] and node["state"] == "drained"
    assert node["scheduler"]["reason"].startswith("dcops: t-smi")


def test_healthy_sim_exit_0_and_human_summary(tmp_path: Path) -> None:
    result = invoke(tmp_path, "--sim", scenario(tmp_path, []), "--rack", "r01")
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout and "18 ok" in result.stdout


def test_breaker_exit_5_with_alert(tmp_path: Path) -> None:
    faults = [{"node": "sim-r01-t[01-08]", "kind": "xid", "gpu": 0, "code": 79}]
    result = invoke(tmp_path, "--sim", scenario(tmp_path, faults), "--apply", "--json")
    assert result.exit_code == 5
    assert "ALERT: circuit breaker: 8 of 18 nodes" in result.stderr
    assert json.loads(result.stdout)["circuit_breaker"].startswith("circuit breaker")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--local", "--nodes", "x"], InputError),
        (["--local", "--sim", "x.yaml"], InputError),
        (["--apply", "--no-lock", "--local"], InputError),
        (["--expected-gpus", "4", "--all"], InputError),
        (["--local", "--checks", "no-such-check"], UnknownNameError),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], error: type[Exception]) -> None:
    result = invoke(tmp_path, *args)
    assert isinstance(result.exception, error), result.output


def test_ssh_mode_needs_targets(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: t\nsku: h100\nracks:\n  - name: r01\n    nodes: n[01-02]\n")
    result = invoke(tmp_path, "--site", str(site))
    assert isinstance(result.exception, InputError)
    assert "--nodes, --rack, --partition or --all" in str(result.exception)


def test_local_flags_reach_the_core(tmp_path: Path) -> None:
    result = invoke(
        tmp_path, "--local", "--json", "--expected-gpus", "0", "--node-actions", "none",
        "--concurrency", "3", "--timeout", "7", "--deadline", "9", "--resume-after", "3",
        "--checks", "t-flag",
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["mode"] == "local" and len(report["nodes"]) == 1
    assert report["params"] | {"remote_dcops": None} == {
        "concurrency": 3,
        "timeout_s": 7.0,
        "deadline_s": 9.0,
        "apply": False,
        "remote_dcops": None,
        "drain_after_failures": 2,
        "resume_after_passes": 3,
        "max_drain_fleet": 0.25,
        "max_drain_rack": 0.34,
    }

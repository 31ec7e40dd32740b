"""``dcops sweep`` over real SSH: many node names lead to the rig's sshd, some of them badly.

A host whose command hangs, one whose port refuses, one with a wrong host key:
each is reported as ``error`` (never ``ok``), and the sweep keeps its timeout
and deadline.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from dcops.cli.sweep import sweep
from dcops.config import Config, SshConfig
from dcops.measurements import CommandResult
from health.sweep_collect import parse_remote
from tests.health import _sweep_checks  # noqa: F401  (registers the t-* checks)
from tests.rig.ssh import SshdRig

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(90)]

GOOD = [f"sim-r01-t{t:02d}" for t in range(1, 25)]
BAD = ["sim-hang-01", "closed-01", "badkey-01", "nokey-01"]


@click.group()
@click.pass_context
def root(ctx: click.Context) -> None:
    ctx.ensure_object(dict)


root.add_command(sweep)


def site_file(tmp_path: Path, nodes: list[str]) -> Path:
    path = tmp_path / "site.yaml"
    racks = "".join(f"  - name: r-{n}\n    nodes: {n}\n" for n in nodes)
    path.write_text(f"site: rig\nsku: cpu\nracks:\n{racks}")
    return path


def invoke(rig: SshdRig, tmp_path: Path, *args: str) -> Result:
    ssh = SshConfig(
        identity_files=(str(rig.identity_file),),
        known_hosts=str(rig.known_hosts),
        ssh_config=str(rig.ssh_config),
        connect_timeout_s=3.0,
    )
    obj = {"config": Config(data_dir=tmp_path / "data", ssh=ssh)}
    return CliRunner().invoke(root, ["sweep", *args], obj=obj)


def test_fanout_with_hung_refusing_and_wrong_key_hosts(sshd_rig: SshdRig, tmp_path: Path) -> None:
    site = site_file(tmp_path, GOOD + BAD)
    start = time.monotonic()
    result = invoke(
        sshd_rig, tmp_path, "--site", str(site), "--all", "--checks", "t-sleep,t-flag",
        "--timeout", "3", "--deadline", "20", "--concurrency", "16", "--json",
        "--node-actions", "none",
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    nodes = {n["node"]: n for n in report["nodes"]}
    assert all(nodes[n]["status"] == "ok" for n in GOOD), [nodes[n] for n in GOOD][:2]
    assert report["summary"] == {"ok": len(GOOD), "warn": 0, "suspect": 0, "fail": 0, "error": 4}
    hang = nodes["sim-hang-01"]
    assert hang["status"] == "error" and hang["error"] == ""
    assert {c["check"]: c["status"] for c in hang["checks"]} == {
        "t-sleep": "error",
        "t-flag": "error",
    }
    assert hang["checks"][0]["message"] == "sleep did not finish within 3s (channel closed)"
    assert hang["checks"][1]["message"].startswith("true: no time left")
    assert nodes["closed-01"]["status"] == "error" and nodes["closed-01"]["error"]
    assert "host key" in nodes["badkey-01"]["error"].lower()
    assert "host key" in nodes["nokey-01"]["error"].lower()
    assert elapsed < 15, elapsed
    assert report["actions"] == []


def test_deadline_holds_when_many_hosts_hang(sshd_rig: SshdRig, tmp_path: Path) -> None:
    hung = [f"sim-hang-{i:02d}" for i in range(6)]
    site = site_file(tmp_path, GOOD[:6] + hung)
    start = time.monotonic()
    result = invoke(
        sshd_rig, tmp_path, "--site", str(site), "--all", "--checks", "t-sleep",
        "--timeout", "30", "--deadline", "3", "--concurrency", "12", "--json",
        "--node-actions", "none",
    )  # fmt: skip
    elapsed = time.monotonic() - start
    report = json.loads(result.stdout)
    statuses = {n["node"]: n["status"] for n in report["nodes"]}
    assert all(statuses[n] == "error" for n in hung)
    assert all(statuses[n] == "ok" for n in GOOD[:6])
    assert elapsed < 8, elapsed


def test_remote_dcops_reports_the_remote_failure_as_error(
    sshd_rig: SshdRig, tmp_path: Path
) -> None:
    """dcops on the node does not know the test-only check: exit 2 there, error here."""
    site = site_file(tmp_path, GOOD[:2])
    result = invoke(
        sshd_rig, tmp_path, "--site", str(site), "--all", "--checks", "t-flag",
        "--remote-dcops", "/nonexistent/dcops", "--timeout", "10", "--json",
        "--node-actions", "none",
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert [n["status"] for n in report["nodes"]] == ["error", "error"]
    assert report["nodes"][0]["error"].startswith("remote dcops exited 127")


def test_remote_dcops_output_round_trips(tmp_path: Path) -> None:
    """What `dcops sweep --local --json` prints is what --remote-dcops reads back."""
    obj: dict[str, Any] = {"config": Config(data_dir=tmp_path / "data")}
    local = CliRunner().invoke(
        root,
        ["sweep", "--local", "--json", "--no-lock", "--checks", "t-flag", "--node-actions", "none"],
        obj=obj,
    )
    assert local.exit_code == 0, local.output
    got = parse_remote(
        "gb200-r01-t01",
        CommandResult("gb200-r01-t01", ("dcops",), local.exit_code, local.stdout, "", 0.2),
    )
    assert got.error == "" and [f.check for f in got.findings] == ["t-flag"]
    assert got.findings[0].node == "gb200-r01-t01"

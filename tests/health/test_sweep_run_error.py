"""A sweep that could not reach most of its nodes failed itself: ``run_error``, exit 3.

Before, every node was ``error`` and the sweep exited 1 ("unhealthy nodes found"), the
code of a sweep that worked and found bad nodes (a systemd unit with
``SuccessExitStatus=1`` never turned red when SSH or DNS was broken).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dcops.cli.sweep import sweep as sweep_command
from dcops.config import Config
from dcops.errors import ConnectError
from dcops.inventory import simulated_site
from dcops.measurements import CommandResult
from dcops.store import AuditLog, Store
from health.base import get_check
from health.sweep import SweepOptions, SweepPorts, exit_status, run_sweep
from tests.health import _sweep_checks

pytestmark = pytest.mark.timeout(60)


class Unreachable:
    """Refuses the nodes in ``down``; every other command succeeds."""

    def __init__(self, down: set[str]) -> None:
        self.down = down

    def run(
        self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
    ) -> CommandResult:
        if host in self.down:
            raise ConnectError(host, "connection refused")
        return CommandResult(host, tuple(argv), 0, "", "", 0.0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "state.db") as s:
        yield s


def _sweep(store: Store, down: int) -> dict[str, Any]:
    _sweep_checks.FLAGGED.clear()
    site = simulated_site(1, sku="h100")
    nodes = site.nodes()[:4]
    ports = SweepPorts(
        runner=Unreachable(set(nodes[:down])),
        site=site,
        checks=[get_check("t-flag")],
        store=store,
        audit=AuditLog(store, actor="test"),
    )
    return run_sweep(ports, nodes, SweepOptions(timeout_s=5.0))


def test_most_nodes_unreachable_is_a_run_error_exit_3(store: Store) -> None:
    report = _sweep(store, down=3)
    assert report["run_error"] == (
        "3 of 4 nodes could not be swept (connection refused): the sweep failed, "
        "not the nodes; no node was judged or drained for it"
    )
    assert exit_status(report) == 3
    assert report["actions"] == []


@pytest.mark.parametrize(("down", "code"), [(0, 0), (1, 1), (2, 1)])
def test_a_few_unreachable_nodes_are_unhealthy_exit_1(store: Store, down: int, code: int) -> None:
    report = _sweep(store, down=down)
    assert report["run_error"] is None and exit_status(report) == code


def test_cli_unresolvable_site_exits_3_with_the_run_error(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: t\nsku: h100\nracks:\n  - name: r01\n    nodes: nosuch-ux[01-02]\n")
    obj = {"config": Config(data_dir=tmp_path / "data")}
    args = ["--site", str(site), "--all", "--checks", "t-flag", "--node-actions", "none"]
    args += ["--timeout", "5"]
    table = CliRunner().invoke(sweep_command, args, obj=obj)
    assert table.exit_code == 3, table.output
    assert "run error: 2 of 2 nodes could not be swept" in table.stdout
    js = CliRunner().invoke(sweep_command, [*args, "--json"], obj=obj)
    assert js.exit_code == 3 and "could not be swept" in json.loads(js.stdout)["run_error"]

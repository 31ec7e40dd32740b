"""GPU checks on a node without NVIDIA GPUs (the ``cpu`` SKU) are ``skip`` with the reason.

A CPU-only host answers ``nvidia-smi`` with exit 127 (not installed): without the skip
the sweep reported an ``error`` row per GPU check and exited 1 where ``burnin run
--local`` passes the same host.
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
from dcops.inventory import local_site
from dcops.inventory.local import LocalGpus
from dcops.measurements import CommandResult
from dcops.store import AuditLog, Store
from health.base import check_names, get_check, needs_nvidia_gpus
from health.sweep import SweepOptions, SweepPorts, exit_status, run_sweep
from health.textfile import render
from tests.health import _sweep_checks

pytestmark = pytest.mark.timeout(60)

GPU_CHECKS = ("dcgm", "drift", "gpu_count", "memory", "nvlink", "throttle")


class CpuHost:
    """A host without the NVIDIA tools: ``nvidia-smi``/``dcgmi`` are not installed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def run(
        self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
    ) -> CommandResult:
        self.calls.append(tuple(argv))
        if argv[0] in ("nvidia-smi", "dcgmi"):
            return CommandResult(host, tuple(argv), 127, "", f"{argv[0]}: not found", 0.0)
        return CommandResult(host, tuple(argv), 0, "", "", 0.0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "state.db") as s:
        yield s


def _sweep(store: Store, runner: CpuHost, gpus: int = 0) -> dict[str, Any]:
    site = local_site(gpus=LocalGpus(gpus, "NVIDIA H100" if gpus else None, None), hostname="c1")
    ports = SweepPorts(
        runner=runner,
        site=site,
        checks=[get_check(n) for n in (*GPU_CHECKS, "t-flag")],
        store=store,
        audit=AuditLog(store, actor="test"),
    )
    return run_sweep(ports, site.nodes(), SweepOptions(mode="local", timeout_s=5.0))


def test_gpu_checks_declare_it() -> None:
    assert {n for n in check_names() if needs_nvidia_gpus(get_check(n))} == set(GPU_CHECKS)


def test_cpu_node_skips_gpu_checks_with_reason_and_exits_0(store: Store) -> None:
    _sweep_checks.FLAGGED.clear()
    runner = CpuHost()
    report = _sweep(store, runner)
    (node,) = report["nodes"]
    by_check = {f["check"]: f for f in node["checks"]}
    for name in GPU_CHECKS:
        assert by_check[name]["status"] == "skip", by_check[name]
        assert by_check[name]["message"] == "skipped: no NVIDIA GPUs on this node (SKU cpu)"
    assert by_check["t-flag"]["status"] == "ok"
    assert not [c for c in runner.calls if c[0] in ("nvidia-smi", "dcgmi")]  # never run
    assert node["status"] == "ok" and node["state"] == "ok"
    assert report["status"] == "ok" and exit_status(report) == 0
    assert report["skipped_checks"] == len(GPU_CHECKS)
    assert report["summary"]["error"] == 0
    assert 'check="gpu_count"' not in render(report)


def test_a_failing_check_still_fails_a_cpu_node(store: Store) -> None:
    _sweep_checks.FLAGGED.add("c1")
    try:
        report = _sweep(store, CpuHost())
    finally:
        _sweep_checks.FLAGGED.clear()
    assert report["status"] == "unhealthy" and exit_status(report) == 1


def test_a_gpu_node_without_nvidia_smi_is_still_error(store: Store) -> None:
    report = _sweep(store, CpuHost(), gpus=4)
    (node,) = report["nodes"]
    statuses = {f["check"]: f["status"] for f in node["checks"]}
    assert statuses["gpu_count"] == "error" and node["status"] == "error"
    assert report["skipped_checks"] == 0


def test_cli_summary_counts_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dcops.inventory as inventory

    monkeypatch.setattr(
        inventory, "local_site", lambda: local_site(gpus=LocalGpus(0, None, None), hostname="c1")
    )
    monkeypatch.setattr("dcops.remote.local.LocalRunner", CpuHost)
    obj = {"config": Config(data_dir=tmp_path / "data")}
    args = ["--local", "--checks", "gpu_count,memory,t-flag", "--node-actions", "none"]
    table = CliRunner().invoke(sweep_command, args, obj=obj)
    assert table.exit_code == 0, table.output
    assert "2 checks skipped" in table.stdout
    assert "skipped: no NVIDIA GPUs on this node (SKU cpu)" in table.stdout
    js = CliRunner().invoke(sweep_command, [*args, "--json"], obj=obj)
    assert js.exit_code == 0 and json.loads(js.stdout)["skipped_checks"] == 2

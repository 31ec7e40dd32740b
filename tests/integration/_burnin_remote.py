"""Shared helpers of the remote burn-in integration tests (Slurm and SSH rigs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


def cpu_site(tmp_path: Path, nodes: str) -> Path:
    """A site of CPU "GPUs" (one per node) whose rack is one NVLink domain."""
    path = tmp_path / "site.yaml"
    data = {
        "site": "rig",
        "sku": "cpu",
        "racks": [{"name": "r01", "nodes": nodes, "domain": "nvl-r01"}],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def small_thresholds(tmp_path: Path) -> Path:
    """The CPU profile with one 1 MiB collective size."""
    path = tmp_path / "thresholds.yaml"
    data = {"version": 1, "profiles": {"cpu": {"collectives": {"sizes_bytes": [1048576]}}}}
    path.write_text(yaml.safe_dump(data))
    return path


def burnin_run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``dcops burnin run ... --json`` in a subprocess: (process, report)."""
    proc = subprocess.run(
        [
            sys.executable, "-m", "dcops", "--state-db", str(tmp_path / "state.db"),
            "burnin", "run", "--rounds", "1", "--duration", "0.2",
            "--thresholds", str(small_thresholds(tmp_path)), "--json",
            "--remote-python", sys.executable, *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd="/tmp",
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )  # fmt: skip
    assert proc.stdout.strip(), f"exit {proc.returncode}: {proc.stderr[-3000:]}"
    return proc, json.loads(proc.stdout)


def by_node(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["node"]: n for n in report["nodes"]}

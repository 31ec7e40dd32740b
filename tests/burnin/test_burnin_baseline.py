"""A tray burned alone has too few peers: it is judged against the fleet baseline in the store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.burnin.test_burnin_run import by_node, dcops, scenario

SLOW = {"node": "sim-r01-t05", "gpu": 2, "kind": "slow_gemm", "factor": 0.9}


def _tray(tmp_path: Path, path: Path) -> dict[str, Any]:
    proc = dcops(tmp_path, "burnin", "run", "--sim", str(path), "--nodes", "sim-r01-t05", "--json")
    assert proc.returncode in (0, 1), proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def test_one_tray_alone_is_held_to_the_stored_fleet_baseline(tmp_path: Path) -> None:
    path = scenario(
        tmp_path, "slow.yaml", {"racks": 1, "seed": 11, "noise": 0.02, "faults": [SLOW]}
    )
    # no baseline yet: 4 GPUs, no peers; only the absolute floors judge, and it says so
    alone = _tray(tmp_path, path)
    assert alone["params"]["gemm_reference"] == "floors"
    gpu2 = by_node(alone)["sim-r01-t05"]["gpus"][2]
    assert gpu2["status"] == "pass"  # the gap the baseline closes
    # the whole rack: 72 peers catch the slow GPU and the passing GPUs become the baseline
    proc = dcops(tmp_path, "burnin", "run", "--sim", str(path), "--json")
    rack = json.loads(proc.stdout)
    assert rack["params"]["gemm_reference"] == "peers"
    assert by_node(rack)["sim-r01-t05"]["gpus"][2]["status"] == "fail"
    with sqlite3.connect(tmp_path / "state.db") as conn:
        rows = conn.execute("SELECT sku, metric, scope, samples FROM baselines").fetchall()
    assert rows == [("gb200-nvl72", "gemm_bf16_tflops_3r_sim", "gpu", 71)]
    # the tray alone again: now judged against the stored baseline, and failed
    alone = _tray(tmp_path, path)
    params = alone["params"]
    assert params["gemm_reference"] == "baseline"
    assert params["gemm_baseline"]["gpus"] == 71
    gpu2 = by_node(alone)["sim-r01-t05"]["gpus"][2]
    assert gpu2["status"] == "fail"
    assert [r["metric"] for r in gpu2["reasons"]] == ["tflops_vs_baseline"]
    others = by_node(alone)["sim-r01-t05"]["gpus"]
    assert [g["status"] for g in others if g["index"] != 2] == ["pass"] * 3
    # a tray run does not overwrite the baseline (too few peers to be one)
    with sqlite3.connect(tmp_path / "state.db") as conn:
        assert conn.execute("SELECT samples FROM baselines").fetchall() == [(71,)]

"""``dcops sim``: the example scenario loads, and the same seed gives the same measurements."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "scenarios" / "demo.yaml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcops", "sim", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_demo_scenario_checks() -> None:
    proc = run("check", str(DEMO), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["racks"], data["nodes"], data["gpus"], data["seed"]) == (2, 36, 144, 7)
    assert {f["kind"] for f in data["faults"]} == {
        "slow_gemm",
        "nvlink_degraded",
        "sdc",
        "xid",
        "thermal_throttle",
        "ecc",
        "unreachable",
        "hang",
    }


def test_same_seed_same_measurements_through_the_cli() -> None:
    args = ("measure", str(DEMO), "--nodes", "sim-r01-t[04-09],sim-r02-t03", "--json")
    first, second = run(*args), run(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    nodes = {n["node"]: n for n in json.loads(first.stdout)["nodes"]}
    sdc = nodes["sim-r01-t09"]["gpus"]
    assert sdc[0]["gemm_checksum"] != sdc[1]["gemm_checksum"] == sdc[2]["gemm_checksum"]
    lost = nodes["sim-r02-t03"]["gpus"][1]
    assert lost["lost"] and lost["gemm_tflops"] is None and lost["xids"] == [79]


def test_bad_scenario_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("racks: 1\nfaults:\n  - {node: sim-r09-t01, kind: sdc, gpu: 0}\n")
    proc = run("check", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert f"{bad}:3" in proc.stderr

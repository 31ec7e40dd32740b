"""``dcops burnin run`` end to end: the simulator scenario, this machine, bad input, actions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "scenarios" / "demo.yaml"


def dcops(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcops", "--state-db", str(tmp_path / "state.db"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def scenario(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def by_node(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["node"]: n for n in report["nodes"]}


def bad_gpus(node: dict[str, Any]) -> set[int]:
    return {g["index"] for g in node["gpus"] if g["status"] != "pass"}


def test_demo_scenario_every_fault_found_and_healthy_pass(tmp_path: Path) -> None:
    proc = dcops(tmp_path, "burnin", "run", "--sim", str(DEMO), "--json", "--probe-timeout", "0.3")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    for key in ("run_id", "sku", "summary", "nodes", "localization"):
        assert key in report
    nodes = by_node(report)
    expected_fail = {
        "sim-r01-t05": {2},
        "sim-r01-t09": {0},
        "sim-r02-t03": {1},
        "sim-r01-t14": {3},
        "sim-r02-t16": {0},
        "sim-r02-t11": set(),
    }
    for node, gpus in expected_fail.items():
        assert nodes[node]["status"] == "fail", node
        assert bad_gpus(nodes[node]) == gpus, node
    assert nodes["sim-r01-t17"]["status"] == "error"  # unreachable
    assert nodes["sim-r02-t18"]["status"] == "error"  # hung
    faulty = set(expected_fail) | {"sim-r01-t17", "sim-r02-t18"}
    assert all(n["status"] == "pass" for name, n in nodes.items() if name not in faulty)
    assert report["summary"] == {"pass": 28, "warn": 0, "fail": 6, "error": 2}
    # evidence: every non-pass GPU carries check, metric, value, threshold, message
    reason = next(r for g in nodes["sim-r01-t05"]["gpus"] if g["index"] == 2 for r in g["reasons"])
    assert {"check", "metric", "value", "threshold", "message"} <= set(reason)
    assert reason["check"] == "gemm" and reason["value"] < reason["threshold"]
    checks = {r["metric"] for g in nodes["sim-r01-t09"]["gpus"] for r in g["reasons"]}
    assert "checksum" in checks  # silent data corruption caught by checksum
    xids = [r for g in nodes["sim-r02-t03"]["gpus"] for r in g["reasons"] if r["metric"] == "xid"]
    assert xids and xids[0]["value"] == 79
    # the degraded NVLink tray is localized, by stages, with what it cost
    loc = {entry["target"]: entry for entry in report["localization"]}
    assert "sim-r02-t11" in loc
    cost = loc["sim-r02-t11"]
    assert 1 <= cost["stages"] <= 4 and cost["tests"] >= cost["stages"]
    assert cost["gpu_seconds"] > 0 and "all_pairs" not in json.dumps(report)
    params = report["params"]
    assert params["gemm_fixed_rounds"] == 3
    assert params["gemm_rounds"] == 3 + params["gemm_remeasure_rounds"]
    phases = params["gpu_seconds_by_phase"]
    assert params["gpu_seconds"] == pytest.approx(sum(phases.values()), abs=0.01)
    assert phases["localization"] == pytest.approx(
        sum({e["domain"]: e["gpu_seconds"] for e in report["localization"]}.values()), abs=0.01
    )
    # without --apply nothing is done, only said
    assert report["actions"] and all(a["outcome"] == "dry-run" for a in report["actions"])


def test_healthy_fleet_passes_exit_0(tmp_path: Path) -> None:
    path = scenario(tmp_path, "ok.yaml", {"racks": 1, "seed": 3, "noise": 0.01})
    proc = dcops(tmp_path, "burnin", "run", "--sim", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "pass" and report["summary"]["pass"] == 18


def test_run_is_stored_and_shown(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        "one.yaml",
        {
            "racks": 1,
            "seed": 4,
            "faults": [{"node": "sim-r01-t02", "gpu": 1, "kind": "ecc", "uncorrectable": 2}],
        },
    )
    report = json.loads(dcops(tmp_path, "burnin", "run", "--sim", str(path), "--json").stdout)
    history = json.loads(dcops(tmp_path, "burnin", "history", "--json").stdout)
    assert history[0]["run_id"] == report["run_id"] and history[0]["status"] == "fail"
    shown = json.loads(dcops(tmp_path, "burnin", "show", report["run_id"], "--json").stdout)
    assert shown["nodes"] == report["nodes"]
    missing = dcops(tmp_path, "burnin", "show", "bi-nope")
    assert missing.returncode == 2 and "unknown burn-in run" in missing.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("burnin", "run"), "choose one of --sim"),
        (("burnin", "run", "--sim", str(DEMO), "--nodes", "sim-r09-t01"), "sim-r09-t01"),
        (("burnin", "run", "--sim", str(DEMO), "--rack", "r09"), "unknown rack"),
        (("burnin", "run", "--nodes", "gb200-r01-t01"), "need a site"),
        (("burnin", "run", "--sim", "/nonexistent.yaml"), "no such file"),
    ],
)
def test_bad_input_exit_2(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    proc = dcops(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_thresholds_and_scenario_files_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "th.yaml"
    bad.write_text("gemm:\n  roundz: 3\n")
    proc = dcops(tmp_path, "burnin", "run", "--sim", str(DEMO), "--thresholds", str(bad))
    assert proc.returncode == 2 and str(bad) in proc.stderr
    sc = scenario(
        tmp_path, "bad.yaml", {"racks": 1, "faults": [{"node": "sim-r01-t01", "kind": "melted"}]}
    )
    proc = dcops(tmp_path, "burnin", "run", "--sim", str(sc))
    assert proc.returncode == 2 and "melted" in proc.stderr
    # nothing half-written: no run was stored
    assert json.loads(dcops(tmp_path, "burnin", "history", "--json").stdout) == []


def test_circuit_breaker_refuses_mass_drain(tmp_path: Path) -> None:
    faults = [
        {"node": f"sim-r01-t{t:02d}", "gpu": 0, "kind": "ecc", "uncorrectable": 1}
        for t in range(1, 10)
    ]
    path = scenario(tmp_path, "mass.yaml", {"racks": 2, "seed": 5, "faults": faults})
    proc = dcops(
        tmp_path,
        "burnin",
        "run",
        "--sim",
        str(path),
        "--apply",
        "--node-actions",
        "recording",
        "--json",
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 5  # the one refusal exit code, the same as sweep's
    assert {a["outcome"] for a in report["actions"]} == {"refused"}
    assert report["circuit_breaker"].startswith("circuit breaker: 9 of 18 nodes of rack r01")
    audit = json.loads(dcops(tmp_path, "audit", "show", "--json").stdout)
    assert {(r["action"], r["outcome"]) for r in audit} == {("drain", "refused")}
    assert len(audit) == 9
    forced = json.loads(
        dcops(
            tmp_path,
            "burnin",
            "run",
            "--sim",
            str(path),
            "--apply",
            "--node-actions",
            "recording",
            "--force",
            "--json",
        ).stdout
    )
    assert sorted(a["nodes"] for a in forced["actions"]) == [
        f"sim-r01-t{t:02d}" for t in range(1, 10)
    ]


def test_report_html_and_heatmaps(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    proc = dcops(
        tmp_path,
        "burnin",
        "run",
        "--sim",
        str(DEMO),
        "--probe-timeout",
        "0.2",
        "--report",
        str(out),
        "--json",
    )
    report = json.loads(proc.stdout)
    page = Path(report["report_file"]).read_text()
    assert "sim-r01-t05" in page and "FAIL" in page
    # self-contained: both heatmaps inline, no file beside the page
    assert page.count('src="data:image/png;base64,iVBORw0KGgo') == 2
    assert list(out.glob("*.png")) == []


@pytest.mark.torch
def test_local_burnin_on_this_machine(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    proc = dcops(
        tmp_path,
        "burnin",
        "run",
        "--local",
        "--ranks",
        "2",
        "--rounds",
        "1",
        "--duration",
        "0.3",
        "--json",
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert report["status"] == "pass" and report["params"]["backend"].startswith("local")
    gpus = report["nodes"][0]["gpus"]
    assert len(gpus) == 2 and all(g["tflops"] and g["tflops"] > 0 for g in gpus)
    assert report["collectives"]  # the 2 CPU ranks ran a real gloo all_reduce


@pytest.mark.slurm
def test_apply_drains_in_slurm_and_recheck_resumes(tmp_path: Path, slurm_cluster: Any) -> None:
    env = {"DCOPS_SLURM_CONF": str(slurm_cluster.slurm_conf), "DCOPS_ACTOR": "burnin-test"}
    admin = "sim-r01-t07"
    slurm_cluster.run(
        ["scontrol", "update", f"NodeName={admin}", "State=DRAIN", "Reason=admin: fan swap"]
    )
    faults = [
        {"node": "sim-r01-t03", "gpu": 2, "kind": "ecc", "uncorrectable": 1},
        {"node": "sim-r01-t12", "kind": "nvlink_degraded", "factor": 0.5},
    ]
    bad = scenario(tmp_path, "bad.yaml", {"racks": 1, "seed": 9, "faults": faults})
    good = scenario(tmp_path, "good.yaml", {"racks": 1, "seed": 9})
    try:
        proc = dcops(
            tmp_path,
            "burnin",
            "run",
            "--sim",
            str(bad),
            "--apply",
            "--json",
            "--node-actions",
            "slurm-cli",
            env=env,
        )
        report = json.loads(proc.stdout)
        assert proc.returncode == 1, proc.stderr
        drained = sorted(a["nodes"] for a in report["actions"] if a["outcome"] == "ok")
        assert drained == ["sim-r01-t03", "sim-r01-t12"]
        states = _states(slurm_cluster)
        for node in drained:
            assert "DRAIN" in states[node]["state"] and states[node]["reason"].startswith("dcops:")
        # recheck with the trays repaired: dcops resumes its own drains, not the admin's
        proc = dcops(
            tmp_path,
            "burnin",
            "run",
            "--sim",
            str(good),
            "--recheck",
            "--apply",
            "--json",
            "--node-actions",
            "slurm-cli",
            env=env,
        )
        report = json.loads(proc.stdout)
        assert proc.returncode == 0, proc.stderr
        assert sorted(n["node"] for n in report["nodes"]) == drained
        assert sorted(a["nodes"] for a in report["actions"] if a["action"] == "resume") == drained
        states = _states(slurm_cluster)
        assert all("DRAIN" not in states[n]["state"] for n in drained)
        assert "DRAIN" in states[admin]["state"] and "fan swap" in states[admin]["reason"]
        audit = json.loads(dcops(tmp_path, "audit", "show", "--json").stdout)
        assert [(r["action"], r["target"], r["outcome"]) for r in audit] == [
            ("drain", "sim-r01-t03", "started"),
            ("drain", "sim-r01-t03", "ok"),
            ("drain", "sim-r01-t12", "started"),
            ("drain", "sim-r01-t12", "ok"),
            ("resume", "sim-r01-t03", "started"),
            ("resume", "sim-r01-t03", "ok"),
            ("resume", "sim-r01-t12", "started"),
            ("resume", "sim-r01-t12", "ok"),
        ]
        assert all(r["actor"] == "burnin-test" for r in audit)
        assert json.loads(dcops(tmp_path, "audit", "verify", "--json").stdout)["ok"]
    finally:
        slurm_cluster.run(
            ["scontrol", "update", "NodeName=sim-r01-t[01-18]", "State=RESUME"], check=False
        )


def _states(cluster: Any) -> dict[str, dict[str, str]]:
    out = cluster.run(["sinfo", "-h", "-N", "-o", "%N|%T|%E"]).stdout
    states = {}
    for line in out.strip().splitlines():
        node, state, reason = line.split("|", 2)
        states[node] = {"state": state.upper(), "reason": reason}
    return states


def test_sim_drains_carry_over_to_recheck(tmp_path: Path) -> None:
    """With the simulator, drains recorded by one run are what the recheck re-tests."""
    bad = scenario(
        tmp_path,
        "bad.yaml",
        {
            "racks": 1,
            "seed": 2,
            "faults": [{"node": "sim-r01-t04", "gpu": 3, "kind": "ecc", "uncorrectable": 1}],
        },
    )
    good = scenario(tmp_path, "good.yaml", {"racks": 1, "seed": 2, "noise": 0.01})
    first = json.loads(
        dcops(tmp_path, "burnin", "run", "--sim", str(bad), "--apply", "--json").stdout
    )
    assert [(a["nodes"], a["outcome"]) for a in first["actions"]] == [("sim-r01-t04", "ok")]
    proc = dcops(tmp_path, "burnin", "run", "--sim", str(good), "--recheck", "--apply", "--json")
    second = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert [n["node"] for n in second["nodes"]] == ["sim-r01-t04"]
    assert [(a["action"], a["outcome"]) for a in second["actions"]] == [("resume", "ok")]
    third = json.loads(
        dcops(tmp_path, "burnin", "run", "--sim", str(good), "--recheck", "--json").stdout
    )
    assert third["nodes"] == []  # nothing left drained by dcops


def test_recheck_without_apply_says_why_not_resumed(tmp_path: Path) -> None:
    bad = scenario(
        tmp_path,
        "bad.yaml",
        {
            "racks": 1,
            "seed": 2,
            "faults": [{"node": "sim-r01-t04", "gpu": 3, "kind": "ecc", "uncorrectable": 1}],
        },
    )
    good = scenario(tmp_path, "good.yaml", {"racks": 1, "seed": 2, "noise": 0.01})
    assert dcops(tmp_path, "burnin", "run", "--sim", str(bad), "--apply", "--json").returncode == 1
    table = dcops(tmp_path, "burnin", "run", "--sim", str(good), "--recheck")
    assert "not resumed sim-r01-t04: dry run: --apply resumes it" in table.stdout
    report = json.loads(
        dcops(tmp_path, "burnin", "run", "--sim", str(good), "--recheck", "--json").stdout
    )
    assert report["not_resumed"] == {"sim-r01-t04": "dry run: --apply resumes it"}

"""Done means: after a burn-in with --apply, the report shows exactly the drained and
unreachable trays out, with owners; plan names the repairs, and after them it fits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "examples" / "scenarios" / "demo.yaml")
REPAIRED = str(REPO / "examples" / "scenarios" / "demo-repaired.yaml")


def dcops(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DCOPS_STATE_DB": str(db)}
    return subprocess.run(
        [sys.executable, "-m", "dcops", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


@pytest.mark.slow
def test_burnin_apply_then_report_then_plan_then_repair(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    burn = dcops(db, "burnin", "run", "--sim", DEMO, "--apply", "--json")
    assert burn.returncode == 1, burn.stderr
    drained = {a["nodes"] for a in json.loads(burn.stdout)["actions"] if a["outcome"] == "ok"}

    rep = dcops(db, "capacity", "report", "--sim", DEMO, "--json")
    assert rep.returncode == 0, rep.stderr
    data = json.loads(rep.stdout)
    out = {t["node"]: t for r in data["racks"] for t in r["trays_out"]}
    assert set(out) == {
        "sim-r01-t05", "sim-r01-t09", "sim-r01-t14", "sim-r01-t17",
        "sim-r02-t03", "sim-r02-t11", "sim-r02-t16", "sim-r02-t18",
    }  # fmt: skip
    # an unreachable tray is an error, never evidence for a drain: burn-in drains the other six
    assert drained == set(out) - {"sim-r01-t17", "sim-r02-t18"}
    assert {n for n, t in out.items() if t["owner"] == "unreachable"} == {
        "sim-r01-t17",
        "sim-r02-t18",
    }
    assert {t["owner"] for n, t in out.items() if n not in ("sim-r01-t17", "sim-r02-t18")} == {
        "dcops"
    }
    assert all(t["reason"] for t in out.values())
    for r in data["racks"]:
        assert (r["trays_total"], r["trays_healthy"], r["state"]) == (18, 14, "degraded")
        assert r["segments"]["16"] == {"promisable": 0, "free_now": 0}
        assert r["segments"]["8"] == {"promisable": 1, "free_now": 1}
        assert r["segments"]["4"] == {"promisable": 3, "free_now": 3}
        assert r["gpus_healthy"] == 56
    assert data["fleet"]["trays_out"] == 8 and data["fleet"]["out_by_owner"]["dcops"] == 6

    refused = dcops(
        db, "capacity", "plan", "--sim", DEMO, "--gpus", "128", "--segment", "16", "--json"
    )
    assert refused.returncode == 1, refused.stderr
    plan = json.loads(refused.stdout)
    assert not plan["fits_now"] and plan["fits_after_repairs"]
    repairs = [r["node"] for r in plan["repairs"]]
    assert len(repairs) == 4 and {r["owner"] for r in plan["repairs"]} == {"dcops"}

    recheck = dcops(
        db, "burnin", "run", "--sim", REPAIRED, "--recheck", "--apply", "--nodes", ",".join(repairs)
    )
    assert recheck.returncode == 0, recheck.stderr
    fits = dcops(
        db, "capacity", "plan", "--sim", DEMO, "--gpus", "128", "--segment", "16", "--json"
    )
    assert fits.returncode == 0, fits.stderr
    after = json.loads(fits.stdout)
    assert after["fits_now"] and after["repairs"] == []
    assert sorted(p["rack"] for p in after["placement"]) == ["r01", "r02"]


def test_plan_segment_larger_than_a_rack_is_exit_2(tmp_path: Path) -> None:
    proc = dcops(
        tmp_path / "s.db", "capacity", "plan", "--sim", DEMO, "--trays", "20", "--segment", "20"
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "dcops: error: segment of 20 trays is larger than a rack (18 trays)"
    )


def test_site_segment_larger_than_a_rack_names_file_and_line(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "site: s\nracks:\n  - name: r01\n    nodes: n-t[01-18]\n"
        "capacity:\n  segment_sizes: [1, 16, 32]\n"
    )
    proc = dcops(tmp_path / "s.db", "capacity", "report", "--site", str(site))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert f"{site}:6" in proc.stderr and "32 trays is larger than a rack" in proc.stderr
    assert not (tmp_path / "s.db").exists()

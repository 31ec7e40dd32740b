"""SLO and availability count out exactly the trays ``capacity report`` counts out.

An unreachable tray (a sweep could not reach it) and a tray drained by hand in
the scheduler (no dcops record at all) are out in the report; the SLO and
availability must count them the same way: out now, since they went out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dcops.node_actions.stored import StoredNodeActions
from dcops.sim.world import open_world
from dcops.store import Store


def dcops(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DCOPS_STATE_DB": str(db)}
    return subprocess.run(
        [sys.executable, "-m", "dcops", *args],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip


def test_unreachable_and_hand_drained_trays_count_the_same_in_report_slo_and_availability(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("racks: 1\nseed: 3\nfaults:\n  - {node: sim-r01-t17, kind: unreachable}\n")
    db = tmp_path / "state.db"
    sweep = dcops(db, "sweep", "--sim", str(scenario), "--json")
    assert sweep.returncode in (0, 1), sweep.stderr
    with Store(db) as store:  # an operator drains a tray in the scheduler by hand
        site = open_world(store, scenario).fleet.site
        StoredNodeActions(store, site.nodes(), user="root").drain("sim-r01-t04", "PSU swap")
    rep = json.loads(dcops(db, "capacity", "report", "--sim", str(scenario), "--json").stdout)
    out = {t["node"]: t["owner"] for r in rep["racks"] for t in r["trays_out"]}
    assert out == {"sim-r01-t17": "unreachable", "sim-r01-t04": "operator"}

    proc = dcops(db, "capacity", "slo", "--sim", str(scenario), "--since", "1d",
                 "--segment", "17", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    slo = json.loads(proc.stdout)
    (rack,) = slo["racks"]
    assert rack["trays_out_at_end"] == sorted(out)  # the same trays, out now
    assert rack["tray_hours_out"] > 0 and slo["live"] == "scheduler"
    assert rack["available_share"] < 1.0  # 16 of 18 up at the end: no 17-tray segment

    proc = dcops(db, "capacity", "availability", "--sim", str(scenario), "--json")
    assert proc.returncode == 0, proc.stderr
    avail = json.loads(proc.stdout)
    failed = {n["node"] for n in avail["nodes"] if n["failures"] > 0}
    assert failed == set(out)

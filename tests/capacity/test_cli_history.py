"""``dcops capacity import-failures / availability / forecast / slo`` through the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import data_file

LANL = data_file("failures/lanl_systems_8_23.csv")


def dcops(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DCOPS_STATE_DB": str(db)}
    return subprocess.run(
        [sys.executable, "-m", "dcops", "capacity", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM failure_events").fetchone()[0])


def test_public_lanl_records_import_merge_and_report(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    first = dcops(db, "import-failures", str(LANL), "--json")
    assert first.returncode == 0, first.stderr
    got = json.loads(first.stdout)
    # 1,039 LANL records of 124 nodes; 25 start before an earlier outage of the node ended
    assert (got["records"], got["nodes"], got["merged"], got["outages"]) == (1039, 124, 25, 1014)
    again = json.loads(dcops(db, "import-failures", str(LANL), "--json").stdout)
    assert again["replaced"] == 1039 and rows(db) == 1039  # re-import replaces, never doubles

    avail = dcops(db, "availability", "--json")
    assert avail.returncode == 0, avail.stderr
    data = json.loads(avail.stdout)
    assert data["merged"] == 25 and "racks" not in data
    nodes = {n["node"]: n for n in data["nodes"]}
    assert len(nodes) == 124
    assert {"node", "failures", "mtbf_h", "mttr_h"} <= set(nodes["lanl-s23-n001"])
    assert data["fleet"]["failures"] == sum(n["failures"] for n in nodes.values()) == 1014
    # fleet MTBF/MTTR are totals over failures (see docs/capacity.md)
    down = sum(n["downtime_h"] for n in nodes.values())
    assert abs(data["fleet"]["mttr_h"] - down / 1014) < 1e-3


def test_bad_row_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert dcops(db, "import-failures", str(LANL)).returncode == 0
    bad = tmp_path / "lanl_systems_8_23.csv"  # same source name: would replace the good rows
    lines = LANL.read_text().splitlines()
    node, _, _, cause = lines[7].split(",")
    lines[7] = ",".join([node, "2001-05-02T00:00:00", "2001-05-01T00:00:00", cause])
    bad.write_text("\n".join(lines) + "\n")
    proc = dcops(db, "import-failures", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"dcops: error: {bad}:8: repaired_at 2001-05-01T00:00:00 is before failed_at"
    ]
    assert rows(db) == 1039


def test_unknown_node_with_a_site(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: s\nracks:\n  - name: r01\n    nodes: lanl-s23-n[001-018]\n")
    db = tmp_path / "s.db"
    proc = dcops(db, "import-failures", str(LANL), "--site", str(site))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"dcops: error: {LANL}:2: node 'lanl-s8-n001' is not in the site")
    only23 = tmp_path / "s23.csv"
    only23.write_text(
        "\n".join(line for line in LANL.read_text().splitlines() if "s8-" not in line) + "\n"
    )
    assert dcops(db, "import-failures", str(only23), "--site", str(site)).returncode == 0
    data = json.loads(dcops(db, "availability", "--site", str(site), "--json").stdout)
    assert [r["rack"] for r in data["racks"]] == ["r01"]
    assert len(data["nodes"]) == 18  # every node of the site, failed or not
    assert data["racks"][0]["failures"] == data["fleet"]["failures"]


def test_forecast_json(tmp_path: Path) -> None:
    proc = dcops(
        tmp_path / "s.db", "forecast", "--segment", "16", "--target", "0.99",
        "--mtbf-h", "990", "--mttr-h", "10", "--trays", "18", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["spares_needed"] == 2 and abs(data["probability"] - 0.99927084) < 1e-8
    assert not (tmp_path / "s.db").exists()  # a pure calculation opens no store


def test_slo_from_imported_outages(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: s\nracks:\n  - name: r01\n    nodes: n-t[01-18]\n")
    csv = tmp_path / "f.csv"
    csv.write_text(
        "node,failed_at,repaired_at,cause\n"
        "n-t01,2025-01-01T01:00:00,2025-01-01T05:00:00,a\n"
        "n-t02,2025-01-01T02:00:00,2025-01-01T04:00:00,b\n"
        "n-t03,2025-01-01T03:00:00,2025-01-01T08:00:00,c\n"
    )
    db = tmp_path / "s.db"
    assert dcops(db, "import-failures", str(csv), "--site", str(site)).returncode == 0
    proc = dcops(
        db, "slo", "--site", str(site), "--since", "2025-01-01T00:00:00",
        "--until", "2025-01-01T10:00:00", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)["racks"][0]
    assert r["segment"] == 16 and abs(r["available_share"] - 0.9) < 1e-9
    assert abs(r["gpu_hours_lost"] - 44.0) < 1e-9


EXAMPLE = """node,failed_at,repaired_at,cause
a,2025-01-01T00:00:00Z,2025-01-01T10:00:00Z,xid 79
a,2025-01-02T00:00:00Z,2025-01-02T04:00:00Z,ecc
a,2025-01-02T02:00:00Z,2025-01-02T06:00:00Z,ecc (logged again)
b,2025-01-03T00:00:00Z,,nvlink
c,2025-01-01T00:00:00Z,2025-01-01T00:00:00Z,noise
"""


def test_forecast_from_the_failure_history_and_the_sites_spares(tmp_path: Path) -> None:
    from capacity.forecast import at_least, spares_needed

    db = tmp_path / "s.db"
    csv = tmp_path / "ex.csv"
    csv.write_text(EXAMPLE)
    assert dcops(db, "import-failures", str(csv)).returncode == 0
    # the history (docs/capacity.md example, window first..last event: 48 h): a 2 failures
    # 16 h down, b 1 failure 0 h down (out from the window's end), c 1 failure 0 h down
    avail = json.loads(dcops(db, "availability", "--json").stdout)["fleet"]
    proc = dcops(db, "forecast", "--segment", "2", "--target", "0.99", "--trays", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert (got["mtbf_h"], got["mttr_h"]) == (avail["mtbf_h"], avail["mttr_h"])
    a = avail["mtbf_h"] / (avail["mtbf_h"] + avail["mttr_h"])
    assert got["probability"] == at_least(3, 2, a)
    assert got["spares_needed"] == spares_needed(2, 0.99, a)
    assert got["mtbf_source"].startswith("history: 4 failure(s)")

    site = tmp_path / "site.yaml"
    site.write_text(
        "site: two\ncapacity: {spare_trays: 1}\nracks:\n"
        "  - {name: r1, nodes: 'a,b,c,x[01-15]'}\n  - {name: r2, nodes: 'y[01-18]'}\n"
    )
    fleet = json.loads(dcops(db, "availability", "--site", str(site), "--json").stdout)["fleet"]
    proc = dcops(db, "forecast", "--site", str(site), "--segment", "16", "--target", "0.9999999",
                 "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert (got["mtbf_h"], got["mttr_h"]) == (fleet["mtbf_h"], fleet["mttr_h"])
    assert (got["trays"], got["racks"], got["spares_on_hand"]) == (18, 2, 1)
    per_rack = max(0, got["spares_needed"] - 2)  # each rack's own slack: 18 - 16 = 2
    assert per_rack > 0  # the target is beyond the slack: the shelf must help
    assert got["rack_slack"] == 2 and got["shelf_needed"] == 2 * per_rack
    assert got["shelf_short"] == max(0, 2 * per_rack - 1)
    assert got["covered"] is (2 * per_rack <= 1)


def test_forecast_without_history_asks_for_mtbf(tmp_path: Path) -> None:
    proc = dcops(tmp_path / "s.db", "forecast", "--segment", "16", "--target", "0.99")
    assert proc.returncode == 2 and "give --mtbf-h and --mttr-h" in proc.stderr
    assert proc.stderr.startswith("dcops: error:")

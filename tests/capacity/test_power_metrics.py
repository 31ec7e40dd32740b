"""Power budget, draw and caps (hand figures), the site-without-power-data error, gauges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from capacity.metrics import exposition, families, write_textfile
from capacity.power import PROFILES, TrayLoad, cap_effect, model_draw_kw, quantile, rack_power
from capacity.report import build_report
from capacity.trays import Owner, Standing, TrayVerdict

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "examples" / "scenarios" / "demo.yaml")
GB = PROFILES["gb200-nvl72"]


def test_gb200_budget_keeps_psu_redundancy() -> None:
    assert GB.nameplate_kw == pytest.approx(264.0)  # 8 shelves x 6 PSUs x 5.5 kW
    assert GB.budget_kw == pytest.approx(132.0)  # N+N: half


def test_model_draw_by_tray_state() -> None:
    full = [TrayLoad(4, busy=True, in_service=True)] * 18
    # 72 x 1.2 kW + 18 x 1.5 kW + 9 switch trays x 1.0 kW = 122.4 kW
    assert model_draw_kw(full, GB, peak=False) == pytest.approx(122.4)
    mixed = [TrayLoad(4, busy=False, in_service=True)] * 16 + [
        TrayLoad(4, busy=False, in_service=False)
    ] * 2
    # now: 18 idle trays (4 x 0.18 + 0.6 kW) + 9 kW = 32.76 kW; peak: 16 busy + 2 idle
    assert model_draw_kw(mixed, GB, peak=False) == pytest.approx(32.76)
    assert model_draw_kw(mixed, GB, peak=True) == pytest.approx(16 * 6.3 + 2 * 1.32 + 9)


def test_quantile_matches_numpy_linear() -> None:
    import numpy as np

    data = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    for q in (0.0, 0.5, 0.95, 1.0):
        assert quantile(data, q) == pytest.approx(float(np.quantile(data, q)))


def test_cap_what_if_hand_calculation() -> None:
    # 1,000 W of 1,200 W, idle 180 W: ((1000 - 180) / (1200 - 180)) ** (1/3) = 0.9299
    effect = cap_effect(1000.0, GB)
    assert effect["throughput"] == pytest.approx((820 / 1020) ** (1 / 3))
    full = [TrayLoad(4, busy=True, in_service=True)] * 18
    row = rack_power(
        "r01", full, GB, budget_kw=132.0, budget_source="sku", measured=None, cap_w=1000.0
    )
    assert row["headroom_kw"] == pytest.approx(132.0 - 122.4)
    assert row["cap"]["draw_kw"] == pytest.approx(122.4 - 72 * 0.2)  # 200 W saved per GPU
    with pytest.raises(ValueError, match="idle"):
        cap_effect(100.0, GB)


def run(db: Path, *args: str, data: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DCOPS_STATE_DB": str(db)}
    extra = ["--data-dir", str(data)] if data else []
    return subprocess.run(
        [sys.executable, "-m", "dcops", *extra, *args],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


def test_site_without_power_data_names_file_and_line(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    # an HGX SKU with no rack power model and no power_capacity_kw in the site
    site.write_text(
        "site: s\nsku: h100\nracks:\n  - name: a\n    nodes: g-a-n[1-4]\n"
        "  - name: b\n    nodes: g-b-n[1-4]\n"
    )
    proc = run(
        tmp_path / "s.db", "capacity", "power", "--site", str(site), "--node-actions", "none"
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"dcops: error: {site}:4: rack 'a' (h100) has no power_capacity_kw and no power model "
        "for its SKU (known: gb200-nvl72)"
    ]


def test_power_from_telemetry_samples(tmp_path: Path) -> None:
    db, data = tmp_path / "s.db", tmp_path / "data"
    got = run(db, "telemetry", "collect", "--sim", DEMO, "--once", data=data)
    assert got.returncode in (0, 1), got.stderr
    proc = run(
        db, "capacity", "power", "--sim", DEMO, "--since", "2024-12-31", "--until", "2025-01-02",
        "--cap-w", "1000", "--json", data=data,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rack = json.loads(proc.stdout)["racks"][0]
    assert rack["draw"]["source"] == "telemetry" and rack["draw"]["minutes"] >= 1
    assert rack["draw"]["p50_kw"] <= rack["draw"]["p95_kw"] <= rack["draw"]["max_kw"]
    assert rack["headroom_kw"] == pytest.approx(132.0 - rack["draw"]["p95_kw"])
    no_samples = json.loads(run(db, "capacity", "power", "--sim", DEMO, "--json").stdout)
    assert no_samples["racks"][0]["draw"]["source"] == "model"


def test_gauges_parse_and_textfile(tmp_path: Path) -> None:
    vs = [
        TrayVerdict("a", "r01", 4, Standing.HEALTHY, free=True),
        TrayVerdict("b", "r01", 4, Standing.OUT, Owner.OPERATOR, "cable"),
    ]
    rep = build_report([("r01", "r01", vs)], (1, 2), at_s=0.0)
    text = exposition(families(rep))
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    segs = {
        (s.labels["size"], s.labels["kind"]): s.value
        for s in parsed["dcops_capacity_segments"].samples
    }
    assert segs == {("1", "promisable"): 1, ("1", "free_now"): 1, ("2", "promisable"): 0,
                    ("2", "free_now"): 0}  # fmt: skip
    owners = {s.labels["owner"]: s.value for s in parsed["dcops_capacity_trays_out"].samples}
    assert owners["operator"] == 1 and sum(owners.values()) == 1
    path = write_textfile(tmp_path / "tf", text)
    assert path.read_text() == text and oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir()] == ["dcops_capacity.prom"]


def test_metrics_cli_textfile(tmp_path: Path) -> None:
    proc = run(tmp_path / "s.db", "capacity", "metrics", "--sim", DEMO, "--textfile", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "dcops_capacity.prom").read_text()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"dcops_capacity_segments", "dcops_capacity_power_headroom_watts"} <= names


def test_row_budget_what_if_on_the_simulator(tmp_path: Path) -> None:
    """A simulated site has no row budget: --row-budget-kw gives one; hand-checked fit."""
    db = tmp_path / "s.db"
    plain = json.loads(run(db, "capacity", "power", "--sim", DEMO, "--json").stdout)
    assert plain["row"] is None  # nothing to fit against without a budget
    proc = run(db, "capacity", "power", "--sim", DEMO, "--row-budget-kw", "1000",
               "--cap-w", "800", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    row = got["row"]
    per_rack = sum(r["planning_draw_kw"] for r in got["racks"]) / len(got["racks"])
    capped = sum(r["cap"]["draw_kw"] for r in got["racks"]) / len(got["racks"])
    assert row["draw_per_rack_kw"] == pytest.approx(per_rack)
    assert row["racks_fit"] == int(1000 // per_rack) and row["more_racks"] == row["racks_fit"] - 2
    assert row["racks_fit_capped"] == int(1000 // capped) >= row["racks_fit"]
    bad = run(db, "capacity", "power", "--sim", DEMO, "--row-budget-kw", "0")
    assert bad.returncode == 2 and bad.stderr.startswith("dcops: error:")

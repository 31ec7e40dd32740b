"""``dcops burnin run --textfile``: one node_exporter file per rack, from a real simulated run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from burnin.textfile import render_racks, textfile_name
from tests.burnin.test_burnin_run import DEMO, dcops

pytestmark = pytest.mark.timeout(300)


def _samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    return {
        f.name: {tuple(sorted(s.labels.items())): s.value for s in f.samples}
        for f in text_string_to_metric_families(text)
    }


def test_demo_run_writes_one_file_per_rack(tmp_path: Path) -> None:
    out = tmp_path / "textfile"
    out.mkdir()
    (out / textfile_name("r09")).write_text("# another rack's last run stays\n")
    proc = dcops(tmp_path, "burnin", "run", "--sim", str(DEMO), "--json", "--textfile", str(out))
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["dcops_burnin_r01.prom", "dcops_burnin_r02.prom", "dcops_burnin_r09.prom"]
    assert sorted(Path(p).name for p in report["textfiles"]) == names[:2]
    r02 = _samples((out / "dcops_burnin_r02.prom").read_text())
    nodes = {dict(k)["verdict"]: v for k, v in r02["dcops_burnin_nodes"].items()}
    in_r02 = [n for n in report["nodes"] if n["rack"] == "r02"]
    assert nodes == {
        v: float(sum(n["status"] == v for n in in_r02)) for v in ("pass", "warn", "fail", "error")
    }
    passed = {dict(k)["node"]: v for k, v in r02["dcops_burnin_node_passed"].items()}
    assert passed["sim-r02-t03"] == 0 and passed["sim-r02-t01"] == 1  # XID 79 on t03
    busbw = {dict(k)["target"]: v for k, v in r02["dcops_burnin_collective_busbw_gbps"].items()}
    assert busbw["domain"] == report["collectives"]["domain r02"]
    assert busbw["sim-r02-t11"] < 0.6 * busbw["sim-r02-t01"]  # the degraded NVLink tray
    tflops = r02["dcops_burnin_gpu_gemm_tflops"]
    measured = [g for n in in_r02 for g in n["gpus"] if isinstance(g.get("tflops"), float)]
    assert len(tflops) == len(measured) > 60
    assert all(dict(k)["rack"] == "r02" for k in tflops)
    (when,) = r02["dcops_burnin_last_run_timestamp_seconds"].values()
    assert when > 1e9
    # every series of a file carries that file's rack: files never collide in node_exporter
    r01 = (out / "dcops_burnin_r01.prom").read_text()
    assert all(dict(k)["rack"] == "r01" for fam in _samples(r01).values() for k in fam)


def test_refused_drains_trip_the_breaker_gauge() -> None:
    report = {
        "started_at": "2026-01-01T00:00:00+00:00",
        "finished_at": "2026-01-01T00:10:00+00:00",
        "nodes": [{"node": "n1", "rack": "r01", "status": "fail", "gpus": []}],
        "collectives": {"n1": 1.0, "domain r01": 2.0, "stranger": 3.0},
        "actions": [{"action": "drain", "nodes": "n1", "outcome": "refused"}],
    }
    r01 = _samples(render_racks(report)["r01"])
    assert r01["dcops_burnin_circuit_breaker_tripped"] == {(("rack", "r01"),): 1.0}
    assert r01["dcops_burnin_duration_seconds"] == {(("rack", "r01"),): 600.0}
    assert {dict(k)["target"] for k in r01["dcops_burnin_collective_busbw_gbps"]} == {
        "n1",
        "domain",
    }
    assert textfile_name("rack 7/a") == "dcops_burnin_rack_7_a.prom"


def test_textfile_dir_must_exist_before_anything_runs(tmp_path: Path) -> None:
    proc = dcops(
        tmp_path, "burnin", "run", "--sim", str(DEMO), "--textfile", str(tmp_path / "nope")
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"dcops: error: --textfile {tmp_path / 'nope'}: not a directory"

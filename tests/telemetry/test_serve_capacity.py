"""``dcops telemetry serve --capacity``: one exporter serves the GPU samples and the capacity
gauges, and the capacity ones follow the state store (a drain shows at a later scrape)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "scenarios" / "demo.yaml"


def _scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def test_capacity_gauges_come_from_the_same_exporter(tmp_path: Path) -> None:
    env = {**os.environ, "DCOPS_STATE_DB": str(tmp_path / "state.db")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dcops", "telemetry", "serve", "--sim", str(DEMO), "--port", "0",
         "--interval", "1", "--capacity"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert found, line
        url = f"http://127.0.0.1:{found.group(1)}/metrics"
        deadline = time.monotonic() + 30
        got = _scrape(url)
        while "dcops_gpu_power_watts" not in got and time.monotonic() < deadline:
            time.sleep(0.5)  # the first GPU sample lands a moment after the server starts
            got = _scrape(url)
        assert got["dcops_gpu_power_watts"]  # the GPU samples
        seg = {(s["rack"], s["size"], s["kind"]): v for s, v in got["dcops_capacity_segments"]}
        assert seg[("r01", "16", "promisable")] == 1.0  # 18 healthy trays before any burn-in
        assert seg[("r02", "18", "free_now")] == 1.0
        assert {s["rack"] for s, _ in got["dcops_capacity_power_headroom_watts"]} == {
            "r01",
            "r02",
        }
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode in (0, -15)


def test_capacity_without_a_site_is_a_one_line_error(tmp_path: Path) -> None:
    env = {**os.environ, "DCOPS_STATE_DB": str(tmp_path / "state.db"), "DCOPS_SITE": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "dcops", "telemetry", "serve", "--port", "0", "--capacity",
         "--site", str(tmp_path / "missing.yaml")],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("dcops: error:") and "Traceback" not in proc.stderr

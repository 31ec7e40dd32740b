"""A real Prometheus scrapes the exporter once on loopback (opt-in: needs the prometheus binary).

Install it with ``apt-get install prometheus`` (Debian; ~100 MB); skipped without it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from dcops.sim import SimFleet
from telemetry.collect import Sampler, SimClock
from telemetry.exporter import GpuCollector, start_server

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.prometheus,
    pytest.mark.skipif(
        PROMETHEUS is None, reason="no prometheus binary (apt-get install prometheus)"
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_prometheus_scrapes_the_exporter(tmp_path: Path) -> None:
    fleet = SimFleet.from_dict({"sku": "gb200-nvl72", "racks": 1, "seed": 5})
    sampler = Sampler(fleet.probe, ["sim-r01-t01"], 10, SimClock(fleet))
    sampler.sample_once()
    server, thread = start_server(GpuCollector(sampler.snapshot), port=0, address="127.0.0.1")
    web = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: dcops\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{server.server_port}']}}]\n"
    )
    assert PROMETHEUS is not None
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        query = urllib.parse.quote('dcops_gpu_energy_joules_total{gpu="0"}')
        url = f"http://127.0.0.1:{web}/api/v1/query?query={query}"
        deadline = time.monotonic() + 60
        result: list[Any] = []
        while time.monotonic() < deadline and not result:
            time.sleep(0.5)
            try:
                result = get(url)["data"]["result"]
            except OSError:
                continue
        assert result, "Prometheus never stored a sample"
        assert result[0]["metric"]["node"] == "sim-r01-t01"
        assert float(result[0]["value"][1]) > 0
        targets = get(f"http://127.0.0.1:{web}/api/v1/targets")["data"]["activeTargets"]
        assert [t["health"] for t in targets] == ["up"]
        assert targets[0]["lastError"] == ""
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        server.shutdown()
        server.server_close()
        thread.join(5)

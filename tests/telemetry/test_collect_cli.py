"""``collect``, ``serve`` and ``map-jobs``: flags reach the core, exit codes, clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from dcops.cli.telemetry_collect import collect, map_jobs
from dcops.errors import InputError
from telemetry.collect import sample_store
from telemetry.jobmap import allocation_store, read_allocations
from tests.conftest import REPO, data_file

DEMO = str(REPO / "examples" / "scenarios" / "demo.yaml")


def invoke(command: click.Command, args: list[str], data_dir: Path) -> Result:
    runner = CliRunner()
    return runner.invoke(
        command,
        args,
        obj={"overrides": {"data_dir": str(data_dir)}},
        catch_exceptions=True,
    )


def test_collect_once(tmp_path: Path) -> None:
    result = invoke(
        collect, ["--sim", DEMO, "--nodes", "sim-r01-t[01-03]", "--once", "--json"], tmp_path
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["ticks"], data["rows"], data["errors"]) == (1, 12, {})
    assert sample_store(tmp_path).read().num_rows == 12


def test_collect_duration_on_the_virtual_clock(tmp_path: Path) -> None:
    args = ["--sim", DEMO, "--nodes", "sim-r01-t01", "--duration", "120", "--interval", "30"]
    result = invoke(collect, [*args, "--json"], tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ticks"] == 4


def test_collect_unreachable_node_exits_1(tmp_path: Path) -> None:
    result = invoke(collect, ["--sim", DEMO, "--nodes", "sim-r01-t[16-17]", "--once"], tmp_path)
    assert result.exit_code == 1
    assert "sim-r01-t17" in result.output
    assert set(sample_store(tmp_path).read().column("node").to_pylist()) == {"sim-r01-t16"}


def test_map_jobs_from_files(tmp_path: Path) -> None:
    squeue = data_file("slurm/slurmrestd/24.11/0.0.42/slurm-job-gpus-multi-nodes.json")
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text("biology: bio-lab\n")
    result = invoke(
        map_jobs,
        ["--from", "slurm-json", str(squeue), "--tenants", str(tenants), "--json"],
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["allocations"]) == 12
    stored = read_allocations(allocation_store(tmp_path))
    assert {(a.job_id, a.tenant) for a in stored} == {("6371", "bio-lab")}
    pods = tmp_path / "pods.json"
    pods.write_text(json.dumps({"items": []}))
    assert invoke(map_jobs, ["--from", "pods", str(pods)], tmp_path).exit_code == 0


def test_map_jobs_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = invoke(map_jobs, ["--from", "slurm-json", str(bad)], tmp_path)
    assert isinstance(result.exception, InputError)
    assert invoke(map_jobs, ["--from", "pods"], tmp_path).exit_code == 2
    tenants = tmp_path / "t.json"
    tenants.write_text("[1, 2]")
    ok = tmp_path / "pods.json"
    ok.write_text('{"items": []}')
    result = invoke(map_jobs, ["--from", "pods", str(ok), "--tenants", str(tenants)], tmp_path)
    assert isinstance(result.exception, InputError)


@pytest.mark.slow
def test_serve_until_sigterm(tmp_path: Path) -> None:
    obj = {"overrides": {"data_dir": str(tmp_path)}}
    code = (
        "import sys; from dcops.cli.telemetry_collect import serve; "
        f"serve.main(sys.argv[1:], prog_name='serve', obj={obj!r})"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--sim",
            DEMO,
            "--nodes",
            "sim-r01-t[01-02]",
            "--port",
            "0",
            "--interval",
            "0.5",
            "--store",
        ],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving 2 node(s) on http://127.0.0.1:" in line, line
        url = line.split(" on ")[1].strip()
        # The server answers at once; the first sample lands one tick later (slower under load).
        deadline = time.monotonic() + 20
        body = ""
        while 'dcops_gpu_power_watts{gpu="0"' not in body and time.monotonic() < deadline:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = response.read().decode()
            time.sleep(0.2)
        assert 'dcops_gpu_power_watts{gpu="0"' in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert sample_store(tmp_path).read().num_rows >= 8  # flushed on SIGTERM

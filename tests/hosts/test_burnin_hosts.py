"""Burn-in across the rig's hosts through the SSH launcher: torch/gloo on CPU.

Each rank is a worker process on its own host (network namespace), the
ranks rendezvous at rank 0's rig address, and the collectives cross the
bridge. Verdicts and the store are those of a burn-in on one machine.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.hosts._cli import by_node, dcops
from tests.rig.hosts import HostsRig

pytestmark = [pytest.mark.hosts, pytest.mark.torch, pytest.mark.timeout(180)]

WORKER = "burnin.engines.collective_worker"


def rig_thresholds(tmp_path: Path) -> Path:
    """The CPU profile with one 1 MiB collective size, and no GEMM judgement against peers:
    the rig's hosts share this machine's cores, so their GEMM speeds are not independent
    (eight hosts would be enough peers for the outlier test, and on two busy cores one
    always looks slow). Correctness, reachability and collectives are still judged."""
    path = tmp_path / "thresholds.yaml"
    path.write_text(
        "version: 1\nprofiles:\n  cpu:\n    gemm: {outliers: {min_peers: 1000}}\n"
        "    collectives: {sizes_bytes: [1048576]}\n"
    )
    return path


def burnin(rig: HostsRig, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], float]:
    ran = dcops(
        rig, tmp_path, "burnin", "run", "--launcher", "ssh", "--remote-python", sys.executable,
        "--rounds", "1", "--duration", "0.2", "--thresholds", str(rig_thresholds(tmp_path)),
        "--json", *args, timeout_s=170,
    )  # fmt: skip
    return ran.proc.returncode, ran.json, ran.elapsed_s


def rank_addresses(
    rig: HostsRig, hosts: tuple[str, ...], stop: threading.Event
) -> dict[str, set[str]]:
    """While the run lasts: per host, the MASTER_ADDR of every collective worker seen there."""
    seen: dict[str, set[str]] = {h: set() for h in hosts}

    def watch() -> None:
        while not stop.is_set():
            for host in hosts:
                for pid in rig.pids(host):
                    try:
                        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                    except OSError:
                        continue
                    if WORKER.encode() in cmd:
                        seen[host].update(
                            e.decode().split("=", 1)[1]
                            for e in env
                            if e.startswith(b"MASTER_ADDR=")
                        )
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    return seen


def test_two_racks_pass_with_ranks_on_their_own_hosts(
    healed_hosts: HostsRig, tmp_path: Path
) -> None:
    rig = healed_hosts
    stop = threading.Event()
    seen = rank_addresses(rig, rig.nodes, stop)
    try:
        code, report, _ = burnin(rig, tmp_path, "--nodes", ",".join(rig.nodes))
    finally:
        stop.set()
    assert code == 0, [
        (n["node"], n["status"], n.get("reasons"), n.get("gpus")) for n in report["nodes"]
    ]
    assert report["status"] == "pass" and report["params"]["backend"] == "ssh"
    assert sorted(by_node(report)) == sorted(rig.nodes)
    assert set(report["collectives"]) == {"domain nvl-r01", "domain nvl-r02"}
    # every host ran its rank; each rack rendezvoused at its rank 0's rig address
    for rack, hosts in rig.racks.items():
        for host in hosts:
            assert seen[host] == {rig.address(hosts[0])}, (rack, host, seen)


def test_unreachable_host_is_an_error_and_nothing_is_drained(
    healed_hosts: HostsRig, tmp_path: Path
) -> None:
    rig = healed_hosts
    hosts = rig.racks["r01"]
    rig.fault(hosts[2], "link-down")
    code, report, elapsed = burnin(
        rig, tmp_path, "--rack", "r01", "--apply", "--node-actions", "recording"
    )
    nodes = by_node(report)
    assert code == 1
    assert nodes[hosts[2]]["status"] == "error", nodes[hosts[2]]
    assert all(nodes[h]["status"] == "pass" for h in hosts if h != hosts[2]), nodes
    reasons = [r for n in report["nodes"] for r in n.get("reasons", [])]
    assert any(r.get("value") == "unreachable" for r in reasons), reasons
    assert report["actions"] == [] or all(a["kind"] != "drain" for a in report["actions"])
    # the run is in the store and the audit chain is whole
    shown = dcops(rig, tmp_path, "burnin", "show", report["run_id"], "--json")
    assert shown.proc.returncode == 0 and shown.json["run_id"] == report["run_id"]
    verify = dcops(rig, tmp_path, "audit", "verify")
    assert verify.proc.returncode == 0, verify.proc.stderr
    print(f"time-to-verdict burn-in, link down: {elapsed:.1f} s (whole run of 4 hosts)")


def test_host_killed_mid_collective_is_an_error_never_a_drain(
    healed_hosts: HostsRig, tmp_path: Path
) -> None:
    """``burnin run --apply``: a rank's host killed during the domain all_reduce."""
    import json
    import os
    import subprocess

    from tests.hosts._cli import BASE_ENV

    rig = healed_hosts
    hosts = rig.racks["r01"]
    victim = hosts[2]
    argv = [
        sys.executable, "-m", "dcops", "--config", str(rig.config),
        "--state-db", str(tmp_path / "state.db"), "burnin", "run", "--rack", "r01",
        "--launcher", "ssh", "--remote-python", sys.executable, "--rounds", "1",
        "--duration", "0.2", "--thresholds", str(rig_thresholds(tmp_path)), "--json",
        "--apply", "--node-actions", "recording",
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/tmp",
        env={**os.environ, **BASE_ENV},
    )  # fmt: skip
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and proc.poll() is None:
            out = subprocess.run(
                ["ip", "netns", "exec", victim, "ss", "-Htn", "state", "established"],
                capture_output=True, text=True, timeout=10, check=False,
            ).stdout  # fmt: skip
            if sum(1 for line in out.splitlines() if ":22 " not in line) >= 4:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before its collective started"
        struck = time.monotonic()
        rig.fault(victim, "kill")
        stdout, stderr = proc.communicate(timeout=120)
        after_s = time.monotonic() - struck
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr[-2000:]
    report = json.loads(stdout)
    assert report["status"] == "error"
    (rack,) = report["racks"]
    assert rack["status"] == "error"
    assert any(victim in r["message"] for r in rack["reasons"]), rack
    nodes = by_node(report)
    # the killed host could not be judged: error (crashed), never fail; its peers pass
    assert nodes[victim]["status"] == "error", nodes[victim]
    assert any(r.get("value") == "crashed" for r in nodes[victim]["reasons"]), nodes[victim]
    assert all(nodes[h]["status"] == "pass" for h in hosts if h != victim), nodes
    assert report["actions"] == []
    verify = dcops(rig, tmp_path, "audit", "verify")
    assert verify.proc.returncode == 0, verify.proc.stderr
    print(
        f"\ntime-to-verdict burn-in, host killed mid-all_reduce: {after_s:.1f} s after the fault "
        f"-> {victim} error: {nodes[victim]['reasons'][0]['message']}"
    )

"""Burn-in across the rig's hosts through Slurm job steps, and node actions through Slurm.

``scripts/test-cluster up --hosts`` runs a slurmd inside each host's network
namespace (NodeAddr = its rig address). ``dcops burnin run --launcher slurm``
allocates each NVLink domain (rack) and runs its workers as ``srun`` steps: the
GEMM workers and the collective ranks are processes of the hosts themselves,
the ranks rendezvous at rank 0's rig address (a 127.0.0.1 there would be each
host's own loopback: no collective could pass) and the collectives cross the
bridge. Verdicts and the store are those of the SSH launcher's runs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.hosts._cli import by_node, dcops
from tests.hosts.test_burnin_hosts import rig_thresholds
from tests.rig.hosts import HostsRig, HostsSlurm

pytestmark = [pytest.mark.hosts, pytest.mark.torch, pytest.mark.timeout(180)]

RANK = b"burnin.remote.rank"


def burnin(slurm: HostsSlurm, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], float]:
    ran = dcops(
        slurm.rig, tmp_path, "burnin", "run", "--launcher", "slurm",
        "--remote-python", sys.executable, "--rounds", "1", "--duration", "0.2",
        "--thresholds", str(rig_thresholds(tmp_path)), "--json", *args,
        timeout_s=170, config=slurm.config,
    )  # fmt: skip
    return ran.proc.returncode, ran.json, ran.elapsed_s


def _tcp_peers(pid: int) -> set[tuple[str, int]]:
    """Remote (address, port) of the established IPv4 TCP sockets of ``pid``'s namespace."""
    peers: set[tuple[str, int]] = set()
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return peers
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "01":  # ESTABLISHED
            addr, port = fields[2].split(":")
            octets = [str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)]
            peers.add((".".join(octets), int(port, 16)))
    return peers


def watch_ranks(rig: HostsRig, stop: threading.Event) -> dict[str, dict[str, set[Any]]]:
    """While the run lasts, per host: the nodes Slurm named its rank processes
    (SLURMD_NODENAME), their MASTER_PORTs, and the TCP peers of its namespace."""
    netns = {os.stat(f"/run/netns/{h}").st_ino: h for h in rig.nodes}
    seen: dict[str, dict[str, set[Any]]] = {
        h: {"nodename": set(), "port": set(), "peers": set()} for h in rig.nodes
    }

    def watch() -> None:
        while not stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    if RANK not in (entry / "cmdline").read_bytes():
                        continue
                    host = netns.get(os.stat(entry / "ns" / "net").st_ino)
                    env = (entry / "environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if host is None:
                    continue
                for item in env:
                    key, _, value = item.decode(errors="replace").partition("=")
                    if key == "SLURMD_NODENAME":
                        seen[host]["nodename"].add(value)
                    elif key == "MASTER_PORT":
                        seen[host]["port"].add(int(value))
                seen[host]["peers"] |= _tcp_peers(int(entry.name))
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    return seen


def test_two_racks_pass_through_slurm_steps_on_the_hosts(
    hosts_slurm: HostsSlurm, healed_hosts: HostsRig, tmp_path: Path
) -> None:
    rig = healed_hosts
    stop = threading.Event()
    seen = watch_ranks(rig, stop)
    try:
        code, report, elapsed = burnin(hosts_slurm, tmp_path, "--nodes", ",".join(rig.nodes))
    finally:
        stop.set()
    assert code == 0, [
        (n["node"], n["status"], n.get("reasons"), n.get("gpus")) for n in report["nodes"]
    ]
    assert report["status"] == "pass" and report["params"]["backend"] == "slurm"
    assert sorted(by_node(report)) == sorted(rig.nodes)
    assert all(n["gpus"][0]["tflops"] > 0 for n in report["nodes"])
    assert set(report["collectives"]) == {"domain nvl-r01", "domain nvl-r02"}
    for rack, hosts in rig.racks.items():
        rank0 = rig.address(hosts[0])
        for host in hosts:
            # Slurm started the host's rank in the host's own namespace ...
            assert seen[host]["nodename"] == {host}, (rack, host, seen[host])
            # ... with a MASTER_PORT, and reached rank 0 at its rig address (never loopback)
            assert len(seen[host]["port"]) == 1, (rack, host, seen[host])
            assert not any(a.startswith("127.") for a, _ in seen[host]["peers"]), seen[host]
            if host != hosts[0]:
                assert any(a == rank0 for a, _ in seen[host]["peers"]), (rack, host, seen[host])
    # the allocations are gone
    assert hosts_slurm.run(["squeue", "-h", "-o", "%i"]).stdout.strip() == ""
    print(f"\ntime-to-verdict burn-in through Slurm, 8 hosts, 2 racks: {elapsed:.1f} s")


def _wait_state(slurm: HostsSlurm, node: str, want: str, timeout_s: float = 30) -> str:
    end = time.monotonic() + timeout_s
    state = slurm.state(node)
    while state != want and time.monotonic() < end:
        time.sleep(0.5)
        state = slurm.state(node)
    return state


def test_drain_and_resume_a_host_through_slurm_cli(hosts_slurm: HostsSlurm, tmp_path: Path) -> None:
    node = hosts_slurm.rig.racks["r02"][2]
    common = ("--node-actions", "slurm-cli", "--apply", "--json")
    try:
        drain = dcops(
            hosts_slurm.rig, tmp_path, "node", "drain", node, "--reason", "dcops hosts test",
            *common, config=hosts_slurm.config,
        )  # fmt: skip
        assert drain.proc.returncode == 0, drain.proc.stderr
        (action,) = drain.json
        assert action["status"] == "done" and action["call"][1] == (
            f"SLURM_CONF={hosts_slurm.slurm_conf}"
        )
        assert _wait_state(hosts_slurm, node, "drained") == "drained"
        reason = hosts_slurm.run(["sinfo", "-h", "-N", f"--nodes={node}", "-o", "%E"])
        assert reason.stdout.strip() == "dcops hosts test"
        status = dcops(
            hosts_slurm.rig, tmp_path, "node", "status", node, "--node-actions", "slurm-cli",
            "--json", config=hosts_slurm.config,
        )  # fmt: skip
        assert status.json[0]["drained"] is True
        resume = dcops(
            hosts_slurm.rig, tmp_path, "node", "resume", node, *common,
            config=hosts_slurm.config,
        )  # fmt: skip
        assert resume.proc.returncode == 0, resume.proc.stderr
        # back in service: idle, and answering its slurmctld again
        assert _wait_state(hosts_slurm, node, "idle") == "idle"
    finally:
        hosts_slurm.run(["scontrol", "update", f"NodeName={node}", "State=RESUME"])


def test_hung_slurmd_is_unreachable_within_the_deadline_and_nothing_drains(
    hosts_slurm: HostsSlurm, healed_hosts: HostsRig, tmp_path: Path
) -> None:
    """One host's slurmd SIGSTOPped: the step launch on it times out (MessageTimeout 10 s)."""
    hosts = healed_hosts.racks["r01"]
    victim = hosts[2]
    pid = hosts_slurm.slurmd_pid(victim)
    os.kill(pid, signal.SIGSTOP)
    try:
        code, report, elapsed = burnin(
            hosts_slurm, tmp_path, "--rack", "r01", "--apply", "--node-actions", "recording"
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    # the slurmd answers again (left for the next test as found)
    assert _wait_state(hosts_slurm, victim, "idle", timeout_s=60) == "idle"
    nodes = by_node(report)
    assert code == 1
    assert nodes[victim]["status"] == "error", nodes[victim]
    assert [r["value"] for r in nodes[victim]["reasons"]] == ["unreachable"], nodes[victim]
    assert "slurmd did not take the step" in nodes[victim]["reasons"][0]["message"]
    assert all(nodes[h]["status"] == "pass" for h in hosts if h != victim), nodes
    assert report["actions"] == []
    # within the burn-in's own bound: one step's launch timeout, far below its step limits
    assert elapsed < 90, elapsed
    assert hosts_slurm.run(["squeue", "-h", "-o", "%i"]).stdout.strip() == ""
    verify = dcops(healed_hosts, tmp_path, "audit", "verify", config=hosts_slurm.config)
    assert verify.proc.returncode == 0, verify.proc.stderr
    print(
        f"\ntime-to-verdict burn-in through Slurm, slurmd of {victim} hung: {elapsed:.1f} s "
        f"-> {nodes[victim]['reasons'][0]['message']}"
    )

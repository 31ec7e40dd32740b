"""Sweeps and remote commands across the rig's hosts over real SSH.

Every host is its own network namespace with its own sshd, address and
hostname; ``node_basics`` runs its real commands there (``df``, ``/proc/meminfo``,
``/sys/class/infiniband``), the GPU checks are skipped for the ``cpu`` SKU.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.remote import run_many
from dcops.remote.ssh import SshRunner
from tests.hosts._cli import by_node, dcops
from tests.rig.hosts import HostsRig

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(120)]


def test_sweep_fans_out_to_every_host(healed_hosts: HostsRig, tmp_path: Path) -> None:
    rig = healed_hosts
    ran = dcops(
        rig, tmp_path, "sweep", "--all", "--json", "--timeout", "10", "--deadline", "30",
        "--apply", "--node-actions", "recording",
    )  # fmt: skip
    assert ran.proc.returncode == 0, ran.proc.stderr[-2000:]
    report = ran.json
    nodes = by_node(report)
    assert sorted(nodes) == sorted(rig.nodes)
    assert report["summary"] == {"ok": 8, "warn": 0, "suspect": 0, "fail": 0, "error": 0}
    for name, node in nodes.items():
        checks = {c["check"]: c for c in node["checks"]}
        assert checks["node_basics"]["status"] == "ok", (name, checks["node_basics"])
        assert checks["gpu_count"]["status"] == "skip"
        assert "no NVIDIA GPUs" in checks["gpu_count"]["message"]
        assert node["error"] == "" and node["duration_s"] > 0
    assert report["actions"] == []


def test_remote_commands_run_on_each_host_itself(hosts_rig: HostsRig) -> None:
    """Each answer comes from its own host: its hostname, its address, its namespace."""
    rig = hosts_rig
    script = 'hostname; echo "$SSH_CONNECTION"; readlink /proc/self/ns/net'
    with SshRunner(rig.settings()) as runner:
        got = run_many(
            runner, rig.nodes, ["sh", "-c", script],
            timeout_s=15, deadline_s=30, concurrency=8,
        )  # fmt: skip
    namespaces = set()
    for host in rig.nodes:
        res = got[host]
        assert not isinstance(res, Exception), (host, res)
        name, connection, netns = res.stdout.split("\n")[:3]
        assert name == host
        assert connection.split()[2] == rig.address(host)
        namespaces.add(netns)
    assert len(namespaces) == len(rig.nodes)  # eight network namespaces, not one machine


def test_hosts_reach_each_other_by_name_only_inside_the_rig(hosts_rig: HostsRig) -> None:
    """A host resolves the others through the rig's own hosts file, and nothing outside."""
    rig = hosts_rig
    first, last = rig.nodes[0], rig.nodes[-1]
    with SshRunner(rig.settings()) as runner:
        res = runner.run(
            first,
            [
                "sh",
                "-c",
                f"getent hosts {last}; ip -4 route show; getent hosts example.org || echo none",
            ],
            timeout_s=15,
        )
    lines = res.stdout.splitlines()
    assert lines[0].split() == [rig.address(last), last]
    assert not any(line.startswith("default") for line in lines)  # no way out of the rig
    assert lines[-1] == "none"

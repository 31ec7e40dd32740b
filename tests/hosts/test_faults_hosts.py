"""Real network faults inside the rig's hosts: each ends within its deadline, rightly classified.

Faults (``scripts/test-hosts fault``): link down, a delay line on the host's
link (this kernel has no ``sch_netem``: an NFQUEUE and a userspace delay line
hold every packet), heavy loss (iptables ``statistic``), a killed, a paused
and a frozen sshd, a host whose processes are killed or that dies (link down,
then every process killed) in the middle of a collective.

Each test prints ``time-to-verdict KIND: T s (deadline D s)``: run with ``-s``
to see the figures (docs/testing.md keeps the measured ones).
A fault of the network is never evidence against a node: with ``--apply`` and
``--drain-after 1`` nothing is drained; the store keeps every sweep and every
node, and ``dcops audit verify`` passes.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from burnin.remote.ssh import RUNNER_GRACE_S, SshCollectiveEngine
from burnin.verdicts.collectives import collective_error
from burnin.verdicts.reachability import node_error
from burnin.verdicts.status import Status
from dcops.errors import CommandTimeout, DcopsError, RemoteError
from dcops.measurements import GpuRef
from dcops.remote.ssh import SshRunner
from dcops.remote.ssh_settings import SshResolver
from tests.hosts._cli import by_node, dcops
from tests.rig.hosts import HostsRig

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(120)]

TIMEOUT_S = 6.0  # per node
DEADLINE_S = 15.0  # the whole sweep
CONNECT_S = 3.0  # the SSH connect phase (tests/hosts/_cli.py)
#: Seconds a sweep process takes beyond its deadline at most (Python, dcops and SSH start-up).
OVERHEAD_S = 6.0


def sweep(rig: HostsRig, tmp_path: Path) -> tuple[dict[str, Any], float]:
    ran = dcops(
        rig, tmp_path, "sweep", "--rack", "r01", "--checks", "node_basics", "--json",
        "--timeout", f"{TIMEOUT_S:g}", "--deadline", f"{DEADLINE_S:g}",
        "--apply", "--drain-after", "1", "--node-actions", "recording",
    )  # fmt: skip
    assert ran.proc.returncode in (0, 1), ran.proc.stderr[-2000:]
    return ran.json, ran.elapsed_s


def audit_records(rig: HostsRig, tmp_path: Path) -> int:
    verify = dcops(rig, tmp_path, "audit", "verify")
    assert verify.proc.returncode == 0, verify.proc.stdout + verify.proc.stderr
    found = re.search(r"intact: (\d+) record", verify.proc.stdout + verify.proc.stderr)
    return int(found.group(1)) if found else 0


def stored_sweeps(tmp_path: Path) -> int:
    import sqlite3

    with sqlite3.connect(tmp_path / "state.db") as db:
        return int(db.execute("SELECT count(*) FROM runs WHERE kind = 'sweep'").fetchone()[0])


#: kind, argument, what the faulted host's sweep says, a pattern its error matches.
CASES = [
    ("link-down", "", "error", r"connect timed out|No route to host|no SSH session"),
    ("sshd-stop", "", "error", r"connection refused"),
    ("sshd-pause", "", "error", r"no SSH session within 3s"),
    ("freeze", "", "error", r"no SSH session within 3s"),
    ("delay", "1500", "error", r"no SSH session within 3s|connect timed out"),
    ("delay", "100", "ok", r"^$"),
]


@pytest.mark.parametrize(("kind", "arg", "expected", "pattern"), CASES)
def test_sweep_fault_ends_in_time_and_drains_nothing(
    healed_hosts: HostsRig, tmp_path: Path, kind: str, arg: str, expected: str, pattern: str
) -> None:
    rig = healed_hosts
    hosts = rig.racks["r01"]
    bad = hosts[1]
    # an operator's action first, so the audit chain has records to keep
    drain = dcops(
        rig, tmp_path, "node", "drain", hosts[3], "--reason", "ticket 1", "--apply",
        "--node-actions", "recording",
    )  # fmt: skip
    assert drain.proc.returncode == 0, drain.proc.stderr
    before = audit_records(rig, tmp_path)
    clean, clean_s = sweep(rig, tmp_path)
    baseline_s = by_node(clean)[bad]["duration_s"]
    rig.fault(bad, kind, arg)
    report, elapsed = sweep(rig, tmp_path)
    nodes = by_node(report)
    got = nodes[bad]
    assert got["status"] == expected, got
    assert re.search(pattern, got["error"]), got["error"]
    assert all(nodes[h]["status"] == "ok" for h in hosts if h != bad), nodes
    assert elapsed < DEADLINE_S + OVERHEAD_S, elapsed
    assert got["duration_s"] <= TIMEOUT_S + 1.0, got
    if kind == "delay" and expected == "ok":
        # slow, not broken: the same findings, later (each SSH round trip is 200 ms longer)
        assert got["duration_s"] > baseline_s + 0.5, (got["duration_s"], baseline_s)
    # nothing drained, nothing lost
    assert report["actions"] == []
    assert got["state"] == "ok" and got["consecutive_failures"] == 0
    rig.heal(bad)
    after, _ = sweep(rig, tmp_path)
    assert by_node(after)[bad]["status"] == "ok"
    assert stored_sweeps(tmp_path) == 3
    assert audit_records(rig, tmp_path) >= before
    label = f"{kind} {arg}".strip()
    print(
        f"\ntime-to-verdict sweep, {label}: host {got['duration_s']:.2f} s "
        f"(clean {baseline_s:.2f} s; timeout {TIMEOUT_S:g} s, connect {CONNECT_S:g} s), "
        f"whole sweep {elapsed:.1f} s (clean {clean_s:.1f} s; deadline {DEADLINE_S:g} s) -> "
        f"{got['status']}: {got['error']}"
    )


def test_heavy_loss_is_flaky_never_a_failure(healed_hosts: HostsRig, tmp_path: Path) -> None:
    """40 % loss each way: a host may answer or not, but never fails a check; the deadline holds."""
    rig = healed_hosts
    hosts = rig.racks["r01"]
    rig.fault(hosts[0], "loss", "40")
    statuses = []
    for _ in range(2):
        report, elapsed = sweep(rig, tmp_path)
        got = by_node(report)[hosts[0]]
        statuses.append(got["status"])
        assert got["status"] in ("ok", "error"), got
        assert "refused" not in got["error"], got  # lost packets are not a refused key
        assert elapsed < DEADLINE_S + OVERHEAD_S
        assert report["actions"] == []
        print(
            f"\ntime-to-verdict sweep, loss 40: host {got['duration_s']:.2f} s, "
            f"whole sweep {elapsed:.1f} s (deadline {DEADLINE_S:g} s) -> "
            f"{got['status']} {got['error']}"
        )
    assert stored_sweeps(tmp_path) == 2


def test_frozen_host_mid_command_is_hung(healed_hosts: HostsRig) -> None:
    """A host frozen while a command runs on it: CommandTimeout (hung) at the command's timeout."""
    rig = healed_hosts
    host = rig.racks["r02"][0]
    timeout_s = 4.0
    with SshRunner(rig.settings(connect_timeout_s=CONNECT_S)) as runner:
        assert runner.run(host, ["true"], timeout_s=10).ok  # connected, then frozen mid-command
        threading.Timer(0.5, rig.fault, (host, "freeze")).start()
        start = time.monotonic()
        with pytest.raises(CommandTimeout) as caught:
            runner.run(host, ["sleep", "2"], timeout_s=timeout_s)
        elapsed = time.monotonic() - start
    assert timeout_s <= elapsed < timeout_s + 1.5, elapsed
    assert node_error(host, caught.value).reason.value == "hung"
    print(
        f"\ntime-to-verdict command, frozen host: {elapsed:.2f} s (timeout {timeout_s:g} s) -> hung"
    )


def _established(rig: HostsRig, host: str) -> int:
    """TCP connections of ``host`` not on its SSH port (the ranks' store and gloo pairs)."""
    import subprocess

    out = subprocess.run(
        ["ip", "netns", "exec", host, "ss", "-Htn", "state", "established"],
        capture_output=True, text=True, timeout=10, check=False,
    ).stdout  # fmt: skip
    return sum(1 for line in out.splitlines() if ":22 " not in line)


@pytest.mark.torch
@pytest.mark.timeout(150)
@pytest.mark.parametrize("kind", ["die", "kill"])
def test_host_dying_mid_collective_ends_in_time(healed_hosts: HostsRig, kind: str) -> None:
    """A rank's host dies (link down, then all killed) or is killed while the ranks all_reduce."""
    rig = healed_hosts
    hosts = rig.racks["r01"]
    victim = hosts[2]
    limit_s = 10.0
    members = [GpuRef(h, 0) for h in hosts]
    outcome: dict[str, Any] = {}
    settings = rig.settings(connect_timeout_s=CONNECT_S)
    with SshRunner(settings) as runner:
        resolver = SshResolver(settings)
        engine = SshCollectiveEngine(
            runner, python=sys.executable, threads=1,
            address=lambda n: resolver.resolve(n).hostname,
        )  # fmt: skip

        def run() -> None:
            start = time.monotonic()
            try:
                outcome["result"] = engine.run(
                    "all_reduce", members, sizes_bytes=[1 << 20], iterations=100000,
                    timeout_s=limit_s,
                )  # fmt: skip
            except DcopsError as exc:
                outcome["error"] = exc
            outcome["elapsed"] = time.monotonic() - start

        thread = threading.Thread(target=run)
        thread.start()
        # mid-collective: the victim's rank is connected to its peers (store + 3 gloo pairs)
        end = time.monotonic() + 60
        while _established(rig, victim) < 4 and time.monotonic() < end and thread.is_alive():
            time.sleep(0.1)
        assert thread.is_alive(), f"the collective ended before the fault: {outcome}"
        assert _established(rig, victim) >= 4, rig.processes(victim)
        time.sleep(0.5)
        struck = time.monotonic()
        rig.fault(victim, kind)
        thread.join(timeout=limit_s + RUNNER_GRACE_S + 30)
        after_s = time.monotonic() - struck
    assert not thread.is_alive()
    error = outcome.get("error")
    # the lost rank's own node is named: hung when its link died, crashed when killed
    assert isinstance(error, RemoteError) and error.host == victim, outcome
    assert isinstance(error, CommandTimeout) == (kind == "die"), error
    assert outcome["elapsed"] < limit_s + RUNNER_GRACE_S + 10, outcome
    # the suite's verdict on a collective that raised: error for the group, never fail
    finding = collective_error("all_reduce", members, error)
    assert finding.status is Status.ERROR
    assert "rank 2" in str(error), error
    expected = "hung" if kind == "die" else "crashed"
    assert node_error(victim, error).reason.value == expected
    # no rank is left running on the hosts that lived
    time.sleep(1.0)
    for host in hosts:
        if host != victim:
            assert not any("collective_worker" in p for p in rig.processes(host)), host
    print(
        f"\ntime-to-verdict collective, host {kind} mid-all_reduce: {after_s:.1f} s "
        "after the fault "
        f"(worker timeout {limit_s:g} s + runner grace {RUNNER_GRACE_S:g} s) -> "
        f"{type(error).__name__} ({expected}): {error}"
    )

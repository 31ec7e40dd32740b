"""``scripts/test-hosts`` and ``scripts/test-cluster up --hosts`` themselves: up is
idempotent, down leaves nothing behind.

A second, small rig (prefix ``mt``, one rack of two hosts on 10.77.1.0/24, a
login user the rig creates) next to the session's, so the session's rig is
never taken down by these tests.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.rig.hosts import SCRIPT, cluster_script, describe, script

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(180)]

USER = "dcops-hosts-t"


def _env() -> dict[str, str]:
    # Not under pytest's tmp_path (0700): the rig's login user reads authorized_keys there.
    parent = Path(tempfile.mkdtemp(prefix="dcops-hosts-test-", dir="/tmp"))
    parent.chmod(0o755)
    return {
        "DCOPS_HOSTS_DIR": str(parent / "mt-rig"),
        "DCOPS_HOSTS_PREFIX": "mt",
        "DCOPS_HOSTS_RACKS": "1",
        "DCOPS_HOSTS_PER_RACK": "2",
        "DCOPS_HOSTS_SUBNET": "10.77.1",
        "DCOPS_HOSTS_USER": USER,
    }


def _leftovers(rig_dir: Path) -> list[str]:
    """Everything of the ``mt`` rig that still exists: namespaces, links, processes, files, user."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    found += [
        f"netns {line.split()[0]}" for line in netns.stdout.splitlines() if line.startswith("mt-")
    ]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
    for line in links.stdout.splitlines():
        name = line.split(": ")[1].split("@")[0]
        if name.startswith("v-mt-") or name == "mtbr0":
            found.append(f"link {name}")
    marker = f"DCOPS_HOSTS_RIG={rig_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if str(rig_dir).encode() in cmdline or marker in environ.split(b"\0"):
            found.append(f"process {entry.name}: {cmdline[:80]!r}")
    if rig_dir.exists():
        found.append(f"dir {rig_dir}")
    found += (
        [f"file {p}" for p in Path("/etc/netns").glob("mt-*")]
        if Path("/etc/netns").exists()
        else []
    )
    try:
        pwd.getpwnam(USER)
        found.append(f"user {USER}")
    except KeyError:
        pass
    return found


def _ssh(rig_dir: Path, host: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", str(rig_dir / "ssh_config"), host, command],
        capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_up_is_idempotent_and_down_leaves_nothing() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI is set: the multi-host rig tests need root", pytrace=False)
        pytest.skip("scripts/test-hosts up needs root")
    env = _env()
    rig_dir = Path(env["DCOPS_HOSTS_DIR"])
    try:
        _up_down_up(env, rig_dir)
    finally:
        shutil.rmtree(rig_dir.parent, ignore_errors=True)


def _up_down_up(env: dict[str, str], rig_dir: Path) -> None:
    assert script("down", env=env, timeout_s=60).returncode == 0  # down with nothing up: fine
    assert script("status", env=env).returncode != 0
    try:
        first = script("up", env=env, timeout_s=120)
        assert first.returncode == 0, first.stderr
        assert "status: up (2/2 hosts)" in first.stdout
        pids = {
            h: (rig_dir / "node" / h / "sshd.pid").read_text().strip()
            for h in ("mt-r01-t01", "mt-r01-t02")
        }
        keys = (rig_dir / "known_hosts").read_text()
        again = script("up", env=env, timeout_s=120)
        assert again.returncode == 0, again.stderr
        # the second up changed nothing that ran: same sshd, same host keys
        assert {h: (rig_dir / "node" / h / "sshd.pid").read_text().strip() for h in pids} == pids
        assert (rig_dir / "known_hosts").read_text() == keys
        assert script("status", env=env).returncode == 0
        # each host is its own: hostname, address and login user, strict host keys
        got = _ssh(rig_dir, "mt-r01-t02", "hostname; id -un; echo $SSH_CONNECTION")
        assert got.returncode == 0, got.stderr
        name, user, conn = got.stdout.split("\n")[:3]
        assert (name, user) == ("mt-r01-t02", USER)
        assert conn.split()[2] == "10.77.1.12"
        values = describe(env)
        assert values["DCOPS_HOSTS_NODES"] == "mt-r[01-01]-t[01-02]"
        # a killed sshd: status says so, up brings it back
        assert script("fault", "mt-r01-t01", "sshd-stop", env=env).returncode == 0
        assert script("status", env=env).returncode != 0
        assert script("up", env=env, timeout_s=120).returncode == 0
        assert script("status", env=env).returncode == 0
        # processes started over SSH live in the host's namespace; down ends them too
        subprocess.Popen(
            ["ssh", "-F", str(rig_dir / "ssh_config"), "mt-r01-t01", "sleep 300"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        assert script("fault", "mt-r01-t02", "delay", "50", env=env).returncode == 0
    finally:
        down = script("down", env=env, timeout_s=120)
    assert down.returncode == 0, down.stderr
    assert _leftovers(rig_dir) == []
    assert script("status", env=env).returncode != 0
    assert script("down", env=env, timeout_s=60).returncode == 0  # down twice: still fine
    # and up after down works again
    try:
        assert script("up", env=env, timeout_s=120).returncode == 0
        assert _ssh(rig_dir, "mt-r01-t01", "hostname").stdout.strip() == "mt-r01-t01"
    finally:
        assert script("down", env=env, timeout_s=120).returncode == 0
    assert _leftovers(rig_dir) == []


def _slurm(rig_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), env={**os.environ, "SLURM_CONF": str(rig_dir / "slurm/etc/slurm.conf")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _slurm_pids(rig_dir: Path) -> dict[str, str]:
    run = rig_dir / "slurm" / "run"
    return {p.name: p.read_text().strip() for p in sorted(run.glob("*.pid"))}


def test_cluster_up_hosts_is_idempotent_and_down_leaves_nothing() -> None:
    """``scripts/test-cluster up --hosts`` on the small ``mt`` rig (its slurmctld on port 26937)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI is set: the multi-host rig tests need root", pytrace=False)
        pytest.skip("scripts/test-cluster up --hosts needs root")
    env = {**_env(), "DCOPS_RIG_HOSTS_PORT": "26937"}
    rig_dir = Path(env["DCOPS_HOSTS_DIR"])
    try:
        _cluster_up_down(env, rig_dir)
    finally:
        shutil.rmtree(rig_dir.parent, ignore_errors=True)


def _cluster_up_down(env: dict[str, str], rig_dir: Path) -> None:
    assert cluster_script("down", "--hosts", env=env, timeout_s=60).returncode == 0
    assert cluster_script("status", "--hosts", env=env).returncode != 0
    try:
        first = cluster_script("up", "--hosts", env=env, timeout_s=120)
        assert first.returncode == 0, first.stderr
        assert "status --hosts: up" in first.stdout and "2/2 running" in first.stdout
        pids = _slurm_pids(rig_dir)
        assert sorted(pids) == ["slurmctld.pid", "slurmd-mt-r01-t01.pid", "slurmd-mt-r01-t02.pid"]
        again = cluster_script("up", "--hosts", env=env, timeout_s=120)
        assert again.returncode == 0, again.stderr
        assert _slurm_pids(rig_dir) == pids  # nothing restarted
        # a step on each host runs there: its hostname, its address
        step = _slurm(rig_dir, "srun", "-N2", "bash", "-c", "echo $(hostname) $SLURM_NODEID")
        assert step.returncode == 0, step.stderr
        assert sorted(line.split()[0] for line in step.stdout.splitlines()) == [
            "mt-r01-t01", "mt-r01-t02",
        ]  # fmt: skip
        addrs = _slurm(rig_dir, "sinfo", "-h", "-N", "-o", "%N %o")
        assert addrs.stdout.split() == ["mt-r01-t01", "10.77.1.11", "mt-r01-t02", "10.77.1.12"]
        # --keep: the Slurm part goes, the hosts stay
        keep = cluster_script("down", "--hosts", "--keep", env=env, timeout_s=120)
        assert keep.returncode == 0, keep.stderr
        assert not (rig_dir / "slurm").exists()
        assert script("status", env=env).returncode == 0
        assert cluster_script("status", "--hosts", env=env).returncode != 0
        assert cluster_script("up", "--hosts", env=env, timeout_s=120).returncode == 0
        # a job left running: down cancels it and ends its processes too
        job = _slurm(rig_dir, "sbatch", "-N1", "-w", "mt-r01-t02", "--wrap", "sleep 300")
        assert job.returncode == 0, job.stderr
    finally:
        down = cluster_script("down", "--hosts", env=env, timeout_s=120)
    assert down.returncode == 0, down.stderr
    assert _leftovers(rig_dir) == []
    assert cluster_script("status", "--hosts", env=env).returncode != 0
    assert cluster_script("down", "--hosts", env=env, timeout_s=60).returncode == 0  # twice: fine


def test_bad_settings_are_one_line_errors() -> None:
    proc = subprocess.run(
        [str(SCRIPT), "status"], env={**os.environ, "DCOPS_HOSTS_PREFIX": "Bad/Prefix"},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "test-hosts: error: DCOPS_HOSTS_PREFIX must be 1-4 lowercase letters/digits"
    ]
    usage = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=30, check=False)
    assert usage.returncode == 2 and "test-hosts up" in usage.stderr
    for args, line in [
        (("up", "--hosts", "--slurm", "24.11"),
         "test-cluster: error: up --hosts runs Debian's packaged Slurm 22.05 only, "
         "not --slurm 24.11"),
        (("down", "--bogus"), "test-cluster: error: down takes only --keep and --hosts"),
        (("status", "--bogus"), "test-cluster: error: status takes only --hosts or --all"),
    ]:  # fmt: skip
        bad = cluster_script(*args)
        assert (bad.returncode, bad.stderr.strip().splitlines()) == (1, [line]), args

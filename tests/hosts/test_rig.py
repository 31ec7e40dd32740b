"""``scripts/test-hosts`` itself: up is idempotent, down leaves nothing behind.

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

from tests.rig.hosts import SCRIPT, describe, script

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

"""The multi-host test rig (``scripts/test-hosts``) as a session fixture: ``hosts_rig``.

Hosts are network namespaces with their own address, hostname and sshd
(``mh-r01-t01`` .. ``mh-r02-t04`` on 10.77.0.0/24 by default). The fixture:

* uses the rig as it is when ``scripts/test-hosts status`` says it is up, and
  leaves it up (``scripts/check`` starts it before pytest and stops it after);
* otherwise, as root, runs ``scripts/test-hosts up`` and ``down`` at the end;
* otherwise skips, saying why -- unless ``CI`` is set: then a missing rig is a
  failure, never a skip.

``hosts_slurm`` adds Slurm on those hosts (``scripts/test-cluster up --hosts``: one
slurmd inside each host's namespace, NodeAddr its address, and a slurmctld they
reach at the bridge's address): used as it is when ``scripts/test-cluster status
--hosts`` says it is up, else started (root) and stopped at the end (``down
--hosts --keep``: its Slurm only, the hosts stay as the ``hosts_rig`` found them).

``HostsRig.fault(host, kind, arg)`` injects a real fault inside a host's
namespace (``scripts/test-hosts fault``); ``heal`` undoes it. Tests using the
rig are marked ``@pytest.mark.hosts``; the ``healed_hosts`` fixture heals every
host after each test, so a fault never outlives its test.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dcops.remote.ssh_settings import SshSettings

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "test-hosts"
CLUSTER_SCRIPT = REPO / "scripts" / "test-cluster"
#: The caller's rig settings, captured before tests scrub DCOPS_* from the environment.
_RIG_ENV = {k: v for k, v in os.environ.items() if k.startswith("DCOPS_HOSTS_")}
UP_TIMEOUT_S = 120


def script(
    *args: str, timeout_s: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/test-hosts ARGS`` with the caller's (or the given) DCOPS_HOSTS_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DCOPS_HOSTS_")}
    base.update(_RIG_ENV if env is None else env)
    return subprocess.run(
        [str(SCRIPT), *args], env=base, capture_output=True, text=True, timeout=timeout_s,
        check=False,
    )  # fmt: skip


def describe(env: dict[str, str] | None = None) -> dict[str, str]:
    """``scripts/test-hosts env`` as a dict."""
    values: dict[str, str] = {}
    for line in script("env", env=env).stdout.splitlines():
        parts = shlex.split(line)
        if len(parts) == 2 and parts[0] == "export" and "=" in parts[1]:
            key, value = parts[1].split("=", 1)
            values[key] = value
    return values


@dataclass(frozen=True)
class HostsRig:
    """Where the running rig is, its hosts, and ready-made dcops settings."""

    rig_dir: Path
    nodes: tuple[str, ...]
    racks: dict[str, tuple[str, ...]]
    config: Path
    site: Path
    user: str
    started_here: bool = False
    faulted: set[str] = field(default_factory=set)

    @property
    def ssh_config(self) -> Path:
        return self.rig_dir / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.rig_dir / "known_hosts"

    @property
    def identity_file(self) -> Path:
        return self.rig_dir / "id_ed25519"

    def settings(self, **changes: float) -> SshSettings:
        """SSH settings for the rig (strict host keys, its own known_hosts and key)."""
        values = {"connect_timeout_s": 5.0, "command_timeout_s": 20.0, **changes}
        return SshSettings(
            identity_files=(str(self.identity_file),),
            known_hosts=str(self.known_hosts),
            ssh_config=str(self.ssh_config),
            **values,  # type: ignore[arg-type]
        )

    def address(self, host: str) -> str:
        for line in (self.rig_dir / "hosts").read_text().splitlines():
            addr, _, name = line.partition(" ")
            if name.strip() == host:
                return addr
        raise KeyError(host)

    def fault(self, host: str, kind: str, arg: str = "") -> None:
        """Inject a real fault into ``host`` (see ``scripts/test-hosts``)."""
        self.faulted.add(host)
        args = ["fault", host, kind, *([arg] if arg else [])]
        proc = script(*args, timeout_s=30)
        assert proc.returncode == 0, f"test-hosts {shlex.join(args)}: {proc.stderr[-1500:]}"

    def heal(self, host: str) -> None:
        proc = script("heal", host, timeout_s=60)
        assert proc.returncode == 0, f"test-hosts heal {host}: {proc.stderr[-1500:]}"
        self.faulted.discard(host)

    def heal_all(self) -> None:
        for host in sorted(self.faulted):
            self.heal(host)

    def pids(self, host: str) -> list[int]:
        """The processes running in ``host`` (its network namespace)."""
        out = subprocess.run(
            ["ip", "netns", "pids", host], capture_output=True, text=True, check=False, timeout=10
        ).stdout
        return [int(p) for p in out.split()]

    def processes(self, host: str) -> list[str]:
        """The command lines of ``host``'s processes."""
        lines = []
        for pid in self.pids(host):
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            lines.append(raw.replace(b"\0", b" ").decode(errors="replace").strip())
        return lines

    def wait_for_process(self, host: str, needle: str, timeout_s: float = 30.0) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if any(needle in p for p in self.processes(host)):
                return True
            time.sleep(0.1)
        return False


def cluster_script(
    *args: str, timeout_s: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/test-cluster ARGS`` with the caller's (or the given) DCOPS_HOSTS_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DCOPS_HOSTS_")}
    base.update(_RIG_ENV if env is None else env)
    return subprocess.run(
        [str(CLUSTER_SCRIPT), *args], env=base, capture_output=True, text=True,
        timeout=timeout_s, check=False,
    )  # fmt: skip


@dataclass(frozen=True)
class HostsSlurm:
    """Slurm on the rig's hosts: its slurm.conf and a dcops config that points at it."""

    rig: HostsRig
    slurm_conf: Path
    config: Path  # the rig's site and [ssh], and [slurm] conf = slurm_conf

    def run(self, argv: list[str], timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
        """A Slurm client command against this cluster."""
        return subprocess.run(
            argv, env={**os.environ, "SLURM_CONF": str(self.slurm_conf)}, capture_output=True,
            text=True, timeout=timeout_s, check=False,
        )  # fmt: skip

    def state(self, node: str) -> str:
        """sinfo's long state of ``node`` (``idle``, ``drained``, ``idle*`` ...)."""
        return self.run(["sinfo", "-h", "-N", f"--nodes={node}", "-o", "%T"]).stdout.strip()

    def slurmd_pid(self, node: str) -> int:
        return int((self.slurm_conf.parents[1] / "run" / f"slurmd-{node}.pid").read_text())


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") or os.environ.get("DCOPS_RIG_REQUIRE") == "1":
        pytest.fail(
            f"CI or DCOPS_RIG_REQUIRE=1 is set and the multi-host rig is missing: {reason}",
            pytrace=False,
        )
    pytest.skip(reason)


@pytest.fixture(scope="session")
def hosts_rig() -> Iterator[HostsRig]:
    """The running multi-host rig (started for this session when needed and possible)."""
    started = False
    if script("status").returncode != 0:
        if os.geteuid() != 0:
            _unavailable(
                "the multi-host rig is not up; starting it needs root: scripts/test-hosts up"
            )
        up = script("up", timeout_s=UP_TIMEOUT_S)
        if up.returncode != 0:
            pytest.fail(
                f"scripts/test-hosts up failed (exit {up.returncode}):\n{up.stderr[-4000:]}",
                pytrace=False,
            )
        started = True
    values = describe()
    from dcops.hostlist import expand

    nodes = tuple(expand(values["DCOPS_HOSTS_NODES"]))
    per_rack = int(values["DCOPS_HOSTS_PER_RACK"])
    racks = {
        f"r{i + 1:02d}": nodes[i * per_rack : (i + 1) * per_rack]
        for i in range(len(nodes) // per_rack)
    }
    rig_dir = Path(values["DCOPS_HOSTS_DIR"])
    rig = HostsRig(
        rig_dir=rig_dir,
        nodes=nodes,
        racks=racks,
        config=Path(values["DCOPS_HOSTS_CONFIG"]),
        site=rig_dir / "site.yaml",
        user=values["DCOPS_HOSTS_USER"],
        started_here=started,
    )
    try:
        yield rig
    finally:
        rig.heal_all()
        if started and _RIG_ENV.get("DCOPS_HOSTS_KEEP", "") not in ("1", "yes", "true"):
            down = script("down", timeout_s=120)
            if down.returncode != 0:
                pytest.fail(f"scripts/test-hosts down failed:\n{down.stderr[-3000:]}")


@pytest.fixture
def healed_hosts(hosts_rig: HostsRig) -> Iterator[HostsRig]:
    """The rig, with every fault a test injected undone after it."""
    yield hosts_rig
    hosts_rig.heal_all()


@pytest.fixture
def hosts_slurm(hosts_slurm_session: HostsSlurm) -> HostsSlurm:
    """Slurm on the rig's hosts, every slurmd running: a fault test of the hosts (``kill``,
    ``die``) ends a host's slurmd too, and ``scripts/test-hosts heal`` restarts only its sshd;
    ``up --hosts`` (idempotent) starts what is missing and waits for every node to answer."""
    if cluster_script("status", "--hosts").returncode != 0:
        up = cluster_script("up", "--hosts", timeout_s=UP_TIMEOUT_S)
        assert up.returncode == 0, f"scripts/test-cluster up --hosts: {up.stderr[-3000:]}"
    return hosts_slurm_session


@pytest.fixture(scope="session")
def hosts_slurm_session(hosts_rig: HostsRig) -> Iterator[HostsSlurm]:
    """Slurm on the rig's hosts (started for this session when needed and possible)."""
    started = False
    if cluster_script("status", "--hosts").returncode != 0:
        if os.geteuid() != 0:
            _unavailable(
                "Slurm on the multi-host rig is not up; starting it needs root: "
                "scripts/test-cluster up --hosts"
            )
        up = cluster_script("up", "--hosts", timeout_s=UP_TIMEOUT_S)
        if up.returncode != 0:
            pytest.fail(
                f"scripts/test-cluster up --hosts failed (exit {up.returncode}):\n"
                f"{up.stderr[-4000:]}",
                pytrace=False,
            )
        started = True
    values: dict[str, str] = {}
    env = cluster_script("env")
    if "DCOPS_RIG_HOSTS_SLURM_CONF" not in env.stdout:
        pytest.fail(
            f"scripts/test-cluster env failed (exit {env.returncode}): {env.stderr[-2000:]}"
        )
    for line in env.stdout.splitlines():
        parts = shlex.split(line)
        if len(parts) == 2 and parts[0] == "export" and "=" in parts[1]:
            key, value = parts[1].split("=", 1)
            values[key] = value
    slurm = HostsSlurm(
        rig=hosts_rig,
        slurm_conf=Path(values["DCOPS_RIG_HOSTS_SLURM_CONF"]),
        config=Path(values["DCOPS_RIG_HOSTS_CONFIG"]),
    )
    try:
        yield slurm
    finally:
        if started:
            down = cluster_script("down", "--hosts", "--keep", timeout_s=120)
            if down.returncode != 0:
                pytest.fail(f"scripts/test-cluster down --hosts --keep failed:\n{down.stderr}")

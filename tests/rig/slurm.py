"""The real local Slurm test cluster as a pytest session fixture (``slurm_cluster``).

``scripts/test-cluster`` does the work (munge, MariaDB, slurmdbd, slurmctld,
18 slurmd ``sim-r01-t01..18`` with ``gpu:4`` each, slurmrestd with JWT, all on
loopback). The fixture:

* uses the cluster as it is when ``scripts/test-cluster status`` says it is up,
  and leaves it up at the end (developers keep it running between sessions);
* otherwise, as root on Debian, runs ``scripts/test-cluster up`` (idempotent;
  installs the packages when missing) and runs ``down`` at the end of the
  session, unless ``DCOPS_RIG_KEEP=1``;
* otherwise skips, saying why (not root, not Debian, no script).

Two Slurms, one at a time: ``slurm_cluster`` is Debian's packaged 22.05 (tests
marked ``slurm``), ``slurm24_cluster`` the Slurm 24.11 that ``scripts/build-slurm``
builds (``scripts/test-cluster up --slurm 24.11``; tests marked ``slurm24``, under
``tests/slurm24/``): two racks of 9 trays under ``topology/block``. Each fixture
refuses the other's rig. Where the rigs are required (``DCOPS_RIG_REQUIRE=1``,
which ``scripts/check`` sets as root on Debian, or ``CI`` set), a rig that cannot be
had is a failure, never a skip.

``DCOPS_RIG_DIR`` (and the other ``DCOPS_RIG_*`` variables of the script) are
read when this plugin is imported, before the per-test environment isolation.
Tests using it are marked ``@pytest.mark.slurm`` and must leave the cluster as
they found it (resume what they drain, cancel what they submit).
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "test-cluster"
#: The caller's rig settings, captured before tests scrub DCOPS_* from the environment.
_RIG_ENV = {k: v for k, v in os.environ.items() if k.startswith("DCOPS_RIG_")}
_CI = os.environ.get("CI")
UP_TIMEOUT_S = 900  # includes apt-get install on a fresh machine
UP24_TIMEOUT_S = 3600  # includes building Slurm 24.11 on a fresh (busy, 2-core) machine
#: The Slurm the slurm24 tier runs (scripts/build-slurm VERSION).
SLURM24 = "24.11"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "yes", "true")


def rigs_required() -> bool:
    """Must a missing rig fail the test (CI, or scripts/check as root) rather than skip it?"""
    return _truthy(_RIG_ENV.get("DCOPS_RIG_REQUIRE")) or _truthy(_CI)


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``, or fail with it where the rigs are required."""
    if rigs_required():
        pytest.fail(f"{reason} (required here: DCOPS_RIG_REQUIRE or CI is set)", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class SlurmCluster:
    """Where the running test cluster is and how to talk to it."""

    rig_dir: Path
    slurm_conf: Path
    cluster: str
    nodes_expr: str
    nodes: tuple[str, ...]
    gpus_per_node: int
    restd_url: str
    test_user: str
    started_here: bool = False
    script: Path = field(default=SCRIPT)
    #: "packaged" (Debian's 22.05) or the version scripts/build-slurm built (24.11).
    flavour: str = "packaged"
    #: where that build lives (its bin/ leads PATH); None for the packaged Slurm in /usr.
    prefix: Path | None = None
    #: rack name -> its nodes, in order (one NVLink domain, one block/leaf switch each).
    racks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: the dcops site file of the rig (racks, domains, GPUs per node).
    site: Path | None = None
    #: the data_parser (OpenAPI) versions slurmrestd serves.
    restd_versions: tuple[str, ...] = ()

    @property
    def env(self) -> dict[str, str]:
        """This process's environment plus SLURM_CONF (and the built Slurm first on PATH)."""
        env = {**os.environ, "SLURM_CONF": str(self.slurm_conf)}
        if self.prefix is not None and not env.get("PATH", "").startswith(str(self.bin_path)):
            env["PATH"] = f"{self.bin_path}:{env.get('PATH', '')}"
        return env

    @property
    def bin_path(self) -> str:
        """The PATH entries of this rig's Slurm ("" for the packaged one: it is on PATH)."""
        if self.prefix is None:
            return ""
        return f"{self.prefix / 'sbin'}:{self.prefix / 'bin'}"

    def rack_of(self, node: str) -> str:
        for rack, members in self.racks.items():
            if node in members:
                return rack
        raise KeyError(node)

    def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        timeout_s: float = 60.0,
        check: bool = True,
        cwd: str = "/tmp",
    ) -> subprocess.CompletedProcess[str]:
        """Run a Slurm client command, as ``user`` when given (via setpriv, no PAM)."""
        full = list(argv)
        if user is not None and user != getpass.getuser():
            if os.geteuid() != 0:
                pytest.skip(f"running Slurm commands as {user} needs root")
            full = [
                "setpriv",
                f"--reuid={user}",
                f"--regid={user}",
                "--init-groups",
                "env",
                f"SLURM_CONF={self.slurm_conf}",
                f"USER={user}",
                *full,
            ]
        proc = subprocess.run(
            full,
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{shlex.join(full)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
            )
        return proc

    def token(self, user: str | None = None, lifespan_s: int = 600) -> str:
        """A JWT for ``user`` (default: the test user), minted with ``scontrol token``."""
        name = user or self.test_user
        out = self.run(["scontrol", "token", f"username={name}", f"lifespan={lifespan_s}"]).stdout
        for line in out.splitlines():
            if line.startswith("SLURM_JWT="):
                return line.split("=", 1)[1].strip()
        raise AssertionError(f"scontrol token printed no SLURM_JWT: {out!r}")

    def restd_get(
        self, path: str, *, user: str | None = None, token: str | None = None, timeout_s: float = 10
    ) -> tuple[int, Any]:
        """GET ``path`` from slurmrestd as ``user`` (a fresh token unless given): (status, JSON)."""
        name = user or self.test_user
        headers = {"X-SLURM-USER-NAME": name}
        tok = token if token is not None else self.token(name)
        if tok:
            headers["X-SLURM-USER-TOKEN"] = tok
        request = urllib.request.Request(self.restd_url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, body.decode(errors="replace")


def wait_until(
    predicate: Callable[[], bool], *, timeout_s: float = 30.0, interval_s: float = 0.25
) -> bool:
    """Poll ``predicate`` until it is true or ``timeout_s`` passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def _script(
    command: str, timeout_s: float, *args: str, slurm: str = "packaged"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCOPS_RIG_")}
    env.update(_RIG_ENV)
    env["DCOPS_RIG_SLURM"] = slurm
    return subprocess.run(
        [str(SCRIPT), command, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _describe(slurm: str = "packaged") -> dict[str, str]:
    out = _script("env", 30, slurm=slurm).stdout
    values: dict[str, str] = {}
    for line in out.splitlines():
        parts = shlex.split(line)
        if len(parts) == 2 and parts[0] == "export" and "=" in parts[1]:
            key, value = parts[1].split("=", 1)
            values[key] = value
    return values


def _cannot_start_reason() -> str | None:
    if not SCRIPT.exists():
        return f"{SCRIPT} is missing"
    if os.geteuid() != 0:
        return (
            "the Slurm test cluster is not up; starting it needs root: sudo scripts/test-cluster up"
        )
    if not Path("/etc/debian_version").exists():
        return "the Slurm test cluster is not up and scripts/test-cluster up supports Debian only"
    return None


def _cluster(values: dict[str, str], started: bool) -> SlurmCluster:
    from dcops.hostlist import expand

    racks: dict[str, tuple[str, ...]] = {}
    for expr in values.get("DCOPS_RIG_RACKS", "").split():
        members = tuple(expand(expr))
        racks[members[0].split("-")[1]] = members
    prefix = values.get("DCOPS_RIG_SLURM_PREFIX") or None
    site = values.get("DCOPS_RIG_SITE") or None
    return SlurmCluster(
        rig_dir=Path(values["DCOPS_RIG_DIR"]),
        slurm_conf=Path(values["SLURM_CONF"]),
        cluster=values["DCOPS_RIG_CLUSTER"],
        nodes_expr=values["DCOPS_RIG_SLURM_NODES"],
        nodes=tuple(expand(values["DCOPS_RIG_SLURM_NODES"])),
        gpus_per_node=int(values["DCOPS_RIG_GPUS_PER_NODE"]),
        restd_url=values["DCOPS_RIG_RESTD_URL"],
        test_user=values["DCOPS_RIG_TEST_USER"],
        started_here=started,
        flavour=values.get("DCOPS_RIG_SLURM", "packaged"),
        prefix=Path(prefix) if prefix else None,
        racks=racks,
        site=Path(site) if site else None,
        restd_versions=tuple(
            v.lstrip("v") for v in values.get("DCOPS_RIG_RESTD_DATA_PARSERS", "").split(",") if v
        ),
    )


def _other_rig_running(want: str) -> str | None:
    """The Slurm of a rig that is up but is not ``want`` (None: none such, or it is ``want``)."""
    if not SCRIPT.exists() or _script("status", 60, slurm=want).returncode != 0:
        return None
    got = _describe(want).get("DCOPS_RIG_SLURM", "packaged")
    return None if got == want or got.startswith(want + ".") else got


def _down_at_end(started: bool, slurm: str) -> None:
    if started and not _truthy(_RIG_ENV.get("DCOPS_RIG_KEEP")):
        down = _script("down", 180, slurm=slurm)
        if down.returncode != 0:
            pytest.fail(f"scripts/test-cluster down failed:\n{down.stderr[-3000:]}")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """The running local Slurm 22.05 cluster (started for this session when needed)."""
    started = False
    other = _other_rig_running("packaged")
    if other is not None:
        skip_or_fail(
            f"the Slurm test rig runs Slurm {other}; the slurm tier needs the packaged 22.05 "
            "(scripts/test-cluster down, then run it alone; scripts/check runs the tiers in turn)"
        )
    if not SCRIPT.exists() or _script("status", 60).returncode != 0:
        reason = _cannot_start_reason()
        if reason is not None:
            skip_or_fail(reason)
        up = _script("up", UP_TIMEOUT_S)
        if up.returncode != 0:
            pytest.fail(
                f"scripts/test-cluster up failed (exit {up.returncode}):\n"
                f"{up.stdout[-3000:]}\n{up.stderr[-6000:]}",
                pytrace=False,
            )
        started = True
    cluster = _cluster(_describe(), started)
    try:
        yield cluster
    finally:
        _down_at_end(started, "packaged")


@pytest.fixture(scope="session")
def slurm24_cluster() -> Iterator[SlurmCluster]:
    """The running local Slurm 24.11 cluster (built and started for this session when needed).

    Its Slurm's ``bin``/``sbin`` lead this process's PATH for the session, so that dcops's
    own ``sbatch``/``scontrol``/``salloc`` calls and its subprocesses reach 24.11.
    """
    started = False
    other = _other_rig_running(SLURM24)
    if other is not None:
        skip_or_fail(
            f"the Slurm test rig runs Slurm {other}; the slurm24 tier needs Slurm {SLURM24} "
            "(scripts/test-cluster down && scripts/test-cluster up --slurm 24.11; scripts/check "
            "runs the tiers in turn)"
        )
    if _script("status", 60, slurm=SLURM24).returncode != 0:
        reason = _cannot_start_reason()
        if reason is not None:
            skip_or_fail(reason.replace("test-cluster up", f"test-cluster up --slurm {SLURM24}"))
        up = _script("up", UP24_TIMEOUT_S, "--slurm", SLURM24, slurm=SLURM24)
        if up.returncode != 0:
            pytest.fail(
                f"scripts/test-cluster up --slurm {SLURM24} failed (exit {up.returncode}):\n"
                f"{up.stdout[-3000:]}\n{up.stderr[-6000:]}",
                pytrace=False,
            )
        started = True
    cluster = _cluster(_describe(SLURM24), started)
    if cluster.prefix is None or not cluster.flavour.startswith(SLURM24):
        pytest.fail(f"the rig says it runs Slurm {cluster.flavour}, not {SLURM24}", pytrace=False)
    saved_path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{cluster.bin_path}:{saved_path}"
    try:
        yield cluster
    finally:
        os.environ["PATH"] = saved_path
        _down_at_end(started, SLURM24)

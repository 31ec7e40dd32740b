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
UP_TIMEOUT_S = 900  # includes apt-get install on a fresh machine


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

    @property
    def env(self) -> dict[str, str]:
        """This process's environment plus SLURM_CONF."""
        return {**os.environ, "SLURM_CONF": str(self.slurm_conf)}

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


def _script(command: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCOPS_RIG_")}
    env.update(_RIG_ENV)
    return subprocess.run(
        [str(SCRIPT), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _describe() -> dict[str, str]:
    out = _script("env", 30).stdout
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


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """The running local Slurm cluster (started for this session when needed)."""
    from dcops.hostlist import expand

    started = False
    if not SCRIPT.exists() or _script("status", 60).returncode != 0:
        reason = _cannot_start_reason()
        if reason is not None:
            pytest.skip(reason)
        up = _script("up", UP_TIMEOUT_S)
        if up.returncode != 0:
            pytest.fail(
                f"scripts/test-cluster up failed (exit {up.returncode}):\n"
                f"{up.stdout[-3000:]}\n{up.stderr[-6000:]}",
                pytrace=False,
            )
        started = True
    values = _describe()
    cluster = SlurmCluster(
        rig_dir=Path(values["DCOPS_RIG_DIR"]),
        slurm_conf=Path(values["SLURM_CONF"]),
        cluster=values["DCOPS_RIG_CLUSTER"],
        nodes_expr=values["DCOPS_RIG_SLURM_NODES"],
        nodes=tuple(expand(values["DCOPS_RIG_SLURM_NODES"])),
        gpus_per_node=int(values["DCOPS_RIG_GPUS_PER_NODE"]),
        restd_url=values["DCOPS_RIG_RESTD_URL"],
        test_user=values["DCOPS_RIG_TEST_USER"],
        started_here=started,
    )
    try:
        yield cluster
    finally:
        if started and _RIG_ENV.get("DCOPS_RIG_KEEP", "") not in ("1", "yes", "true"):
            down = _script("down", 120)
            if down.returncode != 0:
                pytest.fail(f"scripts/test-cluster down failed:\n{down.stderr[-3000:]}")

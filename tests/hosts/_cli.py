"""Run ``dcops`` as a real process against the multi-host rig; read its JSON back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.rig.hosts import HostsRig

#: The SSH connect phase gives up after 3 s on the rig (faults make hosts unreachable).
BASE_ENV = {"DCOPS_SSH_CONNECT_TIMEOUT_S": "3", "OMP_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Ran:
    proc: subprocess.CompletedProcess[str]
    elapsed_s: float

    @property
    def json(self) -> Any:
        assert self.proc.stdout.strip(), f"exit {self.proc.returncode}: {self.proc.stderr[-3000:]}"
        return json.loads(self.proc.stdout)


def dcops(
    rig: HostsRig,
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout_s: float = 120,
    config: Path | None = None,
) -> Ran:
    """``dcops --config <config: the rig's> --state-db <tmp> ARGS`` (SSH connect timeout 3 s)."""
    start = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable, "-m", "dcops", "--config", str(config or rig.config),
            "--state-db", str(tmp_path / "state.db"), *args,
        ],
        capture_output=True, text=True, timeout=timeout_s, check=False, cwd="/tmp",
        env={**os.environ, **BASE_ENV, **(env or {})},
    )  # fmt: skip
    return Ran(proc, time.monotonic() - start)


def by_node(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["node"]: n for n in report["nodes"]}

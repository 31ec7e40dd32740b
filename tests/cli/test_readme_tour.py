"""Every command of the README's tour runs as written from the repository root.

The tour is read from README.md (its "A short tour" block), one command per line or
``;``-separated part, optional ``[--flag]`` left out, in order, in one fresh data dir
(so `tenant create` comes before `jobs render`). A command runs unless it needs what
this machine lacks (a Slurm cluster, real nodes, a long-running server, a journal) or
holds a placeholder for an id of the operator's own: those are listed below with the
reason, and every listed one must still be in the README. Each command exits with the
code the README and docs give it: 0, or 1 where it worked and found something
(the demo's faults); the one known failure is asserted to still fail, so its fix
removes it from here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Prefix of a command -> why it does not run here.
NOT_HERE = {
    "dcops burnin run --rack r01 --site examples/sites/site.yaml": "real nodes and Slurm",
    "dcops burnin show RUN_ID": "placeholder: a run id of the operator's",
    "dcops sweep --all --site examples/sites/site.yaml": "real nodes over SSH",
    "dcops node drain": "a configured Slurm ([slurm] node_actions)",
    "dcops node resume": "a configured Slurm ([slurm] node_actions)",
    "dcops node status": "a configured Slurm ([slurm] node_actions)",
    "dcops actions approve ID": "placeholder: an action id",
    "dcops actions deny ID": "placeholder: an action id",
    "dcops actions show ID": "placeholder: an action id",
    "dcops actions undo ID": "placeholder: an action id",
    "dcops jobs submit": "a configured Slurm (SLURM_CONF / [slurm] conf)",
    "dcops serve --port": "a server that runs until stopped",
    "dcops telemetry serve --port": "a server that runs until stopped (and NVML)",
    "journalctl -k": "the system journal",
    "dcops runbook suggest --from-sweep RUN_ID": "placeholder: a sweep run id",
    "dcops runbook status RUN": "placeholder: a runbook run id",
    "dcops runbook resume RUN": "placeholder: a runbook run id",
}

#: Prefix -> the exit code it has by design (docs): it worked and found something.
FOUND = {
    "dcops burnin run --sim examples/scenarios/demo.yaml": 1,  # the demo's 8 faults
    "dcops sweep --sim examples/scenarios/demo.yaml": 1,
    "dcops sweep --sim examples/scenarios/remediation.yaml": 1,
    "dcops telemetry collect --sim examples/scenarios/demo.yaml": 1,  # 2 nodes unreadable
    "dcops runbook run xid-79-reboot": 1,  # the reboot waits for approval
}

#: Prefix -> (exit code today, the issue that fixes it): asserted to still fail.
KNOWN_BROKEN = {
    "dcops telemetry report energy": (2, "issue 9 item 5: allocations need telemetry map-jobs"),
}


def tour_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## A short tour", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    out: list[str] = []
    for raw in block.splitlines():
        line = re.sub(r"\s+#\s.*$", "", raw).strip()
        if not line or line.startswith("#"):
            continue
        for part in line.split("; "):
            out.append(re.sub(r"\s*\[--[a-z-]+\]", "", part).strip())
    return out


def _match(table: Mapping[str, object], command: str) -> str | None:
    return next((p for p in table if command.startswith(p)), None)


def test_the_lists_match_the_readme() -> None:
    commands = tour_commands()
    assert len(commands) > 30
    for table in (NOT_HERE, FOUND, KNOWN_BROKEN):
        for prefix in table:
            assert any(c.startswith(prefix) for c in commands), f"not in README: {prefix}"


def test_readme_names_no_path_outside_the_repository() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "../shared" not in text
    assert not re.search(r"(?<![\w.])\.\./", text)  # nothing beside the clone


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_tour_command_runs_as_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("DCOPS_CONFIG", None)
    ran: list[str] = []
    wrong: list[str] = []
    reports = REPO / "reports"  # `burnin run --report reports/` writes there (git-ignored)
    had_reports = reports.exists()
    for command in tour_commands():
        if _match(NOT_HERE, command):
            continue
        found = _match(FOUND, command)
        broken = _match(KNOWN_BROKEN, command)
        want = FOUND[found] if found else KNOWN_BROKEN[broken][0] if broken else 0
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        ran.append(command)
        if done.returncode != want:
            last = (done.stderr.strip().splitlines() or [""])[-1]
            wrong.append(f"{command}: exit {done.returncode}, want {want}: {last}")
    if not had_reports:
        shutil.rmtree(reports, ignore_errors=True)
    assert not wrong, "\n".join(wrong)
    assert len(ran) >= 25

"""The one Slurm command runner (dcops.slurm.commands) with real subprocesses.

Stand-ins for Slurm's clients are small shell scripts on a private PATH; what is
checked is the runner: environment, working directory, stdin, timeout, the output
cap, a missing binary and a non-zero exit, each mapped to one dcops error.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from dcops.errors import BackendError, CommandTimeout, RemoteError, SchedulerError
from dcops.measurements import CommandResult
from dcops.remote.local import LocalRunner
from dcops.slurm.commands import SlurmCommands, first_line


def _tool(bindir: Path, name: str, body: str) -> None:
    path = bindir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def bindir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only fake Slurm clients (and the system's sh, cat, env...)."""
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", f"{d}:/usr/bin:/bin")
    return d


def test_env_slurm_conf_and_call_variables_reach_the_command(
    bindir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tool(bindir, "scontrol", 'echo "$SLURM_CONF|$EXTRA|$CALL|$INHERITED|$SLURM_JOB_ID"')
    monkeypatch.setenv("INHERITED", "yes")
    monkeypatch.setenv("SLURM_JOB_ID", "99")
    slurm = SlurmCommands(slurm_conf="/etc/s.conf", env={"EXTRA": "e"})
    assert slurm.output(["scontrol"], env={"CALL": "c"}).strip() == "/etc/s.conf|e|c|yes|99"
    dropping = SlurmCommands(slurm_conf="/etc/s.conf", drop_inherited_slurm=True)
    assert dropping.output(["scontrol"]).strip() == "/etc/s.conf|||yes|"


def test_clean_env_passes_only_the_given_variables(bindir: Path) -> None:
    _tool(bindir, "sbatch", "env | sort")
    path = os.environ["PATH"]
    out = SlurmCommands().output(["sbatch"], env={"PATH": path, "USER": "t"}, clean_env=True)
    names = {line.split("=", 1)[0] for line in out.splitlines()}
    # sh itself may add PWD/SHLVL/_; nothing of ours gets through.
    assert {"PATH", "USER"} <= names <= {"PATH", "USER", "PWD", "SHLVL", "_"}


def test_cwd_and_stdin(bindir: Path, tmp_path: Path) -> None:
    _tool(bindir, "sbatch", 'pwd; cat; echo "<-stdin"')
    work = tmp_path / "work"
    work.mkdir()
    out = SlurmCommands().output(["sbatch"], cwd=str(work), stdin="#!/bin/sh\nhostname\n")
    lines = out.splitlines()
    assert Path(lines[0]).resolve() == work.resolve()
    assert lines[1:] == ["#!/bin/sh", "hostname", "<-stdin"]


def test_a_missing_cwd_is_a_backend_error_not_command_not_found(bindir: Path) -> None:
    _tool(bindir, "sbatch", "echo hi")
    with pytest.raises(RemoteError, match="no such directory"):
        SlurmCommands().run(["sbatch"], cwd="/nonexistent/dcops-test")


def test_timeout_kills_the_command_and_raises_command_timeout(bindir: Path) -> None:
    _tool(bindir, "squeue", "sleep 30")
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"squeue did not finish within 0\.3s") as info:
        SlurmCommands(timeout_s=0.3).run(["squeue", "--json"])
    assert time.monotonic() - start < 10
    assert isinstance(info.value, BackendError) and "\n" not in str(info.value)


def test_a_missing_binary_is_one_scheduler_error_line(
    bindir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(bindir))  # this host's real Slurm clients out of reach
    with pytest.raises(SchedulerError) as info:
        SlurmCommands().run(["sacct", "--json"])
    message = str(info.value)
    assert message == "sacct: command not found (is the Slurm client installed?)"


def test_exit_127_of_the_job_itself_is_a_result_not_a_missing_client(bindir: Path) -> None:
    """srun passes on its task's exit code: a worker's 'not found' does not blame srun."""
    _tool(bindir, "srun", 'echo "python3: command not found" >&2; exit 127')
    result = SlurmCommands().run(["srun", "python3"])
    assert result.returncode == 127 and "python3" in result.stderr


def test_non_zero_exit_is_a_result_from_run_and_an_error_from_output(bindir: Path) -> None:
    _tool(bindir, "scontrol", 'echo "scontrol: error: Invalid node name" >&2; exit 1')
    slurm = SlurmCommands()
    result = slurm.run(["scontrol", "show", "node", "x"])
    assert result.returncode == 1 and not result.ok
    with pytest.raises(SchedulerError, match=r"scontrol show node exited 1: .*Invalid node name"):
        slurm.output(["scontrol", "show", "node", "x"])


def test_json_over_the_old_1_mib_cap_is_read_whole(bindir: Path, tmp_path: Path) -> None:
    doc = {"jobs": [{"job_id": i, "name": "x" * 200} for i in range(20000)]}
    data = tmp_path / "squeue.json"
    data.write_text(json.dumps(doc))
    assert data.stat().st_size > 4 * 1024 * 1024
    _tool(bindir, "squeue", f"cat {data}")
    assert SlurmCommands().json(["squeue", "--json"]) == doc


def test_output_past_the_cap_is_an_error_never_a_cut_document(bindir: Path, tmp_path: Path) -> None:
    data = tmp_path / "sacct.json"
    data.write_text(json.dumps({"jobs": [{"job_id": i} for i in range(5000)]}))
    _tool(bindir, "sacct", f"cat {data}")
    slurm = SlurmCommands(max_output_bytes=10_000)
    with pytest.raises(SchedulerError, match="sacct: output passed the runner's cap"):
        slurm.json(["sacct", "--json"])
    with pytest.raises(SchedulerError, match="cap"):
        slurm.run(["sacct", "--json"])


def test_garbage_from_a_json_command_is_a_scheduler_error(bindir: Path) -> None:
    _tool(bindir, "sinfo", "echo '<html>'")
    with pytest.raises(SchedulerError, match="sinfo --json printed no JSON"):
        SlurmCommands().json(["sinfo", "--json"])


class _Remote:
    """A RemoteRunner (not local): records what would run on the head node."""

    def __init__(self, answer: CommandResult | None = None) -> None:
        self.calls: list[tuple[str, tuple[str, ...], float, str | None]] = []
        self.answer = answer

    def run(
        self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
    ) -> CommandResult:
        self.calls.append((host, tuple(argv), timeout_s, stdin))
        return self.answer or CommandResult(host, tuple(argv), 0, "{}", "", 0.0)


def test_through_a_remote_runner_env_and_cwd_travel_as_env_argv() -> None:
    remote = _Remote()
    slurm = SlurmCommands(runner=remote, host="head", slurm_conf="/etc/s.conf", timeout_s=7)
    slurm.run(["sbatch", "--parsable"], env={"USER": "t"}, clean_env=True, cwd="/w", stdin="s")
    host, argv, timeout_s, stdin = remote.calls[-1]
    assert (host, timeout_s, stdin) == ("head", 7, "s")
    assert argv == (
        "env",
        "-i",
        "-C",
        "/w",
        "SLURM_CONF=/etc/s.conf",
        "USER=t",
        "sbatch",
        "--parsable",
    )
    SlurmCommands(runner=remote, host="head").run(["sinfo"], timeout_s=3)
    assert len(remote.calls) == 2
    _, argv, timeout_s, _ = remote.calls[1]
    assert argv == ("sinfo",) and timeout_s == 3
    with pytest.raises(ValueError, match="bad environment variable name"):
        slurm.run(["sinfo"], env={"A;rm": "1"})


def test_remote_missing_client_and_remote_cut_output() -> None:
    gone = _Remote(
        CommandResult("head", (), 127, "", "env: 'scontrol': No such file or directory", 0)
    )
    with pytest.raises(SchedulerError, match=r"scontrol: env: 'scontrol'.* on head \(is the Slurm"):
        SlurmCommands(runner=gone, host="head").run(["scontrol", "ping"])
    cut = _Remote(CommandResult("head", (), 0, '{"jobs": [', "", 0, truncated=True))
    with pytest.raises(SchedulerError, match="remote runner's max_output_bytes"):
        SlurmCommands(runner=cut, host="head").json(["squeue", "--json"])


def test_local_runner_env_cwd_and_per_call_cap(tmp_path: Path) -> None:
    runner = LocalRunner(max_output_bytes=10)
    res = runner.run(
        "localhost",
        ["/bin/sh", "-c", 'echo "$ONLY"; pwd'],
        timeout_s=10,
        env={"ONLY": "x" * 50},
        cwd=str(tmp_path),
        max_output_bytes=1000,
    )
    assert res.stdout.splitlines() == ["x" * 50, str(tmp_path)] and not res.truncated
    small = runner.run("localhost", ["/bin/sh", "-c", "echo 0123456789abcdef"], timeout_s=10)
    assert small.truncated and small.stdout.startswith("0123456789\n[dcops: output truncated")


def test_first_line() -> None:
    assert first_line("", "  \n second\n") == "second"
    assert first_line("") == "no output"

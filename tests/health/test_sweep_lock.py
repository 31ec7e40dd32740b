"""The sweep lock across real processes: busy while held, recovered after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dcops.errors import BusyError, ExitCode
from health.lock import RunLock

pytestmark = pytest.mark.timeout(30)

HOLDER = """
import sys, time
from health.lock import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(60)
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_is_busy_then_recovers_after_a_kill(tmp_path: Path) -> None:
    path = tmp_path / "sweep.lock"
    proc = _holder(path)
    try:
        with pytest.raises(BusyError) as info:
            RunLock(path).acquire()
        assert info.value.exit_code == ExitCode.BUSY
        assert f"pid {proc.pid}" in str(info.value) and "started 20" in str(info.value)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # the kernel dropped the flock; the file still holds the dead run's record
    with RunLock(path) as lock:
        assert lock.recovered is not None and lock.recovered["pid"] == proc.pid
    # a clean release leaves an empty file: nothing to recover next time
    assert path.read_text() == ""
    with RunLock(path) as lock:
        assert lock.recovered is None


def test_leftover_garbage_file_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "sweep.lock"
    path.write_text("not json at all")
    with RunLock(path) as lock:
        assert lock.recovered == {"raw": "not json at all"}
        assert lock.held
    assert not lock.held


def test_same_process_twice_is_busy(tmp_path: Path) -> None:
    path = tmp_path / "sweep.lock"
    with RunLock(path), pytest.raises(BusyError, match=f"pid {os.getpid()}"):
        RunLock(path).acquire()


def test_cli_exits_4_when_another_sweep_holds_the_lock(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = _holder(data / "sweep.lock")
    try:
        env = {**os.environ, "DCOPS_DATA_DIR": str(data)}
        code = (
            "from dcops.cli import main as m\n"
            "m.SUBCOMMANDS['sweep'] = ('dcops.cli.sweep', 'sweep', 'Health sweeps.')\n"
            "m.main(['sweep', '--local', '--json'])\n"
        )
        run = subprocess.run(
            [sys.executable, "-c", code],
            env=env, capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert run.returncode == ExitCode.BUSY, run.stderr
    assert run.stderr.startswith(f"dcops: error: another sweep is running: pid {proc.pid}")
    assert run.stdout == ""

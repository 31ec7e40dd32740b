"""LocalRunner: real subprocesses on this machine."""

from __future__ import annotations

import sys
import time

import pytest

from dcops.errors import CommandTimeout
from dcops.ports import RemoteRunner
from dcops.remote.local import LocalRunner
from tests.rig.ssh import processes_with_argv

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def runner() -> LocalRunner:
    return LocalRunner()


def test_is_a_remote_runner(runner: LocalRunner) -> None:
    assert isinstance(runner, RemoteRunner)


def test_echo(runner: LocalRunner) -> None:
    result = runner.run("here", ["echo", "hello", "world"], timeout_s=5)
    assert result.ok
    assert result.stdout == "hello world\n"
    assert result.stderr == ""
    assert result.host == "here"
    assert result.argv == ("echo", "hello", "world")
    assert result.duration_s >= 0


def test_exit_code_and_stderr(runner: LocalRunner) -> None:
    result = runner.run("here", ["sh", "-c", "echo out; echo err >&2; exit 3"], timeout_s=5)
    assert result.returncode == 3
    assert not result.ok
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_argv_is_not_shell_interpreted(runner: LocalRunner) -> None:
    tricky = ["a b", "it's", '"q"', "; touch /nonexistent/x", "$HOME", "`id`", "*"]
    result = runner.run("here", ["printf", "%s\\n", *tricky], timeout_s=5)
    assert result.stdout.splitlines() == tricky


def test_stdin(runner: LocalRunner) -> None:
    result = runner.run("here", ["cat"], timeout_s=5, stdin="line 1\nünïcode\n")
    assert result.stdout == "line 1\nünïcode\n"


def test_large_stdin_and_output_do_not_deadlock() -> None:
    data = "x" * 3_000_000
    result = LocalRunner(max_output_bytes=4_000_000).run("here", ["cat"], timeout_s=10, stdin=data)
    assert len(result.stdout) == len(data)


def test_no_stdin_means_eof(runner: LocalRunner) -> None:
    result = runner.run("here", ["cat"], timeout_s=5)
    assert result.ok
    assert result.stdout == ""


def test_missing_command_is_127(runner: LocalRunner) -> None:
    result = runner.run("here", ["dcops-no-such-command-xyz"], timeout_s=5)
    assert result.returncode == 127
    assert "command not found" in result.stderr


def test_undecodable_output_is_replaced(runner: LocalRunner) -> None:
    code = "import sys; sys.stdout.buffer.write(b'ok\\xff\\xfe\\n')"
    result = runner.run("here", [sys.executable, "-c", code], timeout_s=10)
    assert result.stdout == "ok\ufffd\ufffd\n"


def test_output_is_bounded() -> None:
    runner = LocalRunner(max_output_bytes=1000)
    code = "import sys; sys.stdout.write('y' * 500000)"
    result = runner.run("here", [sys.executable, "-c", code], timeout_s=10)
    assert result.ok
    assert result.stdout.startswith("y" * 1000)
    assert "499000 more bytes not captured" in result.stdout
    assert len(result.stdout) < 1100


def test_timeout_kills_the_process_group(runner: LocalRunner) -> None:
    marker = "59.4321"
    start = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        # the shell's background child is in the same process group: it dies too
        runner.run("here", ["sh", "-c", f"sleep {marker} & sleep {marker}; wait"], timeout_s=0.5)
    elapsed = time.monotonic() - start
    assert elapsed < 3
    assert info.value.host == "here"
    assert "0.5s" in str(info.value)
    deadline = time.monotonic() + 3
    while processes_with_argv("sleep", marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with_argv("sleep", marker) == []


def test_signal_death_is_negative(runner: LocalRunner) -> None:
    result = runner.run("here", ["sh", "-c", "kill -9 $$"], timeout_s=5)
    assert result.returncode == -9


@pytest.mark.parametrize("bad", ["echo hi", [], ["echo", 3]])
def test_bad_argv_is_refused(runner: LocalRunner, bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        runner.run("here", bad, timeout_s=5)  # type: ignore[arg-type]  # deliberately not argv

"""SshRunner against a real sshd on loopback (tests/rig/ssh.py), with real paramiko."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcops.errors import CommandTimeout, ConnectError, HostKeyError
from dcops.ports import RemoteRunner
from dcops.remote.ssh import SshRunner, SshSettings
from tests.rig.ssh import SshdRig, processes_with_argv

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(60)]

NODE = "sim-r01-t05"


@pytest.fixture
def runner(sshd_rig: SshdRig) -> Iterator[SshRunner]:
    with SshRunner(sshd_rig.settings) as runner:
        yield runner


def test_is_a_remote_runner(runner: SshRunner) -> None:
    assert isinstance(runner, RemoteRunner)


def test_echo(runner: SshRunner) -> None:
    result = runner.run(NODE, ["echo", "hello", "world"], timeout_s=10)
    assert result.ok
    assert (result.host, result.argv) == (NODE, ("echo", "hello", "world"))
    assert result.stdout == "hello world\n"
    assert result.stderr == ""


def test_direct_address_without_ssh_config(sshd_rig: SshdRig) -> None:
    settings = sshd_rig.settings_with(ssh_config=None)
    with SshRunner(settings) as runner:
        result = runner.run("127.0.0.1", ["id", "-un"], timeout_s=10)
    assert result.stdout.strip() == sshd_rig.user


def test_exit_code_stdout_stderr(runner: SshRunner) -> None:
    result = runner.run(NODE, ["sh", "-c", "echo out; echo err >&2; exit 7"], timeout_s=10)
    assert result.returncode == 7
    assert (result.stdout, result.stderr) == ("out\n", "err\n")


def test_missing_command_is_127(runner: SshRunner) -> None:
    result = runner.run(NODE, ["dcops-no-such-command-xyz"], timeout_s=10)
    assert result.returncode == 127


def test_stdin(runner: SshRunner) -> None:
    text = "first line\nsecond ünïcode line\n" * 1000
    result = runner.run(NODE, ["cat"], timeout_s=10, stdin=text)
    assert result.stdout == text
    assert runner.run(NODE, ["cat"], timeout_s=10).stdout == ""  # no stdin: EOF at once


def test_argv_is_not_shell_interpreted(runner: SshRunner, tmp_path: Path) -> None:
    victim = tmp_path / "must-not-exist"
    tricky = [
        "two words",
        "it's",
        '"double"',
        f"; touch {victim}",
        f"$(touch {victim})",
        f"`touch {victim}`",
        "$HOME",
        "*",
        "a\nb",
        "",
        "--",
    ]
    result = runner.run(NODE, ["printf", "[%s]\\n", *tricky], timeout_s=10)
    assert result.ok
    assert result.stdout == "".join(f"[{arg}]\n" for arg in tricky)
    assert not victim.exists()


def test_binary_output_is_decoded_safely(runner: SshRunner) -> None:
    result = runner.run(NODE, ["printf", "ok\\377\\376\\n"], timeout_s=10)
    assert result.stdout == "ok\ufffd\ufffd\n"


def test_output_is_bounded(sshd_rig: SshdRig) -> None:
    with SshRunner(sshd_rig.settings_with(max_output_bytes=1000)) as runner:
        result = runner.run(NODE, ["head", "-c", "3000000", "/dev/zero"], timeout_s=20)
    assert result.ok
    assert len(result.stdout) < 1100
    assert "2999000 more bytes not captured" in result.stdout


def test_hung_command_times_out_and_is_killed(runner: SshRunner) -> None:
    marker = "61.2345"
    start = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        runner.run(NODE, ["sleep", marker], timeout_s=1.0)
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 2.0
    assert info.value.host == NODE
    # the remote `timeout` wrapper kills it one grace second after our deadline
    deadline = time.monotonic() + 5
    while processes_with_argv("sleep", marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with_argv("sleep", marker) == []
    # and the connection is still good for the next command
    assert runner.run(NODE, ["true"], timeout_s=10).ok


def test_refused_connection_is_connect_error_quickly(runner: SshRunner) -> None:
    start = time.monotonic()
    with pytest.raises(ConnectError, match="connection refused"):
        runner.run("closed-r01-t01", ["true"], timeout_s=10)
    assert time.monotonic() - start < 1.0


def test_silent_server_is_connect_error_within_connect_timeout(sshd_rig: SshdRig) -> None:
    import socket

    with socket.socket() as silent:  # accepts TCP (kernel backlog) but never speaks SSH
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        settings = sshd_rig.settings_with(ssh_config=None, port=port, connect_timeout_s=0.5)
        with SshRunner(settings) as runner:
            start = time.monotonic()
            with pytest.raises(ConnectError):
                runner.run("127.0.0.1", ["true"], timeout_s=10)
            assert time.monotonic() - start < 2.0


@pytest.mark.parametrize(
    ("node", "why"), [("badkey-r01-t01", "CHANGED"), ("nokey-r01-t01", "not in")]
)
def test_host_key_mismatch_or_unknown_is_refused(
    runner: SshRunner, tmp_path: Path, node: str, why: str
) -> None:
    victim = tmp_path / "ran"
    with pytest.raises(HostKeyError, match=why) as info:
        runner.run(node, ["touch", str(victim)], timeout_s=10)
    assert not victim.exists()
    assert info.value.host == node
    assert "BEGIN" not in str(info.value)  # never key material


def test_known_hosts_with_another_key(sshd_rig: SshdRig, tmp_path: Path) -> None:
    other = (sshd_rig.workdir / "other_host_key.pub").read_text().split()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd_rig.port} {other[0]} {other[1]}\n")
    victim = tmp_path / "ran"
    settings = sshd_rig.settings_with(known_hosts=str(known))
    with SshRunner(settings) as runner, pytest.raises(HostKeyError):
        runner.run(NODE, ["touch", str(victim)], timeout_s=10)
    assert not victim.exists()


def test_host_key_alias(runner: SshRunner) -> None:
    assert runner.resolve("keyed-r02-t01").host_key_name == "dcops-rig"
    assert runner.run("keyed-r02-t01", ["true"], timeout_s=10).ok


def test_wrong_identity_is_connect_error(sshd_rig: SshdRig, tmp_path: Path) -> None:
    key = tmp_path / "stranger"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30
    )
    settings = SshSettings(
        port=sshd_rig.port, identity_files=(str(key),), known_hosts=str(sshd_rig.known_hosts)
    )
    with SshRunner(settings) as runner, pytest.raises(ConnectError, match="authentication"):
        runner.run("127.0.0.1", ["true"], timeout_s=10)


def test_connection_reuse_one_transport(runner: SshRunner) -> None:
    seen = set()
    for _ in range(20):
        result = runner.run(NODE, ["sh", "-c", "echo $SSH_CONNECTION"], timeout_s=10)
        seen.add(result.stdout.split()[1])  # the client's source port
    assert len(seen) == 1
    assert runner.connections_opened == 1
    assert runner.open_connections == 1


def test_concurrent_commands_share_the_connection(runner: SshRunner) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda i: runner.run(NODE, ["echo", str(i)], timeout_s=10), range(8))
        )
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(8)]
    assert runner.connections_opened == 1


def test_reconnects_after_the_server_dropped_it(sshd_rig: SshdRig, runner: SshRunner) -> None:
    first = runner.run(NODE, ["sh", "-c", "echo $SSH_CONNECTION"], timeout_s=10).stdout
    sshd_rig.drop_connections()
    time.sleep(0.2)
    second = runner.run(NODE, ["sh", "-c", "echo $SSH_CONNECTION"], timeout_s=10).stdout
    assert first.split()[1] != second.split()[1]
    assert runner.connections_opened == 2


def test_pool_keeps_at_most_max_connections(sshd_rig: SshdRig) -> None:
    with SshRunner(sshd_rig.settings_with(max_connections=3)) as runner:
        for i in range(6):
            assert runner.run(f"node-{i}", ["true"], timeout_s=10).ok
        assert runner.connections_opened == 6
        assert runner.open_connections == 3


def test_openssh_client_agrees_with_the_rig_files(sshd_rig: SshdRig) -> None:
    """The same ssh_config / known_hosts work for OpenSSH itself (HostKeyAlias semantics)."""
    ssh = shutil.which("ssh")
    if ssh is None:
        pytest.skip("OpenSSH client not installed")
    base = [ssh, "-F", str(sshd_rig.ssh_config)]
    ok = subprocess.run(
        [*base, "keyed-r01-t01", "echo", "hi"], check=False, capture_output=True, timeout=20
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [*base, "badkey-r01-t01", "true"], check=False, capture_output=True, timeout=20
    )
    assert bad.returncode == 255
    assert b"HOST IDENTIFICATION HAS CHANGED" in bad.stderr

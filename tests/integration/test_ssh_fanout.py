"""run_many over ~50 node names that all lead to the real sshd rig."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from dcops.errors import CommandTimeout, ConnectError
from dcops.measurements import CommandResult
from dcops.remote import run_many
from dcops.remote.ssh import SshRunner
from tests.rig.ssh import SshdRig, processes_with_argv

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(60)]

NODES = [f"sim-r{rack:02d}-t{tray:02d}" for rack in (1, 2, 3) for tray in range(1, 17)]  # 48


class OneHangs:
    """The real SSH runner, except one host runs a command that never ends."""

    def __init__(self, inner: SshRunner, host: str, argv: Sequence[str]) -> None:
        self.inner, self.host, self.argv = inner, host, list(argv)

    def run(
        self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
    ) -> CommandResult:
        if host == self.host:
            argv = self.argv
        return self.inner.run(host, argv, timeout_s=timeout_s, stdin=stdin)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP but never speaks SSH (a wedged node)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@pytest.fixture
def runner(sshd_rig: SshdRig, silent_port: int, tmp_path: Path) -> Iterator[SshRunner]:
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host silent-*\n    HostName 127.0.0.1\n    Port {silent_port}\n\n"
        + sshd_rig.ssh_config.read_text()
    )
    with SshRunner(sshd_rig.settings_with(ssh_config=str(config))) as runner:
        yield runner


def test_fanout_all_ok(runner: SshRunner) -> None:
    seen: list[str] = []
    start = time.monotonic()
    results = run_many(
        runner,
        NODES,
        ["echo", "ok"],
        timeout_s=20,
        concurrency=64,
        on_result=lambda h, _: seen.append(h),
    )
    elapsed = time.monotonic() - start
    assert list(results) == NODES
    assert sorted(seen) == sorted(NODES)
    bad = {h: r for h, r in results.items() if not (isinstance(r, CommandResult) and r.ok)}
    assert bad == {}
    assert runner.connections_opened == len(NODES)
    print(f"\n{len(NODES)} hosts over real SSH in {elapsed:.2f}s")
    # a second sweep reuses every connection
    start = time.monotonic()
    again = run_many(runner, NODES, ["echo", "ok"], timeout_s=20, concurrency=64)
    print(f"second sweep (pooled connections) in {time.monotonic() - start:.2f}s")
    assert all(isinstance(r, CommandResult) and r.ok for r in again.values())
    assert runner.connections_opened == len(NODES)


def test_fanout_deadline_holds_with_hung_hosts(runner: SshRunner) -> None:
    marker = "62.3456"
    hung = NODES[7]
    hosts = [*NODES, "silent-r09-t01", "closed-r09-t02"]
    fanout = OneHangs(runner, hung, ["sleep", marker])
    deadline_s = 4.0
    start = time.monotonic()
    results = run_many(
        fanout, hosts, ["echo", "ok"], timeout_s=30, concurrency=64, deadline_s=deadline_s
    )
    elapsed = time.monotonic() - start
    assert elapsed < deadline_s + 0.5
    assert list(results) == hosts
    assert isinstance(results[hung], CommandTimeout)
    assert isinstance(results["silent-r09-t01"], CommandTimeout)  # connect_timeout_s is 5 s
    assert isinstance(results["closed-r09-t02"], ConnectError)
    healthy = [h for h in NODES if h != hung]
    for h in healthy:
        answered = results[h]
        assert isinstance(answered, CommandResult) and answered.ok, h
    # the hung remote command was cut to the deadline and is killed soon after it
    stop = time.monotonic() + 6
    while processes_with_argv("sleep", marker) and time.monotonic() < stop:
        time.sleep(0.1)
    assert processes_with_argv("sleep", marker) == []

"""run_many: concurrency bound, per-host results, a deadline that holds with hung hosts."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence, Set
from typing import TypedDict

import pytest

from dcops.errors import CommandTimeout, ConnectError, RemoteError
from dcops.measurements import CommandResult
from dcops.remote import run_many
from dcops.remote.local import LocalRunner

pytestmark = pytest.mark.timeout(30)


class ScriptedRunner:
    """A runner whose hosts answer, fail or hang as told; counts concurrency."""

    def __init__(self, hang: Set[str] = frozenset(), fail: Set[str] = frozenset()) -> None:
        self.hang, self.fail = hang, fail
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.timeouts: dict[str, float] = {}
        self.release = threading.Event()

    def run(
        self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
    ) -> CommandResult:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.timeouts[host] = timeout_s
        try:
            if host in self.hang:
                self.release.wait(60)  # ignores its timeout: the deadline must still hold
            else:
                time.sleep(0.01)
            if host in self.fail:
                raise ConnectError(host, "connection refused")
            if host == "buggy":
                raise KeyError("oops")
            return CommandResult(host, tuple(argv), 0, f"{host}\n", "", 0.01)
        finally:
            with self.lock:
                self.active -= 1


def test_results_in_host_order_with_errors() -> None:
    runner = ScriptedRunner(fail={"n3"})
    hosts = [f"n{i}" for i in range(10)]
    seen: list[str] = []
    results = run_many(
        runner, hosts, ["true"], timeout_s=5, concurrency=4, on_result=lambda h, _: seen.append(h)
    )
    assert list(results) == hosts
    assert sorted(seen) == sorted(hosts)
    assert isinstance(results["n3"], ConnectError)
    ok = results["n0"]
    assert isinstance(ok, CommandResult)
    assert ok.stdout == "n0\n"
    assert runner.peak <= 4


def test_concurrency_is_bounded() -> None:
    runner = ScriptedRunner()
    run_many(runner, [f"n{i}" for i in range(40)], ["true"], timeout_s=5, concurrency=7)
    assert 1 < runner.peak <= 7


def test_duplicates_run_once_and_empty_is_empty() -> None:
    runner = ScriptedRunner()
    assert list(run_many(runner, ["a", "b", "a"], ["true"], timeout_s=5)) == ["a", "b"]
    assert run_many(runner, [], ["true"], timeout_s=5) == {}


def test_deadline_holds_when_hosts_hang() -> None:
    runner = ScriptedRunner(hang={"n1", "n5"})
    hosts = [f"n{i}" for i in range(20)]
    got: dict[str, object] = {}
    start = time.monotonic()
    results = run_many(
        runner,
        hosts,
        ["true"],
        timeout_s=30,
        concurrency=2,
        deadline_s=0.6,
        on_result=got.setdefault,
    )
    elapsed = time.monotonic() - start
    runner.release.set()
    assert 0.55 < elapsed < 1.5
    assert list(results) == hosts
    for host in ("n1", "n5"):
        assert isinstance(results[host], CommandTimeout)
        assert "deadline" in str(results[host])
    assert got.keys() == results.keys()
    # per-host timeouts are cut to what is left of the deadline
    assert all(t <= 0.6 for t in runner.timeouts.values())


def test_unexpected_runner_error_becomes_remote_error(caplog: pytest.LogCaptureFixture) -> None:
    results = run_many(ScriptedRunner(), ["buggy", "fine"], ["true"], timeout_s=5)
    assert isinstance(results["buggy"], RemoteError)
    assert isinstance(results["buggy"].__cause__, KeyError)
    assert isinstance(results["fine"], CommandResult)
    assert "failed unexpectedly" in caplog.text


def test_with_local_runner_real_processes() -> None:
    hosts = [f"local-{i}" for i in range(12)]
    start = time.monotonic()
    results = run_many(LocalRunner(), hosts, ["sleep", "0.2"], timeout_s=5, concurrency=12)
    assert time.monotonic() - start < 2.0  # in parallel, not 12 x 0.2 s
    assert all(isinstance(r, CommandResult) and r.ok for r in results.values())


class _Limits(TypedDict, total=False):
    """run_many's limits, each one given or left at its default."""

    timeout_s: float
    concurrency: int
    deadline_s: float


@pytest.mark.parametrize(("kwargs"), [{"concurrency": 0}, {"timeout_s": 0}, {"deadline_s": -1.0}])
def test_bad_limits(kwargs: _Limits) -> None:
    args: _Limits = {"timeout_s": 5, **kwargs}
    with pytest.raises(ValueError):
        run_many(ScriptedRunner(), ["a"], ["true"], **args)

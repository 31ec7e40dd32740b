"""A long wait says what it waits for: the nodes without an answer and the time left."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcops.cli.waiting import StageWatch, Waiting

REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_names_the_pending_node_and_the_time_left() -> None:
    clock = Clock()
    w = Waiting(["a", "b"], timeout_s=60, concurrency=64, quiet_s=3, clock=clock)
    clock.now += 1
    assert w.line() == ""  # results still flowing: nothing to say
    w.done("a")
    clock.now += 14  # 15 s in, 14 s since the last answer
    assert w.line() == "at most 45 s left, waiting for b (no answer yet)"
    w.done("b")
    assert w.line() == ""


def test_many_nodes_are_counted_waves_and_deadline_bound_the_time() -> None:
    clock = Clock()
    nodes = [f"n{i}" for i in range(10)]
    w = Waiting(nodes, timeout_s=10, concurrency=4, quiet_s=0, clock=clock)  # 3 waves
    assert w.line() == (
        "at most 30 s left, waiting for 10 nodes: n0, n1, n2 and 7 more (no answer yet)"
    )
    capped = Waiting(nodes, timeout_s=10, concurrency=4, deadline_s=12, quiet_s=0, clock=clock)
    clock.now += 20
    assert capped.line().startswith("at most 0 s left,")


def _stderr_on_a_terminal(tmp_path: Path, args: list[str]) -> str:
    """The stderr of a real ``dcops ARGS`` on a pseudo-terminal, escape codes removed."""
    import pty

    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "d"), "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("NO_COLOR", None)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dcops", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    end = time.monotonic() + 50
    while time.monotonic() < end:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(leader)
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", seen.decode("utf-8", "replace"))


DEMO = "examples/scenarios/demo.yaml"


@pytest.mark.timeout(60)
def test_sweep_on_a_terminal_shows_the_hung_node(tmp_path: Path) -> None:
    """The demo's hung node: the stderr of a real ``dcops sweep --sim`` on a pseudo-terminal."""
    text = _stderr_on_a_terminal(tmp_path, ["sweep", "--sim", DEMO, "--timeout", "5"])
    assert re.search(r"at most [0-2] s left, waiting for sim-r02-t18 \(no answer yet\)", text)


@pytest.mark.timeout(60)
def test_burnin_on_a_terminal_shows_the_hung_node(tmp_path: Path) -> None:
    text = _stderr_on_a_terminal(
        tmp_path, ["burnin", "run", "--sim", DEMO, "--probe-timeout", "5", "--no-collectives"]
    )
    assert re.search(r"probe: at most [0-2] s left, waiting for sim-r02-t18 \(no answer", text)


@pytest.mark.timeout(60)
def test_collect_once_on_a_terminal_shows_the_hung_node(tmp_path: Path) -> None:
    text = _stderr_on_a_terminal(tmp_path, ["telemetry", "collect", "--sim", DEMO, "--once"])
    assert "sample" in text
    assert re.search(r"at most \d+ s left, waiting for sim-r02-t18 \(no answer yet\)", text)


def test_a_burnin_stage_watch_names_its_stage() -> None:
    clock = Clock()
    watch = StageWatch(quiet_s=3, clock=clock)
    assert watch.line() == ""
    answered = watch("probe", ["a", "b"], 10, 64)
    answered("a")
    clock.now += 4
    assert watch.line() == "probe: at most 6 s left, waiting for b (no answer yet)"
    done = watch("gemm", ["a"], 100, 64)  # the next stage replaces the last one's wait
    assert watch.line() == ""
    clock.now += 5
    assert watch.line() == "gemm: at most 95 s left, waiting for a (no answer yet)"
    done("a")
    assert watch.line() == ""

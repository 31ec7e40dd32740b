"""run_in_threads: a batch of disjoint groups through a one-group ``run``, all at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from dcops.collective_batch import check_disjoint, run_in_threads
from dcops.errors import BackendError, CommandTimeout
from dcops.measurements import CollectiveResult, GpuRef

A = [GpuRef("n1", 0), GpuRef("n1", 1)]
B = [GpuRef("n2", 0), GpuRef("n2", 1)]
C = [GpuRef("n3", 0)]


class Launcher:
    """Each run sleeps 0.3 s; counts how many run at the same time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def run(
        self,
        op: str,
        members: Sequence[GpuRef],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> CollectiveResult:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.3)
            if members[0].node == "n2":
                raise BackendError("NCCL: unhandled system error")
            if members[0].node == "n3":
                raise CommandTimeout("n3", "hung")
            return CollectiveResult(op, tuple(members), (), "test")
        finally:
            with self.lock:
                self.running -= 1


def test_groups_run_at_once_and_fail_alone() -> None:
    la = Launcher()
    start = time.monotonic()
    out = run_in_threads(la.run, "all_reduce", [A, B, C], sizes_bytes=[4096], timeout_s=5.0)
    wall = time.monotonic() - start
    assert la.peak == 3 and wall < 0.8  # concurrent, not 3 x 0.3 s in series
    assert [o.members for o in out] == [tuple(A), tuple(B), tuple(C)]
    assert out[0].result is not None and out[0].error is None
    assert 0.25 < out[0].elapsed_s < 0.8 and out[0].gpu_seconds == pytest.approx(
        2 * out[0].elapsed_s
    )
    assert isinstance(out[1].error, BackendError) and out[1].result is None
    # a hung group is charged its whole timeout
    assert isinstance(out[2].error, CommandTimeout) and out[2].elapsed_s >= 5.0


def test_groups_must_be_disjoint_and_non_empty() -> None:
    with pytest.raises(ValueError, match="disjoint"):
        check_disjoint([A, [A[0]]])
    with pytest.raises(ValueError, match="at least one"):
        check_disjoint([A, []])
    assert run_in_threads(Launcher().run, "all_reduce", [], sizes_bytes=[1]) == []

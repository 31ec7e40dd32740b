"""Helpers for :meth:`dcops.ports.CollectiveEngine.run_batch` (concurrent disjoint groups).

- :func:`check_disjoint` validates a batch before anything starts;
- :func:`run_in_threads` runs a batch through an adapter's one-group ``run``
  in threads, one per group: for launchers whose every ``run`` is its own
  independent launch (a Slurm job step, an SSH fan-out), so the groups run
  as concurrent steps. Each group's ``elapsed_s`` is its wall-clock time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from dcops.errors import CommandTimeout, DcopsError
from dcops.measurements import CollectiveOutcome, CollectiveResult, GpuRef

#: run(op, members, sizes_bytes=..., iterations=..., timeout_s=...) of one group.
RunOne = Callable[..., CollectiveResult]


def check_disjoint(groups: Sequence[Sequence[GpuRef]]) -> None:
    """``ValueError`` unless every group is non-empty and no GPU is in two groups."""
    seen: set[GpuRef] = set()
    for members in groups:
        if not members:
            raise ValueError("a collective needs at least one member")
        for g in members:
            if g in seen:
                raise ValueError(f"groups of a batch must be disjoint: {g} is in two")
            seen.add(g)


def run_in_threads(
    run: RunOne,
    op: str,
    groups: Sequence[Sequence[GpuRef]],
    *,
    sizes_bytes: Sequence[int],
    iterations: int = 5,
    timeout_s: float | None = None,
) -> list[CollectiveOutcome]:
    """Every group through ``run`` at once (a thread each); outcomes in ``groups`` order."""
    check_disjoint(groups)

    def one(members: Sequence[GpuRef]) -> CollectiveOutcome:
        start = time.monotonic()
        try:
            result = run(
                op, members, sizes_bytes=sizes_bytes, iterations=iterations, timeout_s=timeout_s
            )
        except DcopsError as exc:
            held = time.monotonic() - start
            if isinstance(exc, CommandTimeout) and timeout_s is not None:
                held = max(held, float(timeout_s))
            return CollectiveOutcome(tuple(members), None, exc, held)
        held = result.elapsed_s if result.elapsed_s is not None else time.monotonic() - start
        return CollectiveOutcome(tuple(members), result, None, held)

    if not groups:
        return []
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        return list(pool.map(one, groups))


class BatchInThreads:
    """``run_batch`` for an engine whose ``run`` launches one group: each group in a thread.

    For launchers whose groups are separate processes anyway (Slurm job steps, SSH
    fan-outs): running them at once is running ``run`` concurrently.
    """

    def run(
        self,
        op: str,
        members: Sequence[GpuRef],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> CollectiveResult:
        raise NotImplementedError

    def run_batch(
        self,
        op: str,
        groups: Sequence[Sequence[GpuRef]],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> list[CollectiveOutcome]:
        """Every group as its own launch, all at once."""
        return run_in_threads(
            self.run, op, groups, sizes_bytes=sizes_bytes, iterations=iterations,
            timeout_s=timeout_s,
        )  # fmt: skip

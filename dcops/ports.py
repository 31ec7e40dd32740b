"""The narrow interfaces (ports) through which dcops reaches hardware and hosts.

Each port has real adapters (NVML, torch, SSH) and a simulated one
(:mod:`dcops.sim`). Code above the ports sees only the records of
:mod:`dcops.measurements`, never which adapter produced them.

Errors: adapters raise :class:`dcops.errors.ConnectError` for an unreachable
node, :class:`dcops.errors.CommandTimeout` when a call outlives its
``timeout_s`` (a hung node), and other :class:`dcops.errors.BackendError`
subclasses for the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from dcops.measurements import (
    CollectiveOutcome,
    CollectiveResult,
    CommandResult,
    GemmResult,
    GpuRef,
    NodeReading,
)


@runtime_checkable
class GpuProbe(Protocol):
    """NVML-like readings of a node's GPUs."""

    def read(self, node: str, *, timeout_s: float | None = None) -> NodeReading:
        """Snapshot every GPU of ``node``; GPUs that fell off the bus have ``lost=True``."""
        ...


@runtime_checkable
class GemmEngine(Protocol):
    """Runs a timed, seeded GEMM burn on GPUs."""

    def run(
        self,
        gpus: Sequence[GpuRef],
        *,
        dtype: str,
        duration_s: float,
        seed: int,
        timeout_s: float | None = None,
    ) -> list[GemmResult]:
        """Burn every GPU in ``gpus`` for ``duration_s``; one result per GPU that ran.

        GPUs that cannot run (fallen off the bus, missing) are left out of the
        results; callers compare against what they asked for.
        """
        ...


@runtime_checkable
class CollectiveEngine(Protocol):
    """Runs a collective over a group of GPUs across a size sweep."""

    def run(
        self,
        op: str,
        members: Sequence[GpuRef],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> CollectiveResult:
        """Time ``op`` over ``members`` at each size; check every result's correctness."""
        ...

    def run_batch(
        self,
        op: str,
        groups: Sequence[Sequence[GpuRef]],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> list[CollectiveOutcome]:
        """Run ``op`` over every group *at the same time*; one outcome per group, in order.

        The groups must be disjoint (``ValueError`` otherwise): NVL72 trays
        share no GPU links and the NVLink switch is non-blocking, so disjoint
        groups do not disturb each other and a batch costs the time of its
        slowest group. A group that fails (:class:`~dcops.errors.DcopsError`)
        is an outcome with ``error`` set; the other groups still run.
        """
        ...


@runtime_checkable
class RemoteRunner(Protocol):
    """Runs an argv list on a host (this machine, over SSH, or simulated)."""

    def run(
        self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
    ) -> CommandResult:
        """Run ``argv`` on ``host``; a non-zero exit is a result, not an error."""
        ...

"""The measuring side of localization: stages of concurrent collective tests, and their cost.

A *test* is one collective call over a group of GPUs; a *stage* is one
:meth:`~dcops.ports.CollectiveEngine.run_batch` of disjoint tests run at the
same time. :class:`Tester` runs stages, turns each outcome into a figure
(:func:`~burnin.verdicts.collectives.group_busbw`, the median of the large-size
samples) and counts ``stages``, ``tests`` and ``gpu_seconds`` (each test's
members x the time it held them).

A figure's deficit against its reference decides: healthy at or below
``pass_deficit``, short at or above ``fail_deficit``, *ambiguous* between
(re-measured, and after ``max_remeasure`` re-measurements the mean decides at
the midpoint). A test that raises (NCCL error, timeout, unreachable member)
or reports wrong values is short.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from burnin.profiles.model import Thresholds
from burnin.verdicts.collectives import group_busbw
from dcops.measurements import CollectiveOutcome, GpuRef
from dcops.ports import CollectiveEngine


class Call(Enum):
    HEALTHY = "healthy"
    SHORT = "short"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class Measurement:
    """One group measured (after any re-measurements) and what was decided."""

    nodes: tuple[str, ...]
    gpus: int
    busbw_gbps: float | None
    reference_gbps: float
    short: bool
    rounds: int  # tests this measurement took (1 + re-measurements)
    error: str = ""
    stage: int = 0  # the stage of its last test (1-based)

    @property
    def deficit(self) -> float | None:
        if self.busbw_gbps is None or self.reference_gbps <= 0:
            return None
        return 1.0 - self.busbw_gbps / self.reference_gbps

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nodes": list(self.nodes),
            "gpus": self.gpus,
            "busbw_gbps": self.busbw_gbps,
            "reference_gbps": self.reference_gbps,
            "short": self.short,
            "tests": self.rounds,
            "stage": self.stage,
        }
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class Pending:
    """A test in progress: its GPUs, reference and the figures so far."""

    gpus: list[GpuRef]
    reference_gbps: float
    figures: list[float]
    error: str = ""
    failed: bool = False
    stage: int = 0

    @property
    def mean(self) -> float | None:
        return sum(self.figures) / len(self.figures) if self.figures else None


class Tester:
    """Runs stages of disjoint tests over ``engine`` and keeps the books."""

    def __init__(
        self,
        engine: CollectiveEngine,
        trays: Mapping[str, Sequence[GpuRef]],
        thresholds: Thresholds,
        *,
        op: str,
        sizes_bytes: Sequence[int],
        reference_gbps: float | None,
        timeout_s: float | None,
    ) -> None:
        self.engine = engine
        self.trays = trays
        self.th = thresholds
        self.op = op
        self.sizes = list(sizes_bytes)
        self.timeout_s = timeout_s
        floors = thresholds.collectives.busbw_gbps
        self.ref_group = reference_gbps if reference_gbps is not None else floors["domain"].expected
        self.ref_node = floors["node"].expected
        self.stages = 0
        self.tests = 0
        self.gpu_seconds = 0.0
        self.measurements: list[Measurement] = []

    def reference(self, gpus: Sequence[GpuRef]) -> float:
        return self.ref_node if len({g.node for g in gpus}) == 1 else self.ref_group

    def pending(self, gpus: Sequence[GpuRef]) -> Pending:
        return Pending(list(gpus), self.reference(gpus), [])

    # -- running ------------------------------------------------------------------

    def stage(self, tests: Sequence[Pending]) -> None:
        """Run ``tests`` (disjoint) as one stage; each gains a figure or fails."""
        if not tests:
            return
        self.stages += 1
        self.tests += len(tests)
        outcomes = self.engine.run_batch(
            self.op, [t.gpus for t in tests], sizes_bytes=self.sizes, timeout_s=self.timeout_s
        )
        for test, outcome in zip(tests, outcomes, strict=True):
            self.gpu_seconds += outcome.gpu_seconds
            test.stage = self.stages
            busbw, error = self._figure(outcome)
            if busbw is None:
                test.failed, test.error = True, error
            else:
                test.figures.append(busbw)

    def _figure(self, outcome: CollectiveOutcome) -> tuple[float | None, str]:
        if outcome.error is not None or outcome.result is None:
            return None, str(outcome.error or "no result")
        result = outcome.result
        wrong = sum(
            (s.wrong or 0)
            for row in result.rows
            for s in (row.out_of_place, row.in_place)
            if s is not None
        )
        if wrong:
            return None, f"{wrong} wrong values"
        busbw = group_busbw(result, self.th.collectives.min_size_bytes)
        if busbw is None:
            busbw = group_busbw(result, 0)
        return busbw, "" if busbw is not None else "no result rows"

    # -- deciding -----------------------------------------------------------------

    def call(self, test: Pending) -> Call:
        """Healthy, short, or ambiguous (re-measure) after the figures so far."""
        lo = self.th.localize
        mean = test.mean
        if test.failed or mean is None:
            return Call.SHORT
        deficit = 1.0 - mean / test.reference_gbps
        if deficit <= lo.pass_deficit:
            return Call.HEALTHY
        if deficit >= lo.fail_deficit:
            return Call.SHORT
        if len(test.figures) > max(0, lo.max_remeasure):  # cap reached: the midpoint decides
            mid = (lo.pass_deficit + lo.fail_deficit) / 2
            return Call.SHORT if deficit >= mid else Call.HEALTHY
        return Call.AMBIGUOUS

    def run_all(self, tests: Sequence[Pending]) -> None:
        """Run ``tests`` in as few stages as their overlaps allow (greedy disjoint waves)."""
        left = list(tests)
        while left:
            wave: list[Pending] = []
            used: set[GpuRef] = set()
            rest: list[Pending] = []
            for t in left:
                if used.isdisjoint(t.gpus):
                    wave.append(t)
                    used.update(t.gpus)
                else:
                    rest.append(t)
            self.stage(wave)
            left = rest

    def settle(self, tests: Sequence[Pending]) -> list[Measurement]:
        """Re-measure the ambiguous among ``tests`` (in stages) until each is decided."""
        while True:
            again = [t for t in tests if self.call(t) is Call.AMBIGUOUS]
            if not again:
                break
            self.run_all(again)
        return [self.record(t) for t in tests]

    def measure(self, gpus: Sequence[GpuRef]) -> Measurement:
        """One test alone, re-measured until decided: one stage per call (sequential)."""
        test = self.pending(gpus)
        self.stage([test])
        return self.settle([test])[0]

    def record(self, test: Pending) -> Measurement:
        names = tuple(dict.fromkeys(g.node for g in test.gpus))
        short = self.call(test) is Call.SHORT
        rounds = len(test.figures) + (1 if test.failed else 0)
        m = Measurement(
            names, len(test.gpus), test.mean, test.reference_gbps, short, rounds, test.error,
            test.stage,
        )  # fmt: skip
        self.measurements.append(m)
        return m

"""Find the culprit tray(s), and GPU(s) where possible, behind a collective that fell short.

Localization *by stages* over :meth:`~dcops.ports.CollectiveEngine.run_batch`:
a collective runs at its slowest member, so a group's busbw falls short
exactly when it holds a culprit, and disjoint groups of an NVL72 domain run at
the same time without disturbing each other (the switch is non-blocking).
What bounds a localization is therefore its *stages* (waves of concurrent
tests), and what it costs is the GPU-seconds its tests hold. Starting from a
domain (a rack's trays):

0. unless the caller already measured it short (``known_short``), measure the
   whole domain; healthy: nothing to find;
1. **screen** (one stage): every tray alone, all trays at once; a tray within
   ``pass_deficit`` of the one-tray (``node``) expectation is a *known-good
   partner*, every other tray a suspect;
2. **resolve** (one stage while there are 4 partners per suspect): every GPU
   of every suspect measured together with a known-good partner tray at the
   domain expectation, all at once (the "second failure with a different
   partner" rule of Google's cluster-health-scanner, FACTS.md: a tray is
   never blamed on its own measurement alone). All of a tray's GPUs short:
   the tray is the culprit; some of them: those GPUs are;
3. **settle**: only the ambiguous tests of stage 2 (deficit between
   ``pass_deficit`` and ``fail_deficit``) are measured again, together, up to
   ``max_remeasure`` more stages; then the mean decides at the midpoint.

A suspect whose GPU tests all pass is cleared, unless its screen was plainly
short: then it is measured alone once more and, short again, reported
unresolved (the fault needs the whole tray to show). A known-short domain
whose trays all pass alone is measured whole once more and, short again,
reported unresolved at the domain; with every tray short alone there is no
partner to judge against, and the domain is unresolved too.

The reference is ``reference_gbps`` when given (best: the median busbw of the
healthy domains measured in the same run, :func:`reference_from`), else the
profile's expected busbw for the scope. :mod:`burnin.localize_bisect` keeps
the sequential bisection this replaced (one test per stage), for comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from burnin.localize_tests import Call, Measurement, Pending, Tester
from burnin.profiles.model import Thresholds
from burnin.verdicts.collectives import group_busbw
from burnin.verdicts.robust import median
from burnin.verdicts.status import Finding, Reason, Status, gpu_finding, node_finding
from dcops.measurements import CollectiveResult, GpuRef
from dcops.ports import CollectiveEngine

__all__ = ["Culprit", "Localization", "Measurement", "localize", "reference_from"]


@dataclass(frozen=True)
class Culprit:
    """A target found faulty: ``kind`` is ``tray`` or ``gpu``."""

    target: str
    kind: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Localization:
    """What a localization found and what it cost, in stages, tests and GPU-seconds."""

    culprits: tuple[Culprit, ...]
    stages: int  # waves of concurrent tests
    tests: int  # collective calls
    gpu_seconds: float  # sum over tests of members x seconds held
    measurements: tuple[Measurement, ...]
    unresolved: tuple[tuple[str, ...], ...] = ()  # groups short as a whole, not in parts
    method: str = "staged"

    def cost(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "stages": self.stages,
            "tests": self.tests,
            "gpu_seconds": round(self.gpu_seconds, 3),
        }

    def records(self) -> list[dict[str, Any]]:
        """``[{target, kind, method, stages, tests, gpu_seconds, evidence}]`` for the CLI."""
        return [
            {"target": c.target, "kind": c.kind, **self.cost(), "evidence": c.evidence}
            for c in self.culprits
        ]

    def findings(self, check: str = "collective") -> list[Finding]:
        """The culprits as ``fail`` findings on their tray or GPU, for the roll-up."""
        out: list[Finding] = []
        for c in self.culprits:
            ev = c.evidence
            msg = (
                f"localized in {self.stages} stages ({self.tests} tests, "
                f"{self.gpu_seconds:.0f} GPU-s): busbw {_gbps(ev.get('busbw_gbps'))} "
                f"vs expected {_gbps(ev.get('reference_gbps'))}"
                + (f" with partner {ev['partner']}" if ev.get("partner") else "")
                + (f"; {ev['error']}" if ev.get("error") else "")
            )
            value = ev.get("busbw_gbps")
            reason = Reason(check, "localized", value, ev.get("reference_gbps"), msg)
            if c.kind == "gpu":
                node, _, index = c.target.rpartition(":gpu")
                out.append(gpu_finding(GpuRef(node, int(index)), Status.FAIL, reason))
            else:
                out.append(node_finding(c.target, Status.FAIL, reason))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "culprits": self.records(),
            **self.cost(),
            "unresolved": [list(g) for g in self.unresolved],
            "measurements": [m.to_dict() for m in self.measurements],
        }


def reference_from(results: Sequence[CollectiveResult], min_size_bytes: int) -> float | None:
    """The median busbw of ``results`` (e.g. the healthy domains of this run)."""
    figures = [b for r in results if (b := group_busbw(r, min_size_bytes)) is not None]
    return median(figures) if figures else None


def tester(
    engine: CollectiveEngine,
    trays: Mapping[str, Sequence[GpuRef]],
    thresholds: Thresholds,
    *,
    op: str | None = None,
    sizes_bytes: Sequence[int] | None = None,
    reference_gbps: float | None = None,
    timeout_s: float | None = None,
) -> Tester:
    """The :class:`~burnin.localize_tests.Tester` a localization of ``trays`` runs on."""
    return Tester(
        engine,
        trays,
        thresholds,
        op=op or thresholds.collectives.op,
        sizes_bytes=sizes_bytes or thresholds.collectives.sizes_bytes,
        reference_gbps=reference_gbps,
        timeout_s=timeout_s,
    )


def localize(
    engine: CollectiveEngine,
    trays: Mapping[str, Sequence[GpuRef]],
    thresholds: Thresholds,
    *,
    op: str | None = None,
    sizes_bytes: Sequence[int] | None = None,
    reference_gbps: float | None = None,
    known_short: bool = False,
    timeout_s: float | None = None,
) -> Localization:
    """Localize the culprits among ``trays`` (node -> its GPUs, one NVLink domain) by stages."""
    t = tester(
        engine, trays, thresholds, op=op, sizes_bytes=sizes_bytes,
        reference_gbps=reference_gbps, timeout_s=timeout_s,
    )  # fmt: skip
    culprits: list[Culprit] = []
    unresolved: list[tuple[str, ...]] = []
    nodes = [n for n in trays if trays[n]]
    everyone = [g for n in nodes for g in trays[n]]
    if nodes and (known_short or t.measure(everyone).short):
        _staged(t, nodes, culprits, unresolved)
    return Localization(
        culprits=tuple(culprits),
        stages=t.stages,
        tests=t.tests,
        gpu_seconds=t.gpu_seconds,
        measurements=tuple(t.measurements),
        unresolved=tuple(unresolved),
    )


def _staged(
    t: Tester, nodes: list[str], culprits: list[Culprit], unresolved: list[tuple[str, ...]]
) -> None:
    trays = t.trays
    # 1. screen: every tray alone, at once (a one-GPU tray cannot be screened: a suspect)
    screen = {n: t.pending(trays[n]) for n in nodes if len(trays[n]) > 1}
    t.stage(list(screen.values()))
    calls = {n: t.call(p) for n, p in screen.items()}
    for p in screen.values():
        t.record(p)
    good = [n for n in nodes if calls.get(n) is Call.HEALTHY]
    suspects = [n for n in nodes if n not in good]
    if not suspects:
        if t.measure([g for n in nodes for g in trays[n]]).short:
            unresolved.append(tuple(nodes))
        return
    if not good:
        unresolved.append(tuple(nodes))
        return
    # 2. resolve: each GPU of each suspect with a known-good partner tray, at once
    jobs: list[tuple[str, GpuRef, str, Pending]] = []
    for i, (node, gpu) in enumerate((n, g) for n in suspects for g in trays[n]):
        partner = good[i % len(good)]
        jobs.append((node, gpu, partner, t.pending([*trays[partner], gpu])))
    t.run_all([j[3] for j in jobs])
    # 3. settle the ambiguous ones, together
    measured = dict(zip((id(j[3]) for j in jobs), t.settle([j[3] for j in jobs]), strict=True))
    recheck: list[str] = []
    for node in suspects:
        mine = [(gpu, partner, measured[id(p)]) for n, gpu, partner, p in jobs if n == node]
        short = [(gpu, partner, m) for gpu, partner, m in mine if m.short]
        if not short:
            if calls.get(node) is Call.SHORT:
                recheck.append(node)
            continue
        alone = screen.get(node)
        base: dict[str, Any] = {"alone_busbw_gbps": alone.mean if alone else None}
        if len(short) < len(mine):
            for gpu, partner, m in short:
                culprits.append(Culprit(str(gpu), "gpu", {**base, **_evidence(m, partner)}))
        else:
            worst = min(short, key=lambda s: s[2].busbw_gbps or 0.0)
            ev = {**base, **_evidence(worst[2], worst[1]), "gpus_short": len(short)}
            culprits.append(Culprit(node, "tray", ev))
    if recheck:
        again = [t.pending(trays[n]) for n in recheck]
        t.run_all(again)
        for node, m in zip(recheck, t.settle(again), strict=True):
            if m.short:
                unresolved.append((node,))


def _evidence(m: Measurement, partner: str) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "busbw_gbps": m.busbw_gbps,
        "reference_gbps": m.reference_gbps,
        "partner": partner,
    }
    if m.error:
        ev["error"] = m.error
    return ev


def _gbps(value: object) -> str:
    return f"{value:.0f} GB/s" if isinstance(value, int | float) else "unmeasured"

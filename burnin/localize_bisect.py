"""Localization by sequential bisection: the method :mod:`burnin.localize` replaced.

Kept to compare against (``bench/bench_localization.py``) and for engines that
cannot run groups concurrently. One test per stage: split the short group in
halves and measure each, recurse into every half that falls short (a healthy
half's trays become known-good partners); a single tray is measured with a
known-good partner (alone when none is known), and a confirmed tray's GPUs one
by one with the partner. If a short group splits into two healthy halves it
is measured again; short again, it is unresolved. About ``2 x log2(n)``
tests per culprit, plus one per GPU of a confirmed tray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from burnin.localize import Culprit, Localization, tester
from burnin.localize_tests import Measurement, Tester
from burnin.profiles.model import Thresholds
from dcops.measurements import GpuRef
from dcops.ports import CollectiveEngine


class _Bisect:
    def __init__(self, t: Tester) -> None:
        self.t = t
        self.good: list[str] = []
        self.culprits: list[Culprit] = []
        self.unresolved: list[tuple[str, ...]] = []

    def gpus(self, nodes: Sequence[str]) -> list[GpuRef]:
        return [g for n in nodes for g in self.t.trays[n]]

    def search(self, nodes: list[str]) -> None:
        if len(nodes) == 1:
            self.confirm(nodes[0])
            return
        mid = (len(nodes) + 1) // 2
        halves = [nodes[:mid], nodes[mid:]]
        short: list[list[str]] = []
        for half in halves:
            if len(half) > 1:
                if self.t.measure(self.gpus(half)).short:
                    short.append(half)
                else:
                    self.good.extend(n for n in half if n not in self.good)
        found = bool(short)
        for half in halves:
            if len(half) == 1:
                found = self.confirm(half[0]) or found
        for half in short:
            self.search(half)
        if not found and self.t.measure(self.gpus(nodes)).short:
            self.unresolved.append(tuple(nodes))

    def confirm(self, node: str) -> bool:
        partner = next((n for n in self.good if n != node), None)
        extra = list(self.t.trays[partner]) if partner is not None else []
        m = self.t.measure([*self.t.trays[node], *extra])
        if not m.short:
            if node not in self.good:
                self.good.append(node)
            return False
        evidence = _evidence(m, partner)
        gpus = self.t.trays[node]
        if partner is not None and len(gpus) > 1:
            short = [(gpu, g) for gpu in gpus if (g := self.t.measure([*extra, gpu])).short]
            if short and len(short) < len(gpus):
                for gpu, g in short:
                    self.culprits.append(Culprit(str(gpu), "gpu", _evidence(g, partner)))
                return True
            evidence["gpus_short"] = len(short)
        self.culprits.append(Culprit(node, "tray", evidence))
        return True


def bisect(
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
    """Bisect ``trays`` (node -> its GPUs, one NVLink domain) down to the culprits."""
    t = tester(
        engine, trays, thresholds, op=op, sizes_bytes=sizes_bytes,
        reference_gbps=reference_gbps, timeout_s=timeout_s,
    )  # fmt: skip
    b = _Bisect(t)
    nodes = [n for n in trays if trays[n]]
    if nodes and (known_short or t.measure(b.gpus(nodes)).short):
        b.search(nodes)
    return Localization(
        culprits=tuple(b.culprits),
        stages=t.stages,
        tests=t.tests,
        gpu_seconds=t.gpu_seconds,
        measurements=tuple(t.measurements),
        unresolved=tuple(b.unresolved),
        method="bisect",
    )


def _evidence(m: Measurement, partner: str | None) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "busbw_gbps": m.busbw_gbps,
        "reference_gbps": m.reference_gbps,
        "partner": partner,
    }
    if m.error:
        ev["error"] = m.error
    return ev

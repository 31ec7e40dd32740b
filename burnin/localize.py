"""Find the culprit tray(s), and GPU(s) where possible, behind a collective that fell short.

Group testing by bisection over the :class:`~dcops.ports.CollectiveEngine` port:
a collective runs at its slowest member, so a group's busbw falls short exactly
when it holds a culprit. Starting from the whole group (a rack's trays):

1. measure the group; if it is healthy there is nothing to find;
2. split it in halves and measure each; recurse into every half that falls
   short (two faulty trays in one rack: both halves may, and both are followed);
   a half that is healthy makes its trays *known-good partners*;
3. a single tray is measured together with a known-good partner's GPUs (the
   "second failure with a different partner" rule of Google's
   cluster-health-scanner, FACTS.md), so it is judged at the same scope as the
   groups above it; with no partner known, on its own against the one-tray
   (``node``) expectation;
4. a confirmed tray's GPUs are then measured one by one with the partner: if
   only some fall short the culprits are those GPUs, else the tray.

Decisions against noise: a measurement's figure is
:func:`~burnin.verdicts.collectives.group_busbw` (median of the large-size
samples); its deficit against the reference is healthy at or below
``pass_deficit``, short at or above ``fail_deficit``, and in between it is
re-measured (up to ``max_remeasure`` more times) and the mean decides at the
midpoint. A collective that raises (NCCL error, timeout, unreachable member)
or reports wrong values is short. If a short group splits into two healthy
halves, the group is re-measured once; if it is short again the fault is
reported as unresolved at that group (it needs the whole group to show).

The reference is ``reference_gbps`` when given (best: the median busbw of the
healthy domains measured in the same run, :func:`reference_from`), else the
profile's expected busbw for the scope.

Cost: about ``2 x log2(n)`` rounds per culprit (+ GPUs per tray to resolve
GPUs) against ``n (n - 1) / 2`` pair rounds for an all-pairs search (153 for
an 18-tray rack). Every ``engine.run`` call is one round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from burnin.profiles.model import Thresholds
from burnin.verdicts.collectives import group_busbw
from burnin.verdicts.robust import median
from burnin.verdicts.status import Finding, Reason, Status, gpu_finding, node_finding
from dcops.errors import DcopsError
from dcops.measurements import CollectiveResult, GpuRef
from dcops.ports import CollectiveEngine


@dataclass(frozen=True)
class Measurement:
    """One group measured (after any re-measurements) and what was decided."""

    nodes: tuple[str, ...]
    gpus: int
    busbw_gbps: float | None
    reference_gbps: float
    short: bool
    rounds: int  # rounds this measurement took (1 + re-measurements)
    error: str = ""

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
        }
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class Culprit:
    """A target found faulty: ``kind`` is ``tray`` or ``gpu``."""

    target: str
    kind: str
    rounds: int  # rounds spent when it was confirmed (cumulative)
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Localization:
    """What :func:`localize` found and what it cost."""

    culprits: tuple[Culprit, ...]
    rounds: int
    all_pairs_rounds: int
    measurements: tuple[Measurement, ...]
    unresolved: tuple[tuple[str, ...], ...] = ()  # groups short as a whole, not in parts

    def records(self) -> list[dict[str, Any]]:
        """``[{target, kind, rounds, evidence}]``, the plain shape the CLI renders."""
        return [
            {"target": c.target, "kind": c.kind, "rounds": c.rounds, "evidence": c.evidence}
            for c in self.culprits
        ]

    def findings(self, check: str = "collective") -> list[Finding]:
        """The culprits as ``fail`` findings on their tray or GPU, for the roll-up."""
        out: list[Finding] = []
        for c in self.culprits:
            ev = c.evidence
            msg = (
                f"localized by bisection in {self.rounds} collective rounds "
                f"(all-pairs: {self.all_pairs_rounds}): busbw {_gbps(ev.get('busbw_gbps'))} "
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
            "rounds": self.rounds,
            "all_pairs_rounds": self.all_pairs_rounds,
            "unresolved": [list(g) for g in self.unresolved],
            "measurements": [m.to_dict() for m in self.measurements],
        }


def all_pairs_rounds(n: int) -> int:
    """Rounds an all-pairs search over ``n`` trays costs: one per pair."""
    return n * (n - 1) // 2


def reference_from(results: Sequence[CollectiveResult], min_size_bytes: int) -> float | None:
    """The median busbw of ``results`` (e.g. the healthy domains of this run)."""
    figures = [b for r in results if (b := group_busbw(r, min_size_bytes)) is not None]
    return median(figures) if figures else None


class _Search:
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
        self.rounds = 0
        self.good: list[str] = []
        self.measurements: list[Measurement] = []
        self.culprits: list[Culprit] = []
        self.unresolved: list[tuple[str, ...]] = []

    # -- measuring -------------------------------------------------------------

    def _once(self, gpus: Sequence[GpuRef]) -> tuple[float | None, str]:
        self.rounds += 1
        try:
            result = self.engine.run(
                self.op, gpus, sizes_bytes=self.sizes, timeout_s=self.timeout_s
            )
        except DcopsError as exc:
            return None, str(exc)
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

    def measure(self, nodes: Sequence[str], extra: Sequence[GpuRef] = ()) -> Measurement:
        gpus = [g for n in nodes for g in self.trays[n]] + list(extra)
        single = len({g.node for g in gpus}) == 1
        ref = self.ref_node if single else self.ref_group
        lo = self.th.localize
        start = self.rounds
        figures: list[float] = []
        error = ""
        short = False
        for attempt in range(1 + max(0, lo.max_remeasure)):
            busbw, error = self._once(gpus)
            if busbw is None:
                short = True
                break
            figures.append(busbw)
            deficit = 1.0 - (sum(figures) / len(figures)) / ref
            if deficit <= lo.pass_deficit:
                break
            if deficit >= lo.fail_deficit:
                short = True
                break
            if attempt == lo.max_remeasure:  # still ambiguous: the midpoint decides
                short = deficit >= (lo.pass_deficit + lo.fail_deficit) / 2
        mean = sum(figures) / len(figures) if figures else None
        names = tuple(dict.fromkeys(g.node for g in gpus))
        m = Measurement(names, len(gpus), mean, ref, short, self.rounds - start, error)
        self.measurements.append(m)
        return m

    # -- searching -------------------------------------------------------------

    def partner(self, avoid: Sequence[str]) -> str | None:
        for node in self.good:
            if node not in avoid:
                return node
        return None

    def search(self, nodes: list[str], parent: Measurement) -> None:
        if len(nodes) == 1:
            self.confirm(nodes[0], parent)
            return
        mid = (len(nodes) + 1) // 2
        halves = [nodes[:mid], nodes[mid:]]
        short: list[tuple[list[str], Measurement]] = []
        for half in halves:
            if len(half) > 1:
                m = self.measure(half)
                if m.short:
                    short.append((half, m))
                else:
                    self.good.extend(n for n in half if n not in self.good)
        # Single trays after the halves: a healthy half may have given them a partner.
        found = bool(short)
        for half in halves:
            if len(half) == 1:
                found = self.confirm(half[0], parent) or found
        for half, m in short:
            self.search(half, m)
        if not found:
            again = self.measure(nodes)
            if again.short:
                self.unresolved.append(tuple(nodes))

    def confirm(self, node: str, parent: Measurement) -> bool:
        """Measure one tray with a known-good partner (or alone); resolve its GPUs."""
        partner = self.partner([node])
        extra = list(self.trays[partner]) if partner is not None else []
        m = self.measure([node], extra)
        if not m.short:
            if node not in self.good:
                self.good.append(node)
            return False
        evidence: dict[str, Any] = {
            "busbw_gbps": m.busbw_gbps,
            "reference_gbps": m.reference_gbps,
            "partner": partner,
            "group_busbw_gbps": parent.busbw_gbps,
            "all_pairs_rounds": all_pairs_rounds(len(self.trays)),
        }
        if m.error:
            evidence["error"] = m.error
        gpus = self.trays[node]
        if partner is not None and len(gpus) > 1:
            short_gpus = []
            for gpu in gpus:
                g = self.measure([], [*self.trays[partner], gpu])
                if g.short:
                    short_gpus.append((gpu, g))
            if short_gpus and len(short_gpus) < len(gpus):
                for gpu, g in short_gpus:
                    ev = {**evidence, "busbw_gbps": g.busbw_gbps}
                    if g.error:
                        ev["error"] = g.error
                    self.culprits.append(Culprit(str(gpu), "gpu", self.rounds, ev))
                return True
            evidence["gpus_short"] = len(short_gpus)
        self.culprits.append(Culprit(node, "tray", self.rounds, evidence))
        return True


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
    """Bisect ``trays`` (node -> its GPUs, one NVLink domain) down to the culprits.

    ``known_short``: the whole group was already measured short by the caller
    (the domain sweep of the run), so the search starts at the halves.
    """
    search = _Search(
        engine,
        trays,
        thresholds,
        op=op or thresholds.collectives.op,
        sizes_bytes=sizes_bytes or thresholds.collectives.sizes_bytes,
        reference_gbps=reference_gbps,
        timeout_s=timeout_s,
    )
    nodes = list(trays)
    if nodes:
        if known_short:
            whole = Measurement(tuple(nodes), 0, None, search.ref_group, True, 0, "given")
        else:
            whole = search.measure(nodes)
        if whole.short:
            search.search(nodes, whole)
    return Localization(
        culprits=tuple(search.culprits),
        rounds=search.rounds,
        all_pairs_rounds=all_pairs_rounds(len(nodes)),
        measurements=tuple(search.measurements),
        unresolved=tuple(search.unresolved),
    )


def _gbps(value: object) -> str:
    return f"{value:.0f} GB/s" if isinstance(value, int | float) else "unmeasured"

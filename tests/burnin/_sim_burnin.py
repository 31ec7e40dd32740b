"""A minimal burn-in driver over a SimFleet: what ``burnin run`` does, for tests and bench.

Probe every node (unreachable / hung -> error), burn GEMM for the profile's
rounds on the reachable GPUs, probe again, sweep the profile's collective per
tray and per NVLink domain, localize the culprits of every short domain sweep,
and roll everything up.
"""

from __future__ import annotations

from dataclasses import dataclass

from burnin.localize import Localization, localize
from burnin.profiles import Thresholds
from burnin.verdicts import (
    Finding,
    Status,
    Verdict,
    collective_error,
    judge_collectives,
    judge_gemm,
    judge_readings,
    layout_from_site,
    node_error,
    rollup,
    slow_gpus,
)
from dcops.errors import DcopsError
from dcops.measurements import CollectiveResult, GpuRef, NodeReading
from dcops.sim import SimFleet


@dataclass
class SimRun:
    verdict: Verdict
    findings: list[Finding]
    localizations: dict[str, Localization]


def burnin_sim(fleet: SimFleet, th: Thresholds, *, probe_timeout_s: float = 0.02) -> SimRun:
    site = fleet.site
    findings: list[Finding] = []
    readings: list[NodeReading] = []
    reachable: list[str] = []
    for node in site.nodes():
        try:
            readings.append(fleet.probe.read(node, timeout_s=probe_timeout_s))
            reachable.append(node)
        except DcopsError as exc:
            findings.append(node_error(node, exc, during="probe"))
    gpus = [g for n in reachable for g in site.gpus(n)]
    g = th.gemm
    rounds = [
        fleet.gemm.run(gpus, dtype=g.dtype, duration_s=g.duration_s, seed=1000 + r)
        for r in range(g.rounds)
    ]
    gemm_findings = judge_gemm(rounds, g, expected=gpus)
    findings += gemm_findings
    readings += [fleet.probe.read(n, timeout_s=probe_timeout_s) for n in reachable]
    findings += judge_readings(
        readings,
        th.health,
        expected_gpus={n: site.node(n).gpus_per_node for n in reachable},
        slow=slow_gpus(gemm_findings),
    )
    usable = {gr.gpu for r in readings for gr in r.gpus if not gr.lost}
    trays = {n: [x for x in site.gpus(n) if x in usable] for n in reachable}
    c = th.collectives
    results: list[CollectiveResult] = []
    domain_of = {n: site.domain_of(n) for n in site.nodes()}

    def sweep(members: list[GpuRef]) -> CollectiveResult | None:
        try:
            return fleet.collectives.run(c.op, members, sizes_bytes=c.sizes_bytes, timeout_s=60)
        except DcopsError as exc:
            findings.append(collective_error(c.op, members, exc))
            return None

    for members in trays.values():
        if len(members) > 1 and (r := sweep(members)) is not None:
            results.append(r)
    domains: dict[str, list[str]] = {}
    for n in reachable:
        domains.setdefault(domain_of[n], []).append(n)
    localizations: dict[str, Localization] = {}
    for domain, nodes in domains.items():
        if len(nodes) < 2:
            continue
        members = [x for n in nodes for x in trays[n]]
        r = sweep(members)
        short = r is None
        if r is not None:
            results.append(r)
            own = judge_collectives([r], c, domain_of=domain_of)
            short = any(f.status is not Status.PASS for f in own)
        if short:
            loc = localize(
                fleet.collectives, {n: trays[n] for n in nodes}, th, known_short=True, timeout_s=60
            )
            localizations[domain] = loc
            findings += loc.findings()
    findings += judge_collectives(results, c, domain_of=domain_of)
    verdict = rollup(findings, layout_from_site(site), required_gpu_checks=("gemm", "gpu_health"))
    return SimRun(verdict, findings, localizations)


def flagged_gpus(verdict: Verdict) -> set[str]:
    """GPUs whose own verdict, or whose node's own findings, are not pass."""
    out: set[str] = set()
    for rack in verdict.children:
        for node in rack.children:
            node_bad = any(f.status is not Status.PASS for f in node.findings)
            for gpu in node.children:
                if node_bad or gpu.status is not Status.PASS:
                    out.add(gpu.target)
    return out

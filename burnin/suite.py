"""Run a burn-in suite over the ports and judge it: the orchestration behind ``burnin run``.

The suite is the same whatever sits behind the ports (the fleet simulator,
torch on this machine's GPUs or CPU ranks)::

    1. probe every node (in parallel, bounded): unreachable / hung -> error
    2. GEMM for the profile's rounds, one engine call per node and round (a node
       that hangs or dies mid-burn is an error for that node, not for the run);
       then only the GPUs left ambiguous burn again, a round at a time, until
       decided or the profile's cap (:mod:`burnin.verdicts.remeasure`)
    3. probe again: XIDs, throttling, ECC, remapped rows, lost GPUs during the burn
    4. the profile's collective per tray (every tray at once: one batch of
       disjoint groups), then per NVLink domain (every domain at once)
    5. localize the culprits of every domain sweep that fell short, by stages
       of concurrent tests (:mod:`burnin.localize`)

``params`` records what ran: GEMM rounds actually run and the burn's GPU-time
(``gpu_seconds``: GEMM seconds per GPU, plus members x seconds of every
collective test, localization included).
    6. roll everything up: GPU -> node -> rack -> run

Nothing here judges: :mod:`burnin.verdicts` does. Nothing here writes the store
or acts on nodes: :mod:`burnin.service` does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from burnin.localize import Localization, localize
from burnin.profiles import Thresholds
from burnin.profiles.model import GemmThresholds
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
from burnin.verdicts.remeasure import undecided
from burnin.verdicts.robust import Spread
from dcops.errors import DcopsError, InputError, RemoteError, UnknownNameError
from dcops.inventory import Site
from dcops.measurements import CollectiveResult, GemmResult, GpuRef, NodeReading
from dcops.per_node import each_node
from dcops.ports import CollectiveEngine, GemmEngine, GpuProbe

if TYPE_CHECKING:
    from dcops.sim import SimFleet

#: progress(stage, done, total): the CLI draws a progress bar from it.
Progress = Callable[[str, int, int], None]

#: watch(stage, nodes, timeout_s, concurrency): a stage starts waiting on ``nodes``
#: (each bounded by ``timeout_s``, ``concurrency`` at once); it returns the callback told
#: each node as it answers. The CLI says from it which nodes a long wait waits for.
Watch = Callable[[str, Sequence[str], float, int], Callable[[str], None]]


@dataclass(frozen=True)
class SuitePorts:
    """What a suite runs on. ``probe``/``collectives`` may be absent (a CPU-only box)."""

    site: Site
    gemm: GemmEngine
    probe: GpuProbe | None = None
    collectives: CollectiveEngine | None = None
    backend: str = "sim"  # sim | local | slurm | ssh: recorded with the run


def sim_ports(fleet: SimFleet) -> SuitePorts:
    """The simulator's adapters as suite ports."""
    return SuitePorts(
        site=fleet.site,
        gemm=fleet.gemm,
        probe=fleet.probe,
        collectives=fleet.collectives,
        backend="sim",
    )


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


@dataclass(frozen=True)
class SuiteOptions:
    nodes: tuple[str, ...]
    gemm_rounds: int | None = None  # None: the profile's
    gemm_duration_s: float | None = None
    gemm_dtype: str | None = None
    collectives: bool = True
    localize: bool = True
    probe_timeout_s: float = 10.0
    gemm_timeout_s: float | None = None  # None: duration x 3 + 60 s
    collective_timeout_s: float = 600.0
    concurrency: int = 64
    seed: int = 1000
    #: The fleet's stored GEMM spread (``burnin.baselines``): the reference when too few peers.
    gemm_baseline: Spread | None = None

    def __post_init__(self) -> None:
        # validated before any node is touched: a bad parameter is the user's, never a node's
        from burnin.profiles.loader import DTYPES

        if self.gemm_dtype is not None and self.gemm_dtype not in DTYPES:
            raise UnknownNameError("GEMM dtype", self.gemm_dtype, DTYPES)
        if not self.nodes:
            raise InputError("no node selected")


@dataclass
class SuiteRun:
    verdict: Verdict
    findings: list[Finding]
    localizations: dict[str, Localization] = field(default_factory=dict)
    gemm_tflops: dict[GpuRef, float] = field(default_factory=dict)  # mean over rounds
    busbw_gbps: dict[str, float] = field(default_factory=dict)  # group label -> peak busbw
    params: dict[str, Any] = field(default_factory=dict)
    collective_gpu_seconds: float = 0.0  # the per-tray and per-domain sweeps


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def _no_answer(node: str) -> None:
    return None


def _no_watch(
    stage: str, nodes: Sequence[str], timeout_s: float, concurrency: int
) -> Callable[[str], None]:
    return _no_answer


def run_suite(
    ports: SuitePorts,
    thresholds: Thresholds,
    options: SuiteOptions,
    progress: Progress | None = None,
    watch: Watch | None = None,
) -> SuiteRun:
    """Measure and judge ``options.nodes`` (see the module docstring)."""
    progress, watch = progress or _no_progress, watch or _no_watch
    site = ports.site
    nodes = list(options.nodes)
    g = thresholds.gemm
    dtype = options.gemm_dtype or g.dtype
    rounds_n = options.gemm_rounds or g.rounds
    duration = options.gemm_duration_s if options.gemm_duration_s is not None else g.duration_s
    gemm_timeout = options.gemm_timeout_s or duration * 3 + 60.0
    findings: list[Finding] = []
    failed_nodes: set[str] = set()
    pool = ThreadPoolExecutor(max_workers=max(1, min(options.concurrency, len(nodes) or 1)))

    def node_failed(node: str, exc: DcopsError, during: str) -> None:
        if node not in failed_nodes:
            failed_nodes.add(node)
            findings.append(node_error(node, exc, during=during))

    # 1. probe before
    readings: list[NodeReading] = []
    if ports.probe is not None:
        readings += _probe_all(ports.probe, nodes, options, pool, node_failed, progress, watch)
    else:
        progress("probe", len(nodes), len(nodes))
    reachable = [n for n in nodes if n not in failed_nodes]

    # 2. GEMM, one call per node and round, nodes in parallel
    burn = functools.partial(
        _burn, ports.gemm, dtype=dtype, duration_s=duration, timeout_s=gemm_timeout
    )
    rounds: list[list[GemmResult]] = []
    total = rounds_n * len(reachable)
    for r in range(rounds_n):
        live = {n: site.gpus(n) for n in reachable if n not in failed_nodes}
        first = r * len(reachable)
        rounds.append(
            _gemm_round(
                burn, live, options.seed + r, node_failed, pool,
                functools.partial(_step, progress, "gemm", first, total),
                watch("gemm", list(live), gemm_timeout, options.concurrency),
            )
        )  # fmt: skip

    # 2b. adaptive re-measurement: only the ambiguous GPUs burn again, a round at a time
    extra_rounds, extra_count = _remeasure(
        burn, rounds, g, options.seed + rounds_n, failed_nodes, node_failed, pool, progress
    )
    ran = [n for n in reachable if n not in failed_nodes]
    expected = [gpu for n in ran for gpu in site.gpus(n)]
    reference = _reference(len(expected), g.peers.min_peers, options.gemm_baseline)
    baseline = options.gemm_baseline if reference == "baseline" else None
    gemm_findings = judge_gemm(rounds, g, expected=expected, extra=extra_rounds, baseline=baseline)
    findings += gemm_findings

    # 3. probe after: what the burn did to the GPUs
    if ports.probe is not None and ran:
        readings += _probe_all(ports.probe, ran, options, pool, node_failed, progress, watch)
        ok_nodes = [n for n in ran if n not in failed_nodes]
        findings += judge_readings(
            [r for r in readings if r.node in ok_nodes],
            thresholds.health,
            expected_gpus={n: site.node(n).gpus_per_node for n in ok_nodes},
            slow=slow_gpus(gemm_findings),
        )
    pool.shutdown(wait=False, cancel_futures=True)

    # 4./5. collectives per tray, then per domain, localizing short domains
    run = SuiteRun(verdict=rollup([], {}), findings=findings)
    if ports.collectives is not None and options.collectives:
        _collectives(ports, thresholds, options, readings, failed_nodes, run, progress)

    run.gemm_tflops = _mean_tflops([*rounds, *extra_rounds])
    required = ("gemm", "gpu_health") if ports.probe is not None else ("gemm",)
    run.verdict = rollup(findings, layout_from_site(site, set(nodes)), required_gpu_checks=required)
    run.params = _params(
        ports, thresholds, options, dtype, duration, rounds, extra_rounds, extra_count, run
    )
    run.params["gemm_reference"] = reference
    if reference == "baseline" and baseline is not None:
        run.params["gemm_baseline"] = {
            "median_tflops": round(baseline.median, 3),
            "mad_tflops": round(baseline.mad, 3),
            "gpus": baseline.count,
        }
    return run


def _reference(gpus: int, min_peers: int, baseline: Spread | None) -> str:
    """What the GPUs' speed is judged against: ``peers``, ``baseline`` or ``floors`` only."""
    if gpus >= min_peers:
        return "peers"
    return "baseline" if baseline is not None else "floors"


def _params(
    ports: SuitePorts,
    thresholds: Thresholds,
    options: SuiteOptions,
    dtype: str,
    duration: float,
    rounds: Sequence[Sequence[GemmResult]],
    extra_rounds: Sequence[Sequence[GemmResult]],
    extra_count: dict[GpuRef, int],
    run: SuiteRun,
) -> dict[str, Any]:
    rounds_n = len(rounds)
    return {
        "backend": ports.backend,
        "dtype": dtype,
        # rounds actually run, in series: the fixed ones plus the re-measurement rounds
        "gemm_rounds": rounds_n + len(extra_rounds),
        "gemm_fixed_rounds": rounds_n,
        "gemm_remeasure_rounds": len(extra_rounds),
        "gemm_remeasured_gpus": len(extra_count),
        "gemm_duration_s": duration,
        **_gpu_time([*rounds, *extra_rounds], run),
        "collective_op": thresholds.collectives.op,
        "collective_sizes_bytes": list(thresholds.collectives.sizes_bytes),
        "probe": ports.probe is not None,
        "collectives": ports.collectives is not None and options.collectives,
        "seed": options.seed,
    }


def _remeasure(
    burn: Callable[[list[GpuRef], int], list[GemmResult]],
    rounds: Sequence[Sequence[GemmResult]],
    g: GemmThresholds,
    seed: int,
    failed_nodes: set[str],
    node_failed: Callable[[str, DcopsError, str], None],
    pool: ThreadPoolExecutor,
    progress: Progress,
) -> tuple[list[list[GemmResult]], dict[GpuRef, int]]:
    """Re-measurement rounds (each over the still-undecided GPUs only) and rounds per GPU."""
    extra_rounds: list[list[GemmResult]] = []
    extra_count: dict[GpuRef, int] = {}
    cap = g.remeasure.max_rounds
    for r in range(cap):
        by_gpu: dict[GpuRef, list[GemmResult]] = {}
        for result in (x for round_ in (*rounds, *extra_rounds) for x in round_):
            if result.gpu.node not in failed_nodes:
                by_gpu.setdefault(result.gpu, []).append(result)
        todo = undecided(by_gpu, g, fixed_rounds=len(rounds), extra=extra_count)
        if not todo:
            break
        per_node: dict[str, list[GpuRef]] = {}
        for gpu in todo:
            per_node.setdefault(gpu.node, []).append(gpu)
        quiet = functools.partial(_step, _no_progress, "", 0, 0)
        this_round = _gemm_round(burn, per_node, seed + r, node_failed, pool, quiet, _no_answer)
        progress("gemm re-measure", r + 1, cap)
        for gpu in todo:
            extra_count[gpu] = extra_count.get(gpu, 0) + 1
        extra_rounds.append(this_round)
    return extra_rounds, extra_count


def _burn(
    gemm: GemmEngine,
    gpus: list[GpuRef],
    seed: int,
    *,
    dtype: str,
    duration_s: float,
    timeout_s: float,
) -> list[GemmResult]:
    return gemm.run(gpus, dtype=dtype, duration_s=duration_s, seed=seed, timeout_s=timeout_s)


def _told(
    answered: Callable[[str], None], done: Callable[[int], None]
) -> Callable[[str, int], None]:
    """A node answered: tell the watch which, and the progress bar how many so far."""

    def told(node: str, count: int) -> None:
        answered(node)
        done(count)

    return told


def _step(progress: Progress, stage: str, first: int, total: int, i: int) -> None:
    progress(stage, first + i, total)


def _gemm_round(
    burn: Callable[[list[GpuRef], int], list[GemmResult]],
    per_node: dict[str, list[GpuRef]],
    seed: int,
    node_failed: Callable[[str, DcopsError, str], None],
    pool: ThreadPoolExecutor,
    done: Callable[[int], None],
    answered: Callable[[str], None],
) -> list[GemmResult]:
    """One GEMM round: one engine call per node (its ``per_node`` GPUs), nodes in parallel."""

    def one(node: str) -> list[GemmResult] | DcopsError:
        try:
            return burn(per_node[node], seed)
        except DcopsError as exc:
            return exc

    outcomes = each_node(pool, one, list(per_node), answered=_told(answered, done))
    out: list[GemmResult] = []
    for node, outcome in outcomes.items():
        if isinstance(outcome, DcopsError):
            node_failed(node, outcome, "gemm")
        else:
            out.extend(outcome)
    return out


def _probe_all(
    probe: GpuProbe,
    nodes: Sequence[str],
    options: SuiteOptions,
    pool: ThreadPoolExecutor,
    node_failed: Callable[[str, DcopsError, str], None],
    progress: Progress,
    watch: Watch,
) -> list[NodeReading]:
    def read(node: str) -> NodeReading | DcopsError:
        try:
            return probe.read(node, timeout_s=options.probe_timeout_s)
        except DcopsError as exc:
            return exc

    answered = watch("probe", nodes, options.probe_timeout_s, options.concurrency)
    done = functools.partial(_step, progress, "probe", 0, len(nodes))
    outcomes = each_node(pool, read, list(nodes), answered=_told(answered, done))
    out: list[NodeReading] = []
    for node, outcome in outcomes.items():
        if isinstance(outcome, DcopsError):
            node_failed(node, outcome, "probe")
        else:
            out.append(outcome)
    return out


def _collectives(
    ports: SuitePorts,
    thresholds: Thresholds,
    options: SuiteOptions,
    readings: list[NodeReading],
    failed_nodes: set[str],
    run: SuiteRun,
    progress: Progress,
) -> None:
    assert ports.collectives is not None
    engine = ports.collectives
    site = ports.site
    c = thresholds.collectives
    live = [n for n in options.nodes if n not in failed_nodes]
    lost = {gr.gpu for r in readings for gr in r.gpus if gr.lost}
    seen = {gr.gpu for r in readings for gr in r.gpus}
    trays = {
        n: [x for x in site.gpus(n) if x not in lost and (not readings or x in seen)] for n in live
    }
    domain_of = {n: site.domain_of(n) for n in options.nodes}
    domains: dict[str, list[str]] = {}
    for n in live:
        domains.setdefault(domain_of[n], []).append(n)
    groups: list[tuple[str, list[GpuRef]]] = [(n, m) for n, m in trays.items() if len(m) > 1] + [
        (f"domain {d}", [x for n in ns for x in trays[n]])
        for d, ns in domains.items()
        if len(ns) > 1
    ]
    results: list[CollectiveResult] = []
    tray_groups = [(label, m) for label, m in groups if not label.startswith("domain ")]
    domain_groups = [(label, m) for label, m in groups if label.startswith("domain ")]
    done = 0
    for batch in (tray_groups, domain_groups):
        if not batch:
            continue
        progress("collectives", done, len(groups))
        outcomes = engine.run_batch(
            c.op,
            [m for _, m in batch],
            sizes_bytes=c.sizes_bytes,
            timeout_s=options.collective_timeout_s,
        )
        done += len(batch)
        for (label, members), outcome in zip(batch, outcomes, strict=True):
            run.collective_gpu_seconds += outcome.gpu_seconds
            is_domain = label.startswith("domain ")
            result = outcome.result
            if result is None:
                exc = outcome.error
                if not isinstance(exc, DcopsError):
                    exc = DcopsError(str(exc))
                run.findings.append(collective_error(c.op, members, exc))
                if isinstance(exc, RemoteError) and exc.host in {m.node for m in members}:
                    # one member's node was lost (unreachable, hung, its connection dropped):
                    # that node could not be judged -> error (never a fail: nothing drains)
                    run.findings.append(node_error(exc.host, exc, during=f"{c.op} ({label})"))
                if is_domain and options.localize:
                    _localize(engine, label, domains, trays, thresholds, options, run)
                continue
            results.append(result)
            run.busbw_gbps[label] = result.peak_busbw_gbps
            if is_domain and options.localize:
                own = judge_collectives([result], c, domain_of=domain_of)
                if any(f.status is not Status.PASS for f in own):
                    _localize(engine, label, domains, trays, thresholds, options, run)
    progress("collectives", len(groups), len(groups))
    run.findings += judge_collectives(results, c, domain_of=domain_of)


def _localize(
    engine: CollectiveEngine,
    label: str,
    domains: dict[str, list[str]],
    trays: dict[str, list[GpuRef]],
    thresholds: Thresholds,
    options: SuiteOptions,
    run: SuiteRun,
) -> None:
    domain = label.removeprefix("domain ")
    loc = localize(
        engine,
        {n: trays[n] for n in domains[domain]},
        thresholds,
        known_short=True,
        timeout_s=options.collective_timeout_s,
    )
    run.localizations[domain] = loc
    run.findings += loc.findings()


def _gpu_time(rounds: Sequence[Sequence[GemmResult]], run: SuiteRun) -> dict[str, Any]:
    """The burn's GPU-seconds, in all and by phase (GEMM, collective sweeps, localization)."""
    gemm = sum(r.duration_s for round_ in rounds for r in round_)
    loc = sum(x.gpu_seconds for x in run.localizations.values())
    parts = {
        "gemm": round(gemm, 3),
        "collectives": round(run.collective_gpu_seconds, 3),
        "localization": round(loc, 3),
    }
    return {
        "gpu_seconds": round(gemm + run.collective_gpu_seconds + loc, 3),
        "gpu_seconds_by_phase": parts,
    }


def _mean_tflops(rounds: Sequence[Sequence[GemmResult]]) -> dict[GpuRef, float]:
    sums: dict[GpuRef, list[float]] = {}
    for round_ in rounds:
        for r in round_:
            sums.setdefault(r.gpu, []).append(r.tflops)
    return {gpu: sum(v) / len(v) for gpu, v in sums.items()}

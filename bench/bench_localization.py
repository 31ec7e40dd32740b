"""Benchmark: localizing faulty trays / GPUs of one NVL72 rack, four methods side by side.

    python bench/bench_localization.py [--trials N] [--noise 0.02]

On the fleet simulator (one GB200 NVL72 rack, 18 trays x 4 GPUs), for each case
(1 bad tray, 2 bad trays, 1 bad GPU: ``nvlink_degraded`` factor 0.5..0.9),
N seeded trials, every method starting from the same fact (the rack's domain
sweep fell short) on a fresh simulator with the same seed:

- ``partner-scan``: the naive operator method: every other tray measured with
  one known-good partner tray (given for free: the first healthy tray), one
  test after the other, then each GPU of a short tray with that partner;
- ``tray+confirm``: every tray alone at once, then every suspect with its own
  known-good partner at once, then each GPU of a confirmed tray with a partner
  at once;
- ``bisect``: the sequential bisection dcops used before
  (:mod:`burnin.localize_bisect`; one test per stage);
- ``staged``: :func:`burnin.localize.localize` (screen every tray alone, then
  every suspect GPU with a partner, then re-measure only the ambiguous).

Every method decides each test with the same rule and re-measurement (the
profile's ``localize`` band), and is charged by the same books: stages (waves
of concurrent tests), tests (collective calls) and GPU-seconds (members x the
simulated sweep time of every test). ``exact``: the culprits found are the
faulty targets, nothing more, nothing less, nothing left unresolved.
Targets (issue 14): exact >= 99 %, <= 4 stages, GPU-seconds <= partner-scan's.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from burnin.localize import Culprit, Localization, localize, tester
from burnin.localize_bisect import bisect
from burnin.localize_tests import Call, Pending, Tester
from burnin.profiles import Thresholds, load_thresholds
from dcops.measurements import GpuRef
from dcops.ports import CollectiveEngine
from dcops.sim import SimFleet

Trays = Mapping[str, Sequence[GpuRef]]
Method = Callable[[CollectiveEngine, Trays, Thresholds, str], Localization]


def _done(t: Tester, culprits: list[Culprit], method: str) -> Localization:
    return Localization(
        culprits=tuple(culprits),
        stages=t.stages,
        tests=t.tests,
        gpu_seconds=t.gpu_seconds,
        measurements=tuple(t.measurements),
        method=method,
    )


def partner_scan(engine: CollectiveEngine, trays: Trays, th: Thresholds, good: str) -> Localization:
    t = tester(engine, trays, th, timeout_s=60)
    culprits: list[Culprit] = []
    for node in trays:
        if node == good:
            continue
        if not t.measure([*trays[node], *trays[good]]).short:
            continue
        short = [g for g in trays[node] if t.measure([*trays[good], g]).short]
        _blame(node, trays[node], short, culprits)
    return _done(t, culprits, "partner-scan")


def tray_confirm(engine: CollectiveEngine, trays: Trays, th: Thresholds, good: str) -> Localization:
    t = tester(engine, trays, th, timeout_s=60)
    culprits: list[Culprit] = []
    screen = {n: t.pending(trays[n]) for n in trays}
    t.stage(list(screen.values()))
    ok = [n for n, p in screen.items() if t.call(p) is Call.HEALTHY]
    suspects = [n for n in trays if n not in ok]
    if not ok:
        return _done(t, culprits, "tray+confirm")
    confirm = [t.pending([*trays[n], *trays[ok[i % len(ok)]]]) for i, n in enumerate(suspects)]
    t.run_all(confirm)
    confirmed = [n for n, m in zip(suspects, t.settle(confirm), strict=True) if m.short]
    jobs: list[tuple[str, GpuRef, Pending]] = []
    for i, (node, gpu) in enumerate((n, g) for n in confirmed for g in trays[n]):
        jobs.append((node, gpu, t.pending([*trays[ok[i % len(ok)]], gpu])))
    t.run_all([j[2] for j in jobs])
    settled = t.settle([j[2] for j in jobs])
    for node in confirmed:
        short = [g for (n, g, _), m in zip(jobs, settled, strict=True) if n == node and m.short]
        _blame(node, trays[node], short, culprits)
    return _done(t, culprits, "tray+confirm")


def _blame(node: str, gpus: Sequence[GpuRef], short: Sequence[GpuRef], out: list[Culprit]) -> None:
    if short and len(short) < len(gpus):
        out.extend(Culprit(str(g), "gpu") for g in short)
    else:
        out.append(Culprit(node, "tray"))


METHODS: dict[str, Method] = {
    "partner-scan": partner_scan,
    "tray+confirm": tray_confirm,
    "bisect": lambda e, trays, th, good: bisect(e, trays, th, known_short=True, timeout_s=60),
    "staged": lambda e, trays, th, good: localize(e, trays, th, known_short=True, timeout_s=60),
}
CASES = ("1 bad tray", "2 bad trays", "1 bad GPU")


def trial(case: str, seed: int, noise: float) -> tuple[dict[str, object], list[str]]:
    rng = random.Random(seed * 7919 + CASES.index(case))
    k = 2 if case == "2 bad trays" else 1
    bad = sorted(rng.sample(range(1, 19), k))
    faults: list[dict[str, object]] = []
    expected: list[str] = []
    for t in bad:
        fault: dict[str, object] = {
            "node": f"sim-r01-t{t:02d}",
            "kind": "nvlink_degraded",
            "factor": round(rng.uniform(0.5, 0.9), 3),
        }
        if case == "1 bad GPU":
            fault["gpu"] = rng.randrange(4)
            expected.append(f"sim-r01-t{t:02d}:gpu{fault['gpu']}")
        else:
            expected.append(f"sim-r01-t{t:02d}")
        faults.append(fault)
    data = {"sku": "gb200-nvl72", "racks": 1, "seed": seed, "noise": noise, "faults": faults}
    return data, sorted(expected)


def run(trials: int, noise: float, th: Thresholds) -> dict[tuple[str, str], dict[str, float]]:
    out: dict[tuple[str, str], dict[str, float]] = {}
    for case in CASES:
        acc: dict[str, list[tuple[bool, int, int, float]]] = {m: [] for m in METHODS}
        for seed in range(trials):
            data, expected = trial(case, seed, noise)
            bad_nodes = {e.split(":")[0] for e in expected}
            for name, method in METHODS.items():
                fleet = SimFleet.from_dict(data)
                try:
                    trays = {n: fleet.site.gpus(n) for n in fleet.site.nodes()}
                    good = next(n for n in trays if n not in bad_nodes)
                    loc = method(fleet.collectives, trays, th, good)
                finally:
                    fleet.close()
                exact = sorted(c.target for c in loc.culprits) == expected and not loc.unresolved
                acc[name].append((exact, loc.stages, loc.tests, loc.gpu_seconds))
        for name, rows in acc.items():
            out[(case, name)] = {
                "exact": sum(r[0] for r in rows) / len(rows),
                "stages_median": statistics.median(r[1] for r in rows),
                "stages_max": max(r[1] for r in rows),
                "tests_median": statistics.median(r[2] for r in rows),
                "gpu_s_mean": statistics.fmean(r[3] for r in rows),
                "gpu_s_max": max(r[3] for r in rows),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.02)
    args = parser.parse_args()
    th = load_thresholds("gb200-nvl72")
    start = time.perf_counter()
    res = run(args.trials, args.noise, th)
    took = time.perf_counter() - start
    print(
        f"localization on the simulator: 1 GB200 NVL72 rack (18 trays x 4 GPUs), "
        f"noise {args.noise:.0%}, {args.trials} seeded trials per case ({took:.0f} s)"
    )
    head = f"{'case':<12} {'method':<13} {'exact':>7} {'stages med/max':>15} {'tests med':>10}"
    print(head + f" {'GPU-s mean':>11} {'GPU-s max':>10} {'vs scan':>8}")
    for case in CASES:
        scan = res[(case, "partner-scan")]["gpu_s_mean"]
        for name in METHODS:
            r = res[(case, name)]
            stages = f"{r['stages_median']:g}/{r['stages_max']}"
            print(
                f"{case:<12} {name:<13} {r['exact']:>7.1%} {stages:>15} {r['tests_median']:>10g} "
                f"{r['gpu_s_mean']:>11.1f} {r['gpu_s_max']:>10.1f} {r['gpu_s_mean'] / scan:>7.2f}x"
            )
    staged = [res[(c, "staged")] for c in CASES]
    scans = [res[(c, "partner-scan")] for c in CASES]
    worst_exact = min(r["exact"] for r in staged)
    scan_exact = min(r["exact"] for r in scans)
    max_stages = max(r["stages_max"] for r in staged)
    scan_stages = max(r["stages_max"] for r in scans)
    gpu_s = statistics.fmean(r["gpu_s_mean"] for r in staged)
    scan_gpu_s = statistics.fmean(r["gpu_s_mean"] for r in scans)
    print(
        f"RESULT name=localization_exact_worst_case value={worst_exact:.4f} "
        f"baseline={scan_exact:.4f} ratio={worst_exact / scan_exact:.3f}"
    )
    print(
        f"RESULT name=localization_stages_max value={max_stages} baseline={scan_stages} "
        f"ratio={max_stages / scan_stages:.3f}"
    )
    print(
        f"RESULT name=localization_gpu_seconds_mean value={gpu_s:.1f} baseline={scan_gpu_s:.1f} "
        f"ratio={gpu_s / scan_gpu_s:.3f}"
    )


if __name__ == "__main__":
    main()

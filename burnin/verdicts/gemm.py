"""Judge GEMM burns: absolute floors, fleet-relative outliers, silent data corruption.

Input: the rounds of one run (each round is one ``GemmEngine.run`` call over
the GPUs under test, all on the same seed within the round) and the
thresholds. Output: findings, at least one ``gemm`` finding per GPU that ran
(a ``pass`` one carrying its figures when nothing is wrong) and an ``error``
for every expected GPU that returned nothing.

Per GPU:

- ``nan``: any NaN in any round -> fail, whatever else.
- ``rel_error``: above the dtype's bound -> fail (FACTS.md: fp32 well under
  1e-3, tf32 ~3e-4, bf16 1e-3..1e-2).
- ``checksum``: within a round and problem shape, the checksum held by a strict
  majority is the right one; a GPU that disagrees -> fail. Without a strict
  majority nobody can tell which GPUs are right: every GPU of that problem gets
  ``error`` (never pass). A problem run by one GPU has nothing to compare with.
- ``tflops``: the mean over rounds against the absolute floors (fail / warn).
- ``tflops_vs_peers``: the mean against the peers that ran the same dtype and
  shape in this run, by :mod:`burnin.verdicts.robust` (z cut and minimum
  deficit; the warn deficit flags, the fail deficit fails).
- ``tflops_vs_baseline``: the same against a stored baseline (median and MAD
  of per-GPU means from earlier healthy runs of the same rounds and duration),
  so a fleet that is slow as a whole is still caught.

``extra`` holds the re-measurement rounds of some GPUs
(:mod:`burnin.verdicts.remeasure`): they count for a GPU's mean and
correctness, not for the checksum vote (a few GPUs on another seed), and a GPU
measured ``k`` times is judged with the peers' sigma scaled by
``sqrt(k0 / k)`` (``k0``: the fixed rounds).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from burnin.profiles.model import GemmThresholds, PeerRule
from burnin.verdicts.remeasure import precision_factor
from burnin.verdicts.robust import Low, OutlierRule, Spread, score, spread
from burnin.verdicts.status import Finding, Reason, Status, gpu_finding
from dcops.measurements import GemmResult, GpuRef

CHECK = "gemm"
#: Metrics that speak about speed (a throttled GPU that is also slow fails).
SPEED_METRICS = ("tflops", "tflops_vs_peers", "tflops_vs_baseline")

Shape = tuple[str, int, int, int]


def _shape(r: GemmResult) -> Shape:
    return (r.dtype, r.m, r.n, r.k)


def _rule(peers: PeerRule) -> OutlierRule:
    return OutlierRule(peers.z_cut, peers.warn_deficit, peers.min_peers, peers.min_scale_fraction)


def judge_gemm(
    rounds: Sequence[Sequence[GemmResult]],
    thresholds: GemmThresholds,
    *,
    expected: Iterable[GpuRef] = (),
    baseline: Spread | None = None,
    extra: Sequence[Sequence[GemmResult]] = (),
) -> list[Finding]:
    """Findings for every GPU in ``rounds`` and ``expected`` (see the module docstring)."""
    by_gpu: dict[GpuRef, list[GemmResult]] = {}
    for round_results in [*rounds, *extra]:
        for r in round_results:
            by_gpu.setdefault(r.gpu, []).append(r)

    bad: dict[GpuRef, list[Finding]] = {g: [] for g in by_gpu}
    for gpu in expected:
        if gpu not in by_gpu:
            bad[gpu] = [
                gpu_finding(
                    gpu,
                    Status.ERROR,
                    Reason(CHECK, "result", None, None, "no GEMM result (did not run or crashed)"),
                )
            ]

    for gpu, results in by_gpu.items():
        bad[gpu].extend(_correctness(gpu, results, thresholds))
    seen_checksum: set[GpuRef] = set()
    for round_results in rounds:
        for finding in _checksums(round_results):
            gpu = finding.gpus[0]
            if gpu not in seen_checksum:  # one checksum finding per GPU: the first round's
                seen_checksum.add(gpu)
                bad[gpu].append(finding)

    means = _mean_tflops(by_gpu)
    rule = _rule(thresholds.peers)
    fail_deficit = thresholds.peers.fail_deficit
    by_shape: dict[Shape, dict[GpuRef, float]] = {}
    for gpu, results in by_gpu.items():
        if gpu in means:
            by_shape.setdefault(_shape(results[0]), {})[gpu] = means[gpu]
    for shape, table in by_shape.items():
        finite = [v for v in table.values() if math.isfinite(v)]
        peers = spread(finite) if len(finite) >= rule.min_peers else None
        for gpu, mean in table.items():
            factor = precision_factor(len(rounds), len(by_gpu[gpu]))
            bad[gpu].extend(
                _speed(gpu, mean, shape[0], thresholds, peers, baseline, rule, fail_deficit, factor)
            )

    out: list[Finding] = []
    for gpu in sorted(bad):
        found = bad[gpu]
        if not any(f.status is not Status.PASS for f in found):
            mean = means.get(gpu, float("nan"))
            peer_median = _peer_median(by_shape, gpu)
            msg = f"{mean:.4g} TFLOPS over {len(by_gpu[gpu])} round(s)"
            if peer_median is not None:
                msg += f", peers' median {peer_median:.4g}"
            found = [
                *found,
                gpu_finding(gpu, Status.PASS, Reason(CHECK, "tflops", mean, peer_median, msg)),
            ]
        out.extend(found)
    return out


def _peer_median(by_shape: dict[Shape, dict[GpuRef, float]], gpu: GpuRef) -> float | None:
    for table in by_shape.values():
        if gpu in table:
            finite = [v for v in table.values() if math.isfinite(v)]
            return spread(finite).median if finite else None
    return None


def _mean_tflops(by_gpu: dict[GpuRef, list[GemmResult]]) -> dict[GpuRef, float]:
    out: dict[GpuRef, float] = {}
    for gpu, results in by_gpu.items():
        speeds = [r.tflops for r in results if math.isfinite(r.tflops)]
        if speeds:
            out[gpu] = sum(speeds) / len(speeds)
    return out


def _correctness(
    gpu: GpuRef, results: list[GemmResult], thresholds: GemmThresholds
) -> list[Finding]:
    out: list[Finding] = []
    if any(r.has_nan or math.isnan(r.rel_error) for r in results):
        out.append(
            gpu_finding(
                gpu,
                Status.FAIL,
                Reason(CHECK, "nan", "nan", None, "NaN in the GEMM result: corrupt GPU"),
            )
        )
        return out
    worst = max(results, key=lambda r: r.rel_error)
    bound = thresholds.rel_error_max.get(worst.dtype)
    if bound is None:
        out.append(
            gpu_finding(
                gpu,
                Status.ERROR,
                Reason(
                    CHECK,
                    "rel_error",
                    worst.rel_error,
                    None,
                    f"no rel_error bound for dtype {worst.dtype!r}: cannot judge correctness",
                ),
            )
        )
    elif worst.rel_error > bound:
        out.append(
            gpu_finding(
                gpu,
                Status.FAIL,
                Reason(
                    CHECK,
                    "rel_error",
                    worst.rel_error,
                    bound,
                    f"relative error {worst.rel_error:.3g} above the {worst.dtype} bound "
                    f"{bound:.3g}: silent data corruption",
                ),
            )
        )
    if not all(math.isfinite(r.tflops) and r.tflops >= 0 for r in results):
        out.append(
            gpu_finding(
                gpu,
                Status.ERROR,
                Reason(CHECK, "tflops", None, None, "TFLOPS missing or not a number"),
            )
        )
    return out


def _checksums(results: Sequence[GemmResult]) -> list[Finding]:
    """Majority vote on checksums per problem shape within one round."""
    groups: dict[Shape, list[GemmResult]] = {}
    for r in results:
        groups.setdefault(_shape(r), []).append(r)
    out: list[Finding] = []
    for group in groups.values():
        counts = Counter(r.checksum for r in group)
        if len(counts) <= 1:
            continue
        majority, votes = counts.most_common(1)[0]
        if 2 * votes > len(group):
            for r in group:
                if r.checksum != majority:
                    msg = (
                        f"checksum {r.checksum} differs from the {votes} of {len(group)} GPUs "
                        f"that agree on {majority}: silent data corruption"
                    )
                    reason = Reason(CHECK, "checksum", r.checksum, majority, msg)
                    out.append(gpu_finding(r.gpu, Status.FAIL, reason))
            continue
        for r in group:
            msg = (
                f"{len(counts)} different checksums over {len(group)} GPUs and no majority: "
                "cannot tell which are corrupt"
            )
            out.append(
                gpu_finding(r.gpu, Status.ERROR, Reason(CHECK, "checksum", r.checksum, None, msg))
            )
    return out


def _speed(
    gpu: GpuRef,
    mean: float,
    dtype: str,
    thresholds: GemmThresholds,
    peers: Spread | None,
    baseline: Spread | None,
    rule: OutlierRule,
    fail_deficit: float,
    sigma_factor: float = 1.0,
) -> list[Finding]:
    out: list[Finding] = []
    fail_floor = thresholds.floor_fail_tflops.get(dtype, 0.0)
    warn_floor = thresholds.floor_warn_tflops.get(dtype, 0.0)
    if mean < fail_floor:
        msg = f"{mean:.4g} TFLOPS is below the {dtype} fail floor {fail_floor:.4g}"
        out.append(gpu_finding(gpu, Status.FAIL, Reason(CHECK, "tflops", mean, fail_floor, msg)))
    elif mean < warn_floor:
        msg = f"{mean:.4g} TFLOPS is below the {dtype} warn floor {warn_floor:.4g}"
        out.append(gpu_finding(gpu, Status.WARN, Reason(CHECK, "tflops", mean, warn_floor, msg)))
    for metric, ref, who in (
        ("tflops_vs_peers", peers, "its peers' median"),
        ("tflops_vs_baseline", baseline, "the baseline median"),
    ):
        if ref is None:
            continue
        low = score(mean, ref, rule, sigma_factor)
        if low is not None:
            out.append(_low_finding(gpu, metric, low, who, fail_deficit))
    return out


def _low_finding(gpu: GpuRef, metric: str, low: Low, who: str, fail_deficit: float) -> Finding:
    status = Status.FAIL if low.deficit >= fail_deficit else Status.WARN
    msg = (
        f"{low.value:.4g} TFLOPS is {100 * low.deficit:.1f}% below {who} "
        f"{low.median:.4g} (robust z {low.z:.1f})"
    )
    return gpu_finding(gpu, status, Reason(CHECK, metric, low.value, low.median, msg))


def slow_gpus(findings: Iterable[Finding]) -> set[GpuRef]:
    """GPUs with a non-passing GEMM speed finding (for the throttle cross-check)."""
    return {
        f.gpus[0]
        for f in findings
        if f.check == CHECK
        and f.reason.metric in SPEED_METRICS
        and f.status is not Status.PASS
        and len(f.gpus) == 1
    }

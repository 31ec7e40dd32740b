"""Adaptive GEMM re-measurement: which GPUs to burn again after the fixed rounds.

At high noise the fixed rounds leave some GPUs *ambiguous*: below their peers
by more than noise usually explains, not enough to flag. More rounds for every
GPU multiply the burn for all to help a few; here only those GPUs burn again,
one round at a time, as a sequential test:

- after the fixed rounds, a GPU that is not flagged (robust z below
  ``z_cut`` or deficit below ``warn_deficit``) is *ambiguous* when its z is
  at least ``z_low`` and its deficit at least ``min_deficit``;
- after each further round, its z over all its rounds decides: below
  ``z_low`` (or deficit below ``min_deficit``) it is cleared, at least
  ``z_high`` it is decisively low; in between it burns again, at most
  ``max_rounds`` more rounds (the cap).

The z of a GPU measured ``k`` times is taken against the peers' spread of
``k0``-round means (``k0``: the fixed rounds) scaled by ``sqrt(k0 / k)``: the
standard error of a mean of ``k`` rounds. :func:`burnin.verdicts.gemm.judge_gemm`
judges with the same scaling, so the verdict is the usual rule (``z_cut``,
warn / fail deficits) applied at the precision each GPU was measured to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from burnin.profiles.model import GemmThresholds
from burnin.verdicts.robust import spread
from dcops.measurements import GemmResult, GpuRef


def precision_factor(fixed_rounds: int, rounds: int) -> float:
    """How much smaller the standard error of a ``rounds``-round mean is: sqrt(k0 / k).

    1 for a GPU measured no more than the fixed rounds (one that missed a round
    is judged as its peers are).
    """
    if fixed_rounds <= 0 or rounds <= fixed_rounds:
        return 1.0
    return math.sqrt(fixed_rounds / rounds)


def undecided(
    by_gpu: Mapping[GpuRef, Sequence[GemmResult]],
    thresholds: GemmThresholds,
    *,
    fixed_rounds: int,
    extra: Mapping[GpuRef, int],
) -> list[GpuRef]:
    """The GPUs to burn once more (see the module docstring); ``extra``: rounds re-run so far."""
    rule = thresholds.remeasure
    peers = thresholds.peers
    if rule.max_rounds <= 0:
        return []
    tables: dict[tuple[str, int, int, int], dict[GpuRef, float]] = {}
    for gpu, results in by_gpu.items():
        speeds = [r.tflops for r in results if math.isfinite(r.tflops)]
        if speeds and len(speeds) == len(results):
            r0 = results[0]
            tables.setdefault((r0.dtype, r0.m, r0.n, r0.k), {})[gpu] = sum(speeds) / len(speeds)
    out: list[GpuRef] = []
    for table in tables.values():
        if len(table) < peers.min_peers:
            continue
        ref = spread(list(table.values()))
        if ref.median <= 0:
            continue
        base_sigma = ref.sigma(peers.min_scale_fraction)
        for gpu, mean in table.items():
            done = extra.get(gpu, 0)
            if done >= rule.max_rounds:
                continue
            sigma = base_sigma * precision_factor(fixed_rounds, len(by_gpu[gpu]))
            z = (ref.median - mean) / sigma if sigma > 0 else 0.0
            deficit = (ref.median - mean) / ref.median
            if z < rule.z_low or deficit < rule.min_deficit:
                continue
            if done == 0:
                if z >= peers.z_cut and deficit >= peers.warn_deficit:
                    continue  # flagged by the fixed rounds: not ambiguous
                out.append(gpu)
            elif z < rule.z_high:
                out.append(gpu)
    return sorted(out)

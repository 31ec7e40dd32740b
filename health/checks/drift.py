"""``drift``: driver, CUDA and VBIOS versions vs the site baseline.

Command: ``nvidia-smi -q -x`` (``driver_version``, ``cuda_version``, per GPU
``vbios_version``; the text report is read too). Only the keys present in
``facts.baseline`` are compared: ``driver_version``, ``cuda_version``,
``vbios_version`` (other keys belong to other checks and are ignored). A
difference, or a version the node does not report, -> warn stating both values.
"""

from __future__ import annotations

from collections.abc import Sequence

from dcops.measurements import CommandResult
from health.base import CheckResult, NodeFacts, register_check
from health.checks._common import (
    Finder,
    expect_results,
    finder,
    first_line,
    read_smi,
)

NODE_KEYS = {"driver_version": "driver version", "cuda_version": "cuda version"}
GPU_KEYS = {"vbios_version": "vbios version"}


@register_check("drift")
class DriftCheck:
    name = "drift"
    description = "driver / CUDA / VBIOS versions vs the site baseline"
    needs_nvidia_gpus = True

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        return [["nvidia-smi", "-q", "-x"]]

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        find = finder(self.name, facts)
        wrong = expect_results(find, results, 1)
        if wrong is not None:
            return [wrong]
        wanted = {k: str(v) for k, v in facts.baseline.items() if k in NODE_KEYS or k in GPU_KEYS}
        if not wanted:
            return [find.ok("no driver/CUDA/VBIOS baseline for this node: nothing compared")]
        (smi,) = results
        log = read_smi(find, smi, require_gpus=False)
        if isinstance(log, CheckResult):
            return [log]
        xml = log.format == "xml"
        out: list[CheckResult] = []
        for key, label in NODE_KEYS.items():
            if key in wanted:
                have = log.top.get(key if xml else label)
                out.extend(_compare(find, key, wanted[key], have, None))
        for key, label in GPU_KEYS.items():
            if key not in wanted:
                continue
            if not log.gpus:
                return [find.error(f"no GPU in nvidia-smi output: {first_line(smi)}")]
            for gpu in log.gpus:
                out.extend(
                    _compare(find, key, wanted[key], gpu.get(key if xml else label), gpu.index)
                )
        if not out:
            listed = ", ".join(f"{k} {v}" for k, v in sorted(wanted.items()))
            return [find.ok(f"matches the baseline: {listed}")]
        return out


def _compare(
    find: Finder, key: str, want: str, have: str | None, gpu: int | None
) -> list[CheckResult]:
    if have is not None and have.strip() == want.strip():
        return []
    where = f"GPU {gpu}: " if gpu is not None else ""
    shown = have if have not in (None, "") else "not reported"
    return [
        find.warn(
            f"{where}{key} {shown}, baseline {want}",
            gpu=gpu,
            metric=key,
            value=have,
            threshold=want,
            action="update to the site baseline (or update the baseline)",
        )
    ]

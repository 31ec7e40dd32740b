"""``throttle``: clocks-event (throttle) reasons and SM clocks far below the SKU's maximum.

Command: ``nvidia-smi -q -x`` (``clocks_event_reasons``, or
``clocks_throttle_reasons`` before driver 535; the text report is read too).

- An active reason among ``throttle_reasons`` (default ``hw_slowdown``,
  ``hw_thermal_slowdown``, ``hw_power_brake_slowdown``, ``sw_thermal_slowdown``:
  the hardware protecting itself, not a policy) -> warn.
- A busy GPU (utilisation >= ``throttle_busy_util_pct``, default 50) whose SM
  clock is below ``throttle_sm_clock_min_ratio`` (default 0.6) x the SKU's
  ``max_sm_clock_mhz`` (:mod:`dcops.skus`; the GPU's reported max clock when
  the SKU is unknown) -> warn.
"""

from __future__ import annotations

from collections.abc import Sequence

from dcops.measurements import CommandResult
from health.base import CheckResult, NodeFacts, register_check
from health.checks._common import (
    BadThreshold,
    expect_results,
    finder,
    leading_number,
    read_smi,
    sku_profile,
    threshold_list,
    threshold_number,
)
from health.checks._smi import SmiGpu

DEFAULT_REASONS = (
    "hw_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
    "sw_thermal_slowdown",
)
DEFAULT_BUSY_UTIL_PCT = 50.0
DEFAULT_SM_CLOCK_MIN_RATIO = 0.6

#: reason (the XML tag suffix) -> its label in the text report.
_KNOWN_REASONS = {
    "gpu_idle": "idle",
    "applications_clocks_setting": "applications clocks setting",
    "sw_power_cap": "sw power cap",
    "hw_slowdown": "hw slowdown",
    "hw_thermal_slowdown": "hw thermal slowdown",
    "hw_power_brake_slowdown": "hw power brake slowdown",
    "sync_boost": "sync boost",
    "sw_thermal_slowdown": "sw thermal slowdown",
    "display_clocks_setting": "display clock setting",
}


def active_reasons(gpu: SmiGpu, form: str) -> dict[str, bool] | None:
    """Each reported reason -> active; None when the GPU reports no reasons section."""
    found: dict[str, bool] = {}
    for reason, label in _KNOWN_REASONS.items():
        if form == "xml":
            keys = [
                f"clocks_event_reasons/clocks_event_reason_{reason}",
                f"clocks_throttle_reasons/clocks_throttle_reason_{reason}",
            ]
        else:
            keys = [f"clocks event reasons/{label}", f"clocks throttle reasons/{label}"]
        value = gpu.get(*keys)
        if value is None:
            continue
        word = value.strip().lower()
        if word == "active":
            found[reason] = True
        elif word == "not active":
            found[reason] = False
    return found or None


def _clock_fields(gpu: SmiGpu, form: str) -> tuple[float | None, float | None, float | None]:
    """(utilisation %, SM clock MHz, reported max SM clock MHz)."""
    if form == "xml":
        return (
            leading_number(gpu.get("utilization/gpu_util")),
            leading_number(gpu.get("clocks/sm_clock")),
            leading_number(gpu.get("max_clocks/sm_clock")),
        )
    return (
        leading_number(gpu.get("utilization/gpu")),
        leading_number(gpu.get("clocks/sm")),
        leading_number(gpu.get("max clocks/sm")),
    )


@register_check("throttle")
class ThrottleCheck:
    name = "throttle"
    description = "hardware throttle reasons; SM clock far below the SKU maximum while busy"
    needs_nvidia_gpus = True

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        return [["nvidia-smi", "-q", "-x"]]

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        find = finder(self.name, facts)
        wrong = expect_results(find, results, 1)
        if wrong is not None:
            return [wrong]
        try:
            warn_reasons = threshold_list(facts, "throttle_reasons", DEFAULT_REASONS, str)
            busy_pct = threshold_number(facts, "throttle_busy_util_pct", DEFAULT_BUSY_UTIL_PCT)
            ratio = threshold_number(
                facts, "throttle_sm_clock_min_ratio", DEFAULT_SM_CLOCK_MIN_RATIO
            )
        except BadThreshold as exc:
            return [find.error(str(exc))]
        (smi,) = results
        log = read_smi(find, smi)
        if isinstance(log, CheckResult):
            return [log]
        profile = sku_profile(facts)
        sku_max = profile.gpu.max_sm_clock_mhz if profile and profile.gpu.max_sm_clock_mhz else None
        out: list[CheckResult] = []
        for gpu in log.gpus:
            reasons = active_reasons(gpu, log.format)
            if reasons is None:
                out.append(find.error(f"GPU {gpu.index}: no clocks event reasons", gpu=gpu.index))
                continue
            active = sorted(r for r, on in reasons.items() if on)
            bad = [r for r in active if r in warn_reasons]
            if bad:
                out.append(
                    find.warn(
                        f"GPU {gpu.index}: throttled by {', '.join(bad)}",
                        gpu=gpu.index,
                        metric="clocks_event_reasons",
                        value=bad,
                        action="check cooling / power delivery of the tray",
                        evidence={"active": active},
                    )
                )
            util, clock, reported_max = _clock_fields(gpu, log.format)
            max_mhz = sku_max or reported_max
            if util is None or clock is None or not max_mhz or util < busy_pct:
                continue
            if clock < ratio * max_mhz:
                out.append(
                    find.warn(
                        f"GPU {gpu.index}: SM clock {clock:.0f} MHz at {util:.0f}% load, "
                        f"below {ratio:g} x {max_mhz:.0f} MHz",
                        gpu=gpu.index,
                        metric="sm_clock_mhz",
                        value=clock,
                        threshold=ratio * max_mhz,
                        action="check cooling / power delivery of the tray",
                        evidence={"active": active, "utilization_pct": util},
                    )
                )
        if not out:
            return [find.ok(f"{len(log.gpus)} GPUs: no hardware throttling")]
        return out

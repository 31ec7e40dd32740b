"""throttle check: clocks-event reasons (v12 and pre-535 tags, text report), low SM clock."""

from __future__ import annotations

from collections.abc import Set

from dcops.measurements import CommandResult
from health.base import CheckResult, CheckStatus, NodeFacts, get_check

FACTS = NodeFacts("n1", "gb200-nvl72", 2)  # max SM clock 2062 MHz
REASONS = (
    "gpu_idle", "applications_clocks_setting", "sw_power_cap", "hw_slowdown",
    "hw_thermal_slowdown", "hw_power_brake_slowdown", "sync_boost", "sw_thermal_slowdown",
    "display_clocks_setting",
)  # fmt: skip


def gpu(active: Set[str] = frozenset(), *, util: str = "0 %", sm: str = "2062 MHz",
        tag: str = "clocks_event_reason") -> str:  # fmt: skip
    section = tag + "s"
    reasons = "".join(
        f"<{tag}_{r}>{'Active' if r in active else 'Not Active'}</{tag}_{r}>" for r in REASONS
    )
    return (
        f"<gpu id='x'><{section}>{reasons}</{section}>"
        f"<utilization><gpu_util>{util}</gpu_util></utilization>"
        f"<clocks><sm_clock>{sm}</sm_clock></clocks>"
        "<max_clocks><sm_clock>2062 MHz</sm_clock></max_clocks></gpu>"
    )


def judge(stdout: str, facts: NodeFacts = FACTS, rc: int = 0) -> list[CheckResult]:
    result = CommandResult("n1", ("nvidia-smi", "-q", "-x"), rc, stdout, "", 0.1)
    return get_check("throttle").judge([result], facts)


def log(*gpus: str) -> str:
    return "<nvidia_smi_log>" + "".join(gpus) + "</nvidia_smi_log>"


def test_idle_and_power_cap_are_not_warnings() -> None:
    (res,) = judge(log(gpu({"gpu_idle"}), gpu({"sw_power_cap"}, util="100 %", sm="1900 MHz")))
    assert res.status is CheckStatus.OK


def test_hardware_reasons_warn_per_gpu() -> None:
    found = judge(log(gpu(), gpu({"hw_thermal_slowdown", "sw_thermal_slowdown"})))
    (res,) = found
    assert (res.status, res.gpu, res.fatal) == (CheckStatus.WARN, 1, False)
    assert res.value == ["hw_thermal_slowdown", "sw_thermal_slowdown"]


def test_pre_535_throttle_tags_are_read() -> None:
    (res,) = judge(log(gpu({"hw_power_brake_slowdown"}, tag="clocks_throttle_reason")))
    assert res.status is CheckStatus.WARN and res.value == ["hw_power_brake_slowdown"]


def test_low_clock_when_busy_warns_against_the_sku() -> None:
    (res,) = judge(log(gpu(util="95 %", sm="1000 MHz")))
    assert (res.status, res.metric, res.value) == (CheckStatus.WARN, "sm_clock_mhz", 1000.0)
    assert res.threshold == 0.6 * 2062
    (res,) = judge(log(gpu(util="10 %", sm="1000 MHz")))  # not busy: clocks may be low
    assert res.status is CheckStatus.OK
    strict = NodeFacts("n1", "gb200-nvl72", 2, thresholds={"throttle_sm_clock_min_ratio": 0.9})
    (res,) = judge(log(gpu(util="95 %", sm="1800 MHz")), strict)
    assert res.status is CheckStatus.WARN


def test_unknown_sku_uses_reported_max_clock() -> None:
    facts = NodeFacts("n1", "no-such-sku", 1)
    (res,) = judge(log(gpu(util="95 %", sm="1000 MHz")), facts)
    assert res.status is CheckStatus.WARN and res.threshold == 0.6 * 2062


def test_text_report_reasons() -> None:
    text = """
==============NVSMI LOG==============

Driver Version                            : 570.133.20
Attached GPUs                             : 1
GPU 00000008:01:00.0
    Clocks Event Reasons
        Idle                              : Not Active
        Applications Clocks Setting       : Not Active
        SW Power Cap                      : Not Active
        HW Slowdown                       : Active
            HW Thermal Slowdown           : Active
            HW Power Brake Slowdown       : Not Active
        Sync Boost                        : Not Active
        SW Thermal Slowdown               : Not Active
        Display Clock Setting             : Not Active
"""
    (res,) = judge(text)
    assert res.status is CheckStatus.WARN and res.value == ["hw_slowdown", "hw_thermal_slowdown"]


def test_missing_reasons_or_garbage_is_an_error() -> None:
    (res,) = judge(log("<gpu id='x'><product_name>X</product_name></gpu>"))
    assert res.status is CheckStatus.ERROR
    for text in ("", "nope", "<nvidia_smi_log/>"):
        (res,) = judge(text)
        assert res.status is CheckStatus.ERROR

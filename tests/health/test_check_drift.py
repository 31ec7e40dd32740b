"""drift check: driver / CUDA / VBIOS versions vs the baseline, both values stated."""

from __future__ import annotations

from dcops.measurements import CommandResult
from health.base import CheckResult, CheckStatus, NodeFacts, get_check

XML = (
    "<nvidia_smi_log><driver_version>570.133.20</driver_version><cuda_version>12.8</cuda_version>"
    "<gpu id='a'><vbios_version>97.00.82.00.1F</vbios_version></gpu>"
    "<gpu id='b'><vbios_version>97.00.82.00.0A</vbios_version></gpu></nvidia_smi_log>"
)
TEXT = """
==============NVSMI LOG==============

Driver Version                            : 535.86.10
CUDA Version                              : 12.2
Attached GPUs                             : 1
GPU 00000001:00:00.0
    VBIOS Version                         : 92.00.45.00.03
"""


def judge(baseline: dict[str, str], stdout: str = XML) -> list[CheckResult]:
    facts = NodeFacts("n1", "gb200-nvl72", 2, baseline=baseline)
    result = CommandResult("n1", ("nvidia-smi", "-q", "-x"), 0, stdout, "", 0.1)
    return get_check("drift").judge([result], facts)


def test_no_baseline_is_ok() -> None:
    (res,) = judge({"unrelated": "x"})
    assert res.status is CheckStatus.OK and "nothing compared" in res.message


def test_matching_baseline_is_ok() -> None:
    (res,) = judge({"driver_version": "570.133.20", "cuda_version": "12.8"})
    assert res.status is CheckStatus.OK


def test_drift_warns_with_both_values() -> None:
    found = judge(
        {"driver_version": "575.57.08", "cuda_version": "12.8", "vbios_version": "97.00.82.00.1F"}
    )
    assert [(r.metric, r.gpu, r.value, r.threshold) for r in found] == [
        ("driver_version", None, "570.133.20", "575.57.08"),
        ("vbios_version", 1, "97.00.82.00.0A", "97.00.82.00.1F"),
    ]
    assert all(r.status is CheckStatus.WARN for r in found)
    assert "570.133.20" in found[0].message and "575.57.08" in found[0].message


def test_text_report_and_unreported_version() -> None:
    (res,) = judge({"driver_version": "535.86.10", "vbios_version": "92.00.45.00.03"}, TEXT)
    assert res.status is CheckStatus.OK
    (res,) = judge({"cuda_version": "12.8"}, "<nvidia_smi_log><gpu id='a'/></nvidia_smi_log>")
    assert res.status is CheckStatus.WARN and "not reported" in res.message


def test_garbage_is_an_error() -> None:
    (res,) = judge({"driver_version": "1"}, "garbage")
    assert res.status is CheckStatus.ERROR

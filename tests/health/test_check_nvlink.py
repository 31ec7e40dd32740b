"""nvlink check: captured `nvidia-smi nvlink --status` (good/bad A100), counters, fabric."""

from __future__ import annotations

import pytest

from dcops.measurements import CommandResult
from health.base import CheckResult, CheckStatus, NodeFacts, get_check
from health.checks.nvlink import (
    NvlinkParseError,
    parse_nvlink_errors,
    parse_nvlink_status,
)
from tests.conftest import data_file

SMI = "burnin/nvidia-smi"
A100 = NodeFacts(node="n1", sku="a100-unknown", expected_gpus=8)

ERRORS = """GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-abcdefab-cdef-abdc-abcd-abababababab)
         Link 0: Replay Errors: 0
         Link 0: Recovery Errors: 0
         Link 0: CRC Errors: 0

         Link 1: Replay Errors: 12
         Link 1: Recovery Errors: N/A
         Link 1: CRC Flit Errors: 512
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb2222-3333-4444-5555-666666666666)
         Link 0: Replay Errors: 0
"""


def res(argv: tuple[str, ...], stdout: str, rc: int = 0) -> CommandResult:
    return CommandResult("n1", argv, rc, stdout, "", 0.1)


def fabric_xml(state: str = "Completed", status: str = "Success") -> str:
    return (
        "<nvidia_smi_log><gpu id='00000001:01:00.0'><fabric>"
        f"<state>{state}</state><status>{status}</status><cliqueId>1</cliqueId>"
        "</fabric></gpu></nvidia_smi_log>"
    )


def judge(
    status: str, errors: str = "", xml: str = "", facts: NodeFacts = A100
) -> list[CheckResult]:
    return get_check("nvlink").judge(
        [
            res(("nvidia-smi", "nvlink", "--status"), status),
            res(("nvidia-smi", "nvlink", "-e"), errors),
            res(("nvidia-smi", "-q", "-x"), xml or "<nvidia_smi_log/>"),
        ],
        facts,
    )


def test_good_fixture_twelve_links_at_25() -> None:
    text = data_file(f"{SMI}/nvidia_smi_nvlink_status_good_a100_aznhc.txt").read_text()
    (gpu,) = parse_nvlink_status(text)
    assert (gpu.index, gpu.name) == (7, "NVIDIA A100-SXM4-80GB")
    assert gpu.links == {i: 25.0 for i in range(12)}
    assert not gpu.all_inactive
    facts = NodeFacts("n1", "a100", 8, thresholds={"nvlink_links_expected": 12})
    (only,) = judge(text, facts=facts)
    assert only.status is CheckStatus.OK
    assert only.value == 12


def test_bad_fixture_all_links_inactive_fails() -> None:
    text = data_file(f"{SMI}/nvidia_smi_nvlink_status_bad_a100_aznhc.txt").read_text()
    (gpu,) = parse_nvlink_status(text)
    assert (gpu.index, gpu.all_inactive, gpu.links) == (6, True, {})
    (bad,) = judge(text)
    assert (bad.status, bad.gpu, bad.fatal) == (CheckStatus.FAIL, 6, False)
    assert "all links inactive" in bad.message


def test_inactive_and_missing_links_against_the_sku() -> None:
    # gb200-nvl72: 18 links of 50 GB/s each.
    lines = [f"\t Link {i}: 50 GB/s" for i in range(16)] + ["\t Link 16: <inactive>"]
    text = "GPU 0: NVIDIA GB200 (UUID: GPU-1)\n" + "\n".join(lines) + "\n"
    facts = NodeFacts("n1", "gb200-nvl72", 4)
    (bad,) = judge(text, facts=facts)
    assert bad.status is CheckStatus.FAIL
    assert (bad.value, bad.threshold) == (16, 18)
    assert "16 of 18 links active (inactive: 16)" in bad.message


def test_slow_links_warn() -> None:
    lines = [f"\t Link {i}: {25 if i == 3 else 50} GB/s" for i in range(18)]
    text = "GPU 2: NVIDIA GB200 (UUID: GPU-1)\n" + "\n".join(lines) + "\n"
    (warn,) = judge(text, facts=NodeFacts("n1", "gb200-nvl72", 4))
    assert (warn.status, warn.gpu, warn.value, warn.threshold) == (CheckStatus.WARN, 2, 25.0, 45.0)


def test_error_counters_parse_and_warn_over_threshold() -> None:
    counters = parse_nvlink_errors(ERRORS)
    assert counters[0][1] == {"Replay Errors": 12, "CRC Flit Errors": 512}
    assert counters[1] == {0: {"Replay Errors": 0}}
    status = "GPU 0: H100 (UUID: GPU-1)\n\t Link 0: 26.562 GB/s\n\t Link 1: 26.562 GB/s\n"
    found = judge(status, ERRORS)
    (warn,) = found
    assert (warn.status, warn.gpu, warn.value) == (CheckStatus.WARN, 0, 512)
    assert "link 1 CRC Flit Errors 512" in warn.message
    facts = NodeFacts("n1", "x", 8, thresholds={"nvlink_errors_max": 5})
    (warn,) = judge(status, ERRORS, facts=facts)
    assert "Replay Errors 12" in warn.message


def test_fabric_state_must_be_completed_success() -> None:
    status = "GPU 0: NVIDIA GB200 (UUID: GPU-1)\n" + "".join(
        f"\t Link {i}: 50 GB/s\n" for i in range(18)
    )
    facts = NodeFacts("n1", "gb200-nvl72", 1)
    (ok,) = judge(status, xml=fabric_xml(), facts=facts)
    assert ok.status is CheckStatus.OK and "fabric Completed" in ok.message
    (bad,) = judge(status, xml=fabric_xml("In Progress", "N/A"), facts=facts)
    assert bad.status is CheckStatus.FAIL and bad.metric == "fabric_state"
    (bad,) = judge(status, xml=fabric_xml("Completed", "Failure"), facts=facts)
    assert bad.status is CheckStatus.FAIL
    (ok,) = judge(status, xml=fabric_xml("N/A", "N/A"), facts=facts)
    assert ok.status is CheckStatus.OK


@pytest.mark.parametrize(
    "text", ["garbage", "Link 0: 25 GB/s", "GPU 0: X (UUID: 1)\n  Link 0: fast"]
)
def test_unparsable_status_is_an_error(text: str) -> None:
    with pytest.raises(NvlinkParseError):
        parse_nvlink_status(text)
    found = judge(text)
    assert any(r.status is CheckStatus.ERROR for r in found)
    assert not any(r.status is CheckStatus.OK for r in found)


def test_empty_status_is_an_error() -> None:
    (err,) = judge("")
    assert err.status is CheckStatus.ERROR

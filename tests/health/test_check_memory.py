"""memory check: captured retired-pages reports (good/bad), XML remapped rows and ECC."""

from __future__ import annotations

from dcops.measurements import CommandResult
from health.base import CheckResult, CheckStatus, NodeFacts, get_check
from health.checks._smi import parse_smi
from health.checks.memory import memory_fields
from tests.conftest import data_file

SMI = "burnin/nvidia-smi"
FACTS = NodeFacts(node="n1", sku="gb200-nvl72", expected_gpus=8)


def smi(stdout: str, rc: int = 0, stderr: str = "") -> CommandResult:
    return CommandResult("n1", ("nvidia-smi", "-q", "-x"), rc, stdout, stderr, 0.1)


def xml_gpu(index: int, *, ue: str = "0", pending: str = "No", failure: str = "No") -> str:
    return f"""
  <gpu id="0000000{index + 1}:01:00.0">
    <product_name>NVIDIA GB200</product_name>
    <ecc_errors>
      <volatile>
        <sram_correctable>0</sram_correctable>
        <sram_uncorrectable_parity>0</sram_uncorrectable_parity>
        <sram_uncorrectable_secded>0</sram_uncorrectable_secded>
        <dram_correctable>3</dram_correctable>
        <dram_uncorrectable>{ue}</dram_uncorrectable>
      </volatile>
      <aggregate>
        <dram_uncorrectable>7</dram_uncorrectable>
      </aggregate>
    </ecc_errors>
    <retired_pages>
      <multiple_single_bit_retirement><retired_count>N/A</retired_count></multiple_single_bit_retirement>
      <double_bit_retirement><retired_count>N/A</retired_count></double_bit_retirement>
      <pending_blacklist>N/A</pending_blacklist>
      <pending_retirement>N/A</pending_retirement>
    </retired_pages>
    <remapped_rows>
      <remapped_row_corr>0</remapped_row_corr>
      <remapped_row_unc>0</remapped_row_unc>
      <remapped_row_pending>{pending}</remapped_row_pending>
      <remapped_row_failure>{failure}</remapped_row_failure>
    </remapped_rows>
  </gpu>"""


def xml(*gpus: str) -> str:
    return (
        '<?xml version="1.0" ?>\n<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">\n'
        "<nvidia_smi_log><driver_version>570.133.20</driver_version>"
        + "".join(gpus)
        + "</nvidia_smi_log>\n"
    )


def judge(stdout: str, facts: NodeFacts = FACTS) -> list[CheckResult]:
    return get_check("memory").judge([smi(stdout)], facts)


def test_good_retired_pages_fixture_parses_and_is_ok() -> None:
    text = data_file(f"{SMI}/nvidia_smi_q_retired_pages_8gpu_aznhc.txt").read_text()
    log = parse_smi(text)
    assert log.format == "text"
    assert log.top["driver version"] == "535.86.10"
    assert log.top["cuda version"] == "12.2"
    assert [g.bus_id for g in log.gpus] == [f"0000000{i}:00:00.0" for i in range(1, 9)]
    mems = [memory_fields(g, "text") for g in log.gpus]
    assert all((m.retired_sbe, m.retired_dbe, m.retirement_pending) == (0, 0, False) for m in mems)
    (only,) = judge(text)
    assert only.status is CheckStatus.OK
    assert "8 GPUs" in only.message


def test_bad_retired_pages_fixture_values_and_findings() -> None:
    text = data_file(f"{SMI}/nvidia_smi_q_retired_pages_8gpu_BAD_aznhc.txt").read_text()
    mems = [memory_fields(g, "text") for g in parse_smi(text).gpus]
    assert [(m.retired_sbe, m.retired_dbe, m.retirement_pending) for m in mems] == [
        (60, 5, False),
        (2, 61, True),
        (0, 0, False),
        (6, 0, True),
        (0, 0, False),
        (20, 45, True),
        (0, 0, False),
        (8, 56, True),
    ]
    found = judge(text)
    fails = {(r.gpu, r.value) for r in found if r.status is CheckStatus.FAIL}
    warns = {r.gpu for r in found if r.status is CheckStatus.WARN}
    assert fails == {(0, 65), (1, 63), (5, 65), (7, 64)}
    assert warns == {1, 3, 5, 7}  # retirement pending
    assert not any(r.fatal for r in found)  # retired pages: a service case, not a drain
    assert all(r.threshold == 60 for r in found if r.status is CheckStatus.FAIL)


def test_retired_pages_threshold_is_overridable() -> None:
    text = data_file(f"{SMI}/nvidia_smi_q_retired_pages_8gpu_BAD_aznhc.txt").read_text()
    facts = NodeFacts("n1", "gb200-nvl72", 8, thresholds={"memory_retired_pages_max": 5})
    fails = {r.gpu for r in judge(text, facts) if r.status is CheckStatus.FAIL}
    assert fails == {0, 1, 3, 5, 7}


def test_xml_healthy_gpus_are_ok_and_na_retired_pages_not_judged() -> None:
    (only,) = judge(xml(xml_gpu(0), xml_gpu(1)))
    assert only.status is CheckStatus.OK


def test_xml_uncorrectable_ecc_is_fatal_fail_with_action() -> None:
    found = judge(xml(xml_gpu(0), xml_gpu(1, ue="2")))
    (bad,) = found
    assert (bad.status, bad.fatal, bad.gpu, bad.value) == (CheckStatus.FAIL, True, 1, 2)
    assert bad.metric == "ecc_uncorrectable"
    assert "drain" in bad.action


def test_xml_remap_failed_fatal_and_pending_warn() -> None:
    found = judge(xml(xml_gpu(0, pending="Yes"), xml_gpu(1, failure="Yes")))
    by_gpu = {r.gpu: r for r in found}
    assert by_gpu[0].status is CheckStatus.WARN and not by_gpu[0].fatal
    assert "reset" in by_gpu[0].action
    assert by_gpu[1].status is CheckStatus.FAIL and by_gpu[1].fatal


def test_unparsable_and_lost_gpu_are_errors_never_ok() -> None:
    for text in ("", "garbage", "<nvidia_smi_log><gpu>", "<other/>"):
        (res,) = judge(text)
        assert res.status is CheckStatus.ERROR, text
    lost = smi("Unable to determine the device handle for GPU00000002:01:00.0: Unknown Error\n", 15)
    (res,) = get_check("memory").judge([lost], FACTS)
    assert res.status is CheckStatus.ERROR and "lost" in res.message
    (res,) = get_check("memory").judge([smi("", 127)], FACTS)
    assert res.status is CheckStatus.ERROR
    (res,) = judge(xml())
    assert res.status is CheckStatus.ERROR  # no GPU at all


def test_bad_threshold_is_an_error() -> None:
    facts = NodeFacts("n1", "gb200-nvl72", 8, thresholds={"memory_retired_pages_max": "lots"})
    (res,) = judge(xml(xml_gpu(0)), facts)
    assert res.status is CheckStatus.ERROR and "memory_retired_pages_max" in res.message

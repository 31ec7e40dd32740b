"""dcgmi diag parser: captured DCGM 4.2.3 JSON and 3.x text, constructed 3.x JSON / 4.x text."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.dcgm.diag import DcgmDiagResult, normalize_status, parse_dcgm_diag
from dcops.errors import InputError
from tests.conftest import data_file

DCGM = "burnin/dcgm"


def _parse(name: str) -> DcgmDiagResult:
    path = data_file(f"{DCGM}/{name}")
    return parse_dcgm_diag(path.read_text(), source=path.name)


# -- captured fixtures ---------------------------------------------------------------


def test_dcgm4_json_r1_gb10_persistence_mode_failure() -> None:
    result = _parse("dcgmi_diag_r1_json_dcgm4.2.3_gb10.json")
    assert result.format == "json-4"
    assert result.dcgm_version == "4.2.3"
    assert result.driver_version == "580.82.09"
    (gpu,) = result.gpus
    assert (gpu.index, gpu.device_id, gpu.entity_group) == (0, "2e12", "GPU")
    assert gpu.serial == "<<<NOT_SUPPORTED>>>"
    assert result.gpu_indices == (0,)
    (test,) = result.tests
    assert (test.name, test.category) == ("software", "Deployment")
    assert (test.status, test.raw_status) == ("fail", "Fail")
    (res,) = test.results
    assert (res.entity_group, res.gpu, res.status, res.raw_status) == ("GPU", 0, "fail", "Fail")
    (warning,) = res.warnings
    assert warning.text.startswith("Persistence Mode: Persistence mode for GPU 0 is disabled.")
    assert (warning.error_id, warning.error_category, warning.error_severity) == (29, 8, 5)
    (info,) = test.info
    assert info.startswith("Error getting the SRAM Threshold Count for GPU 0.")
    assert test.status_of_gpu(0) == "fail"
    assert test.status_of_gpu(1) is None
    assert result.overall == "fail"
    assert result.failed and not result.passed
    assert result.warnings == ()


def test_dcgm3_text_r4_all_pass_and_trailing_nvlink_tables_ignored() -> None:
    result = _parse("dcgmi_diag_r4_text_and_nvlink_meta_gcm.txt")
    assert result.format == "text"
    assert result.dcgm_version is None and result.driver_version is None
    names = [t.name for t in result.tests]
    assert len(names) == 18
    assert names[:3] == ["Blacklist", "NVML Library", "CUDA Main Library"]
    assert names[-5:] == [
        "SM Stress",
        "Targeted Stress",
        "Targeted Power",
        "Memory Bandwidth",
        "Memtest",
    ]
    by_category: dict[str | None, int] = {}
    for test in result.tests:
        by_category[test.category] = by_category.get(test.category, 0) + 1
    assert by_category == {"Deployment": 9, "Integration": 1, "Hardware": 3, "Stress": 5}
    assert all(t.status == "pass" for t in result.tests)
    inforom = result.test("inforom")
    assert inforom is not None and inforom.raw_status == "Pass" and inforom.results == ()
    pulse = result.test("Pulse Test")
    assert pulse is not None
    assert pulse.raw_status == "Pass - All"
    (everyone,) = pulse.results
    assert (everyone.gpu, everyone.status, everyone.raw_status) == (None, "pass", "Pass")
    assert pulse.status_of_gpu(5) == "pass"
    assert result.test("NVLINK Error Counts") is None and result.test("Link 0") is None
    assert result.gpu_indices == ()
    assert result.overall == "pass" and result.passed and not result.failed
    assert result.warnings == ()


@pytest.mark.parametrize(
    "name", ["dcgmi_diag_r1_json_dcgm4.2.3_gb10.json", "dcgmi_diag_r4_text_and_nvlink_meta_gcm.txt"]
)
def test_every_fixture_round_trips_to_json(name: str) -> None:
    result = _parse(name)
    doc = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert doc["overall"] == result.overall
    assert [t["name"] for t in doc["tests"]] == [t.name for t in result.tests]
    for test in doc["tests"]:
        for res in test["results"]:
            assert res["status"] in {"pass", "warn", "fail", "skip", "error"}
            assert set(res) >= {"gpu", "status", "raw_status", "warnings", "info"}


# -- DCGM 3.x JSON ---------------------------------------------------------------------

# CONSTRUCTED, not captured: a DCGM 3.x `dcgmi diag -j` document built from the layout
# documented in NVIDIA/DCGM (nvvs NvvsCommon.h JSON format comment, the JsonResult
# unit test's "real output" sample with its `null` entries between tests, and the
# top-level "Driver Version Detected" / "GPU Device IDs" / "GPU Device Serials" keys that
# consumers of 3.x output read). The leading WARNING line is also taken from that test.
DCGM3_JSON = """WARNING: THIS SHOULD NOT HAPPEN
{
  "DCGM GPU Diagnostic": {
    "test_categories": [
      {"category": "Deployment", "tests": [
        {"name": "Denylist", "results": [{"gpu_ids": "0,1", "status": "PASS"}]},
        null,
        {"name": "Persistence Mode", "results": [{"gpu_ids": "0,1", "status": "Pass"}]}
      ]},
      {"category": "Hardware", "tests": [
        {"name": "GPU Memory", "results": [
          {"gpu_ids": 0, "status": "Pass"},
          {"gpu_ids": 1, "status": "Fail",
           "warnings": [{"warning": "DBE detected on GPU 1", "error_id": 83,
                         "error_category": 3, "error_severity": 2}],
           "info": "Allocated 95% of memory"}
        ]}
      ]},
      {"category": "Stress", "tests": [
        {"name": "Targeted Power", "results": [
          {"gpu_ids": "0", "status": "Warn",
           "warnings": ["Power draw 690 W below target 700 W"],
           "info": ["Max power 690 W"]},
          {"gpu_ids": "1", "status": "SKIPPED"}
        ]},
        {"name": "Memory Bandwidth", "results": [
          {"gpu_ids": "0", "status": "Skip"}, {"gpu_ids": "1", "status": "Skip"}
        ]}
      ]}
    ],
    "version": "3.3.5"
  },
  "Driver Version Detected": "545.23.08",
  "GPU Device IDs": ["2330", "2330"],
  "GPU Device Serials": {"0": "1650123456789", "1": "1650123456790"}
}
"""


def test_dcgm3_json_constructed() -> None:
    result = parse_dcgm_diag(DCGM3_JSON, source="dcgm3.json")
    assert result.format == "json-3"
    assert result.dcgm_version == "3.3.5"
    assert result.driver_version == "545.23.08"
    assert [(g.index, g.device_id, g.serial) for g in result.gpus] == [
        (0, "2330", "1650123456789"),
        (1, "2330", "1650123456790"),
    ]
    assert [t.name for t in result.tests] == [
        "Denylist",
        "Persistence Mode",
        "GPU Memory",
        "Targeted Power",
        "Memory Bandwidth",
    ]
    denylist = result.test("Denylist")
    assert denylist is not None
    assert [(r.gpu, r.status, r.raw_status) for r in denylist.results] == [
        (0, "pass", "PASS"),
        (1, "pass", "PASS"),
    ]
    memory = result.test("GPU Memory")
    assert memory is not None and memory.category == "Hardware" and memory.status == "fail"
    assert memory.status_of_gpu(0) == "pass" and memory.status_of_gpu(1) == "fail"
    (warning,) = memory.results[1].warnings
    assert (warning.text, warning.error_id, warning.error_category) == (
        "DBE detected on GPU 1",
        83,
        3,
    )
    assert memory.results[1].info == ("Allocated 95% of memory",)
    power = result.test("Targeted Power")
    assert power is not None and power.status == "warn"
    assert power.results[0].warnings[0].text == "Power draw 690 W below target 700 W"
    assert power.results[0].warnings[0].error_id is None
    assert power.status_of_gpu(1) == "skip"
    bandwidth = result.test("Memory Bandwidth")
    assert bandwidth is not None and bandwidth.status == "skip"
    assert result.overall == "fail" and result.failed
    assert result.gpu_indices == (0, 1)


# -- DCGM 4.x text ---------------------------------------------------------------------

_WARNING = (
    "Persistence Mode: Persistence mode for GPU 1 is disabled. Enable persistence mode by running "
    '"nvidia-smi -i <gpuId> -pm 1 " as root.'
)


def _cell(name: str, value: str) -> str:
    return f"| {name:<25} | {value:<46} |"


def _dcgm4_text(power_gpu0: str = "Fail") -> str:
    """CONSTRUCTED, not captured: a DCGM 4.x table laid out as dcgmi's Diag.cpp renders it.

    (HelperDisplayAsCli: metadata rows, one row per test, one ``GPUn: status`` row per
    entity, ``Warning: GPUn`` messages cut every 45 characters; empty status = not run.)
    """
    chunks = [_WARNING[i : i + 45] for i in range(0, len(_WARNING), 45)]
    border = "+---------------------------+------------------------------------------------+"
    lines = [
        "Successfully ran diagnostic for group.",
        border,
        _cell("Diagnostic", "Result"),
        "+===========================+================================================+",
        "|-----  Metadata  ----------+------------------------------------------------|",
        _cell("DCGM Version", "4.2.3"),
        _cell("Driver Version Detected", "580.82.09"),
        _cell("GPU Device IDs Detected", "2941, 2941"),
        "|-----  Deployment  --------+------------------------------------------------|",
        _cell("software", "Fail"),
        _cell("", "GPU0: Pass"),
        _cell("", "GPU1: Fail"),
        _cell("Warning: GPU1", chunks[0]),
        *(_cell("", c) for c in chunks[1:]),
        "+-----  Hardware  ----------+------------------------------------------------+",
        _cell("memory", "Pass"),
        _cell("", "GPU0: Pass"),
        _cell("", "GPU1: Pass"),
        "+-----  Stress  ------------+------------------------------------------------+",
        _cell("targeted_power", "Warn"),
        _cell("", f"GPU0: {power_gpu0}"),
        _cell("", "GPU1: Pass"),
        _cell("Warning: GPU0", "Power 1100 W below target 1199 W"),
        _cell("memory_bandwidth", ""),
        border,
    ]
    return "\n".join(lines) + "\n"


def test_dcgm4_text_constructed() -> None:
    result = parse_dcgm_diag(_dcgm4_text(), source="r3.txt")
    assert result.format == "text"
    assert (result.dcgm_version, result.driver_version) == ("4.2.3", "580.82.09")
    assert [t.name for t in result.tests] == [
        "software",
        "memory",
        "targeted_power",
        "memory_bandwidth",
    ]
    software = result.tests[0]
    assert software.category == "Deployment" and software.status == "fail"
    assert [(r.entity_group, r.gpu, r.status) for r in software.results] == [
        ("GPU", 0, "pass"),
        ("GPU", 1, "fail"),
    ]
    (warning,) = software.results[1].warnings
    assert warning.text == _WARNING  # re-joined across the 45-character wraps
    assert software.results[0].warnings == ()
    power = result.tests[2]
    # dcgmi prints a per-GPU warn as "Fail"; the worse word wins.
    assert power.raw_status == "Warn" and power.status == "fail"
    assert power.results[0].warnings[0].text == "Power 1100 W below target 1199 W"
    not_run = result.tests[3]
    assert (not_run.raw_status, not_run.status) == ("", "skip")
    assert result.gpu_indices == (0, 1)
    assert result.overall == "fail"
    assert result.warnings == ()


def test_dcgm4_text_warn_only() -> None:
    text = _dcgm4_text(power_gpu0="Warn").replace("| Fail  ", "| Pass  ")
    text = text.replace("GPU1: Fail", "GPU1: Pass")
    result = parse_dcgm_diag(text)
    assert [t.status for t in result.tests] == ["pass", "pass", "warn", "skip"]
    assert result.overall == "warn"
    assert not result.passed and not result.failed


# -- errors, unknowns, garbage ---------------------------------------------------------


def test_unknown_status_is_error_never_pass() -> None:
    doc = {
        "DCGM Diagnostic": {
            "test_categories": [
                {
                    "category": "Hardware",
                    "tests": [
                        {
                            "name": "memory",
                            "results": [
                                {"entity_group": "GPU", "entity_id": 0, "status": "Pass"},
                                {"entity_group": "GPU", "entity_id": 1, "status": "Flaky"},
                            ],
                        }
                    ],
                }
            ]
        },
        "metadata": {"version": "4.2.3"},
    }
    result = parse_dcgm_diag(json.dumps(doc))
    (test,) = result.tests
    assert test.results[1].status == "error" and test.results[1].raw_status == "Flaky"
    assert test.status == "error"
    assert result.overall == "error" and result.failed and not result.passed
    assert any("Flaky" in w for w in result.warnings)


def test_runtime_errors() -> None:
    doc = {"DCGM Diagnostic": {"version": "4.2.3", "runtime_error": "Error: NVVS was killed"}}
    result = parse_dcgm_diag(json.dumps(doc))
    assert result.runtime_error == "Error: NVVS was killed"
    assert result.tests == () and result.overall == "error" and result.failed
    text = "Error: Unable to complete diagnostic for group 2. Return: (-3) : Invalid argument\n"
    result = parse_dcgm_diag(text)
    assert result.runtime_error is not None and result.runtime_error.startswith("Unable")
    assert result.overall == "error"


def test_empty_report_is_error() -> None:
    result = parse_dcgm_diag('{"DCGM Diagnostic": {"test_categories": []}}')
    assert result.overall == "error" and not result.passed
    assert result.warnings == ("the report holds no test result",)


@pytest.mark.parametrize(
    "text",
    ["", "hello world", '{"foo": 1}', "[1, 2, 3]", "+-----+\n| a | b |\n+-----+\n"],
)
def test_no_report_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError, match=r"^diag\.out: "):
        parse_dcgm_diag(text, source="diag.out")


@given(st.text(max_size=20))
def test_normalize_status_only_passes_pass(raw: str) -> None:
    status = normalize_status(raw)
    assert status in {"pass", "warn", "fail", "skip", "error"}
    if status == "pass":
        assert " ".join(raw.lower().split()) in {"pass", "passed"}


_STATUS_WORDS = st.sampled_from(
    ["Pass", "PASS", "Fail", "Warn", "Skip", "SKIPPED", "Not Run", "", "Passs", "OK", "pass!"]
)


@settings(max_examples=60, deadline=None)
@given(statuses=st.lists(st.lists(_STATUS_WORDS, min_size=0, max_size=4), max_size=5))
def test_overall_pass_needs_every_result_known_and_one_pass(statuses: list[list[str]]) -> None:
    tests = [
        {
            "name": f"t{i}",
            "results": [
                {"entity_group": "GPU", "entity_id": g, "status": s} for g, s in enumerate(gpus)
            ],
        }
        for i, gpus in enumerate(statuses)
    ]
    doc = {"DCGM Diagnostic": {"test_categories": [{"category": "Stress", "tests": tests}]}}
    result = parse_dcgm_diag(json.dumps(doc))
    words = [normalize_status(s) for gpus in statuses for s in gpus]
    if result.passed:
        assert "pass" in words
        assert set(words) <= {"pass", "skip"}
    if any(w in ("fail", "error") for w in words) or not statuses:
        assert result.failed


# CONSTRUCTED, not captured: the DCGM 2.x/3.x text table with per-GPU scopes
# ("Fail - GPU: 1", "Pass - GPUs: 0, 2, 3") and a "Warning" row naming its GPU in the text.
DCGM3_TEXT_FAIL = """\
+---------------------------+------------------------------------------------+
| Diagnostic                | Result                                         |
+===========================+================================================+
|-----  Deployment  --------+------------------------------------------------|
| Denylist                  | Pass                                           |
+-----  Stress  ------------+------------------------------------------------+
| SM Stress                 | Fail - GPU: 1                                  |
|                           | Pass - GPUs: 0, 2, 3                           |
| Warning                   | GPU 1 Thermal violations totaling 13.6 seconds |
|                           | for GPU 1                                      |
| Targeted Power            | Skip - All                                     |
+---------------------------+------------------------------------------------+
"""


def test_dcgm3_text_per_gpu_failure() -> None:
    result = parse_dcgm_diag(DCGM3_TEXT_FAIL)
    stress = result.test("SM Stress")
    assert stress is not None and stress.status == "fail"
    assert stress.raw_status == "Fail - GPU: 1"
    assert [(r.gpu, r.status) for r in stress.results] == [
        (1, "fail"),
        (0, "pass"),
        (2, "pass"),
        (3, "pass"),
    ]
    (warning,) = stress.results[0].warnings
    assert warning.text == "GPU 1 Thermal violations totaling 13.6 seconds for GPU 1"
    assert stress.status_of_gpu(2) == "pass"
    power = result.test("Targeted Power")
    assert power is not None and power.status == "skip" and power.status_of_gpu(3) == "skip"
    assert result.gpu_indices == (0, 1, 2, 3)
    assert result.overall == "fail"

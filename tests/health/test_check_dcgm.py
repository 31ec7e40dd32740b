"""dcgm check: captured dcgmi diag output (DCGM 4.2.3 JSON, 3.x table), not installed, errors."""

from __future__ import annotations

import json

from dcops.measurements import CommandResult
from health.base import CheckResult, CheckStatus, NodeFacts, get_check
from tests.conftest import data_file

DCGM = "burnin/dcgm"
FACTS = NodeFacts("n1", "gb200-nvl72", 4)


def judge(
    stdout: str, rc: int = 0, stderr: str = "", facts: NodeFacts = FACTS
) -> list[CheckResult]:
    result = CommandResult("n1", ("dcgmi", "diag", "-r", "1", "-j"), rc, stdout, stderr, 5.0)
    return get_check("dcgm").judge([result], facts)


def test_commands_level_one_by_default_and_overridable() -> None:
    check = get_check("dcgm")
    assert check.commands(FACTS) == [["dcgmi", "diag", "-r", "1", "-j"]]
    facts = NodeFacts("n1", "gb200-nvl72", 4, thresholds={"dcgm_level": 2})
    assert check.commands(facts) == [["dcgmi", "diag", "-r", "2", "-j"]]


def test_not_installed_is_ok_with_message() -> None:
    (res,) = judge("", 127, "bash: dcgmi: command not found")
    assert (res.status, res.message) == (CheckStatus.OK, "dcgmi not installed")


def test_dcgm4_json_fixture_persistence_mode_fails_gpu0() -> None:
    text = data_file(f"{DCGM}/dcgmi_diag_r1_json_dcgm4.2.3_gb10.json").read_text()
    (res,) = judge(text, rc=226)
    assert (res.status, res.gpu, res.fatal) == (CheckStatus.FAIL, 0, False)
    assert res.metric == "dcgm_software"
    assert "Persistence mode for GPU 0 is disabled" in res.message
    assert res.evidence["warnings"][0]["error_id"] == 29


def test_dcgm3_text_fixture_all_pass_is_ok() -> None:
    text = data_file(f"{DCGM}/dcgmi_diag_r4_text_and_nvlink_meta_gcm.txt").read_text()
    (res,) = judge(text)
    assert res.status is CheckStatus.OK
    assert "Memtest" in res.message and "SM Stress" in res.message


def test_warn_result() -> None:
    doc = {
        "DCGM Diagnostic": {
            "test_categories": [
                {
                    "category": "Deployment",
                    "tests": [
                        {
                            "name": "software",
                            "results": [
                                {"entity_group": "GPU", "entity_id": 2, "status": "Warn",
                                 "warnings": [{"warning": "Inforom is corrupt", "error_id": 3}]},
                                {"entity_group": "GPU", "entity_id": 0, "status": "Pass"},
                            ],
                            "test_summary": {"status": "Warn"},
                        }
                    ],
                }
            ]
        },
        "metadata": {"version": "4.2.3"},
    }  # fmt: skip
    (res,) = judge(json.dumps(doc))
    assert (res.status, res.gpu) == (CheckStatus.WARN, 2)
    assert "Inforom is corrupt" in res.message


def test_runtime_error_and_garbage_are_errors() -> None:
    (res,) = judge(
        "Error: unable to establish a connection to the specified host: localhost\n", 255
    )
    assert res.status is CheckStatus.ERROR
    for text in ("", "garbage", '{"x": 1}'):
        (res,) = judge(text, rc=1)
        assert res.status is CheckStatus.ERROR, text
    doc = {"DCGM Diagnostic": {"version": "4.2.3", "runtime_error": "Error: NVVS was killed"}}
    (res,) = judge(json.dumps(doc))
    assert res.status is CheckStatus.ERROR and "NVVS was killed" in res.message
    bad = NodeFacts("n1", "gb200-nvl72", 4, thresholds={"dcgm_level": "fast"})
    (res,) = judge("", 127, facts=bad)
    assert res.status is CheckStatus.ERROR

"""``dcops burnin parse nccl-tests|dcgm``: flags reach the parsers, JSON contract, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dcops.cli.burnin import burnin
from dcops.errors import InputError
from tests.conftest import data_file


def _root() -> click.Group:
    root = click.Group("dcops")
    root.add_command(burnin)
    return root


def _invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(_root(), ["burnin", "parse", *args])


def _nccl(name: str) -> str:
    return str(data_file(f"burnin/nccl-tests/{name}"))


def _dcgm(name: str) -> str:
    return str(data_file(f"burnin/dcgm/{name}"))


def test_nccl_json_contract_multi_run_file() -> None:
    result = _invoke(
        "nccl-tests", _nccl("nccl_allreduce_gb200_nvl72_1rack_2rack_20rack_coreweave.txt"), "--json"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["verdict"] == "PASS"
    assert len(doc["runs"]) == 3
    one = doc["runs"][0]
    assert one["rows"][4]["size_bytes"] == 8589934592
    assert one["rows"][4]["out_of_place"] == {
        "time_us": 20299.0,
        "algbw_gbps": 423.16,
        "busbw_gbps": 834.57,
        "wrong": 0,
    }
    assert one["rows"][4]["in_place"]["busbw_gbps"] == 846.82
    assert one["footer"] == {
        "out_of_bounds": 0,
        "out_of_bounds_status": "OK",
        "avg_busbw_gbps": 745.53,
        "avg_busbw_status": None,
    }
    assert [r["footer"]["avg_busbw_gbps"] for r in doc["runs"]] == [745.53, 688.487, 297.808]


def test_nccl_failures_exit_1_and_show_in_table() -> None:
    path = _nccl("nccl_allreduce_dcgm_mock_pass_oobfail_bwfail_SYNTHETIC.txt")
    result = _invoke("nccl-tests", path, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert [r["verdict"] for r in doc["runs"]] == ["PASS", "FAIL", "FAIL"]
    assert doc["runs"][1]["footer"]["out_of_bounds_status"] == "FAILED"
    assert doc["runs"][1]["rows"][0]["out_of_place"]["wrong"] == 1
    assert doc["runs"][2]["footer"]["avg_busbw_status"] == "FAILED"
    table = _invoke("nccl-tests", path)
    assert table.exit_code == 1
    assert "FAILED" in table.output and "Test failure common.cu:1127" in table.output


def test_nccl_unvalidated_old_format_is_not_a_pass() -> None:
    result = _invoke(
        "nccl-tests", _nccl("nccl_allreduce_a100_8gpu_superbench_fixture.txt"), "--json"
    )
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["verdict"] == "UNVERIFIED"
    assert doc["runs"][0]["rows"][-1]["out_of_place"]["wrong"] is None


def test_nccl_table_for_people() -> None:
    result = _invoke("nccl-tests", _nccl("nccl_allreduce_h100_2node_16gpu_oci_roce_1G-16G.txt"))
    assert result.exit_code == 0
    assert "464.57" in result.output and "458.452" in result.output
    assert "16 GiB" in result.output and "PASS" in result.output


def test_dcgm_json_and_exit_codes() -> None:
    result = _invoke("dcgm", _dcgm("dcgmi_diag_r1_json_dcgm4.2.3_gb10.json"), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["overall"] == "fail"
    (test,) = doc["tests"]
    assert test["name"] == "software"
    assert test["results"][0]["gpu"] == 0
    assert test["results"][0]["status"] == "fail"
    assert test["results"][0]["warnings"][0]["error_id"] == 29
    passing = _invoke("dcgm", _dcgm("dcgmi_diag_r4_text_and_nvlink_meta_gcm.txt"))
    assert passing.exit_code == 0
    assert "Targeted Power" in passing.output and "pass" in passing.output


def test_dcgm_table_escapes_markup() -> None:
    result = _invoke("dcgm", _dcgm("dcgmi_diag_r1_json_dcgm4.2.3_gb10.json"))
    assert result.exit_code == 1
    assert "<gpuId>" in result.output and "Persistence" in result.output


@pytest.mark.parametrize("command", ["nccl-tests", "dcgm"])
def test_unreadable_or_unparsable_file_raises_input_error(command: str, tmp_path: Path) -> None:
    missing = _invoke(command, str(tmp_path / "nope.txt"))
    assert isinstance(missing.exception, InputError)
    assert "cannot read" in str(missing.exception)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\xff\xfe not a result \x80\n")
    bad = _invoke(command, str(garbage))
    assert isinstance(bad.exception, InputError)
    assert str(garbage) in str(bad.exception)
    assert bad.exception.exit_code == 2


def test_stdin_dash() -> None:
    text = Path(_nccl("nccl_allreduce_h100_2node_16gpu_a3mega.txt")).read_text()
    result = CliRunner().invoke(
        _root(), ["burnin", "parse", "nccl-tests", "-", "--json"], input=text
    )
    assert result.exit_code == 0
    assert json.loads(result.output)["runs"][0]["source"] == "<stdin>"

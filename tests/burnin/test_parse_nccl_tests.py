"""nccl-tests parser: every captured fixture, launcher/log noise, layouts, JSON, properties."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burnin.parsers.nccl_tests import NcclTestRun, parse_nccl_tests
from dcops.errors import InputError
from tests.conftest import data_file

NCCL = "burnin/nccl-tests"
GIB = 1 << 30


def _load(name: str) -> tuple[str, Path]:
    path = data_file(f"{NCCL}/{name}")
    return path.read_text(), path


def _runs(name: str) -> list[NcclTestRun]:
    text, path = _load(name)
    return parse_nccl_tests(text, source=path.name)


# -- captured fixtures ---------------------------------------------------------------


def test_a100_superbench_old_format_with_na_and_nccl_info() -> None:
    (run,) = _runs("nccl_allreduce_a100_8gpu_superbench_fixture.txt")
    assert run.test is None and run.op is None
    assert run.config is not None
    assert run.config.n_threads == 1
    assert run.config.n_gpus == 8
    assert run.config.min_bytes == 1
    assert run.config.max_bytes == 8589934592
    assert run.config.step_factor == 2
    assert run.config.warmup_iters == 5
    assert run.config.iters == 20
    assert run.config.validation == 0
    assert run.config.agg_iters is None
    assert [r.rank for r in run.ranks] == list(range(8))
    assert {r.host for r in run.ranks} == {"localhost"}
    assert run.ranks[3].device == 3
    assert run.ranks[3].pid == 112424
    assert run.ranks[3].group is None
    assert run.ranks[3].device_name == "A100-SXM4-40GB"
    # 34 rows: size 0 is printed twice, then 4 B .. 8 GiB.
    assert len(run.rows) == 34
    assert [r.size_bytes for r in run.rows[:3]] == [0, 0, 4]
    assert run.dtype == "float" and run.redop == "sum"
    assert all(r.root is None for r in run.rows)
    last = run.rows[-1]
    assert last.size_bytes == 8589934592
    assert last.count == 2147483648
    assert last.out_of_place.time_us == 63896
    assert last.out_of_place.algbw_gbps == pytest.approx(134.44)
    assert last.out_of_place.busbw_gbps == pytest.approx(235.26)
    assert last.in_place is not None
    assert last.in_place.busbw_gbps == pytest.approx(235.03)
    row = run.row_at(GIB)
    assert row is not None
    assert row.out_of_place.time_us == pytest.approx(8159.5)
    assert row.out_of_place.busbw_gbps == pytest.approx(230.29)
    # N/A in the error column: not validated, never a pass.
    assert all(s.wrong is None for s in run.samples)
    assert run.wrong_total is None
    assert not run.validated
    assert run.footer is not None
    assert run.footer.out_of_bounds == 0
    assert run.footer.out_of_bounds_status == "OK"
    assert run.footer.avg_busbw_gbps == pytest.approx(68.4048)
    assert run.footer.avg_busbw_status is None
    assert run.failed is False
    assert run.passed is None
    assert run.verdict == "UNVERIFIED"
    assert any("N/A" in w for w in run.warnings)


def test_nvidia_mock_pass_oob_failed_and_bw_failed() -> None:
    runs = _runs("nccl_allreduce_dcgm_mock_pass_oobfail_bwfail_SYNTHETIC.txt")
    assert len(runs) == 3
    ok, oob, bw = runs
    for run in runs:
        assert run.test == "all_reduce_perf"
        assert run.op == "all_reduce"
        assert run.config is not None
        assert run.config.step_bytes == 1048576
        assert run.config.step_factor is None
        assert run.config.agg_iters == 1
        assert run.config.iters == 20
        assert run.config.warmup_iters == 1
        assert run.config.graph == 0
        (rank,) = run.ranks
        assert (rank.rank, rank.group, rank.pid, rank.host, rank.device) == (
            0,
            0,
            12345,
            "testhost",
            0,
        )
        assert rank.bus_id == "0000:1b:00"
        assert rank.device_name == "NVIDIA Test GPU"
        (row,) = run.rows
        assert row.size_bytes == 33554432 and row.count == 8388608
        assert row.root is None  # printed as -1
    assert [r.line for r in runs] == [2, 18, 35]

    assert ok.rows[0].out_of_place.algbw_gbps == pytest.approx(1303.8)
    assert ok.rows[0].in_place is not None
    assert ok.rows[0].in_place.algbw_gbps == 89754
    assert ok.footer is not None and ok.footer.ok is True
    assert ok.passed is True and ok.verdict == "PASS"

    assert oob.rows[0].out_of_place.wrong == 1
    assert oob.rows[0].in_place is not None and oob.rows[0].in_place.wrong == 1
    assert oob.wrong_total == 2
    assert oob.footer is not None
    assert (oob.footer.out_of_bounds, oob.footer.out_of_bounds_status) == (2, "FAILED")
    assert oob.failures == (".. testhost pid 12345: Test failure common.cu:1127",)
    assert oob.failed and oob.passed is False and oob.verdict == "FAIL"

    assert bw.wrong_total == 0
    assert bw.footer is not None
    assert bw.footer.avg_busbw_gbps == 0.0
    assert bw.footer.avg_busbw_status == "FAILED"
    assert bw.failures == (".. testhost pid 12345: Test failure common.cu:1126",)
    assert bw.passed is False


def test_gb200_nvl72_coreweave_three_runs_in_markdown() -> None:
    runs = _runs("nccl_allreduce_gb200_nvl72_1rack_2rack_20rack_coreweave.txt")
    assert len(runs) == 3
    one, two, twenty = runs
    assert [r.n_ranks for r in runs] == [72, 144, 1440]
    assert [r.line for r in runs] == [8, 24, 42]
    assert one.ranks[0].host == "slurm-gb200-207-171"
    assert twenty.ranks[0].host == "slurm-gb200-218-073"
    assert twenty.ranks[0].device_name == "NVIDIA GB200"
    assert [len(r.rows) for r in runs] == [5, 6, 6]
    # FACTS.md: one rack 835-847 GB/s at 4-8 GiB, average 745.5.
    four, eight = one.row_at(4 * GIB), one.row_at(8 * GIB)
    assert four is not None and eight is not None and eight.in_place is not None
    assert four.out_of_place.busbw_gbps == pytest.approx(839.16)
    assert eight.out_of_place.busbw_gbps == pytest.approx(834.57)
    assert eight.in_place.busbw_gbps == pytest.approx(846.82)
    assert eight.out_of_place.time_us == 20299
    assert one.peak_busbw_gbps == pytest.approx(846.82)
    assert one.footer is not None and one.footer.avg_busbw_gbps == pytest.approx(745.53)
    sixteen = two.row_at(16 * GIB)
    assert sixteen is not None and sixteen.in_place is not None
    assert sixteen.out_of_place.busbw_gbps == pytest.approx(810.41)
    assert sixteen.in_place.busbw_gbps == pytest.approx(820.36)
    assert two.footer is not None and two.footer.avg_busbw_gbps == pytest.approx(688.487)
    far = twenty.row_at(16 * GIB)
    assert far is not None and far.out_of_place.busbw_gbps == pytest.approx(405.74)
    assert twenty.footer is not None and twenty.footer.avg_busbw_gbps == pytest.approx(297.808)
    for run in runs:
        assert run.passed is True
        assert run.warnings == ()
        assert run.config is None  # the README trimmed the header
        assert run.dtype == "float" and run.redop == "sum"


def test_h100_a3mega_full_sweep_with_mpirun_command() -> None:
    (run,) = _runs("nccl_allreduce_h100_2node_16gpu_a3mega.txt")
    assert run.test == "all_reduce_perf" and run.op == "all_reduce"
    assert run.line == 9
    assert len(run.rows) == 31
    assert run.rows[0].size_bytes == 8 and run.rows[-1].size_bytes == 8 * GIB
    assert len(run.ranks) == 16 and run.n_ranks == 16
    assert {r.host for r in run.ranks} == {"ztan-mig-235z", "ztan-mig-gq73"}
    eighth = run.ranks[8]
    assert (eighth.pid, eighth.host, eighth.device, eighth.bus_id) == (
        6733,
        "ztan-mig-gq73",
        0,
        "0000:04:00",
    )
    assert eighth.device_name == "NVIDIA H100 80GB HBM3"
    top = run.row_at(8 * GIB)
    assert top is not None and top.in_place is not None
    assert top.out_of_place.busbw_gbps == pytest.approx(338.82)
    assert top.in_place.busbw_gbps == pytest.approx(337.35)
    assert top.in_place.time_us == 47743
    assert run.wrong_total == 0
    assert run.footer is not None
    assert run.footer.avg_busbw_gbps == pytest.approx(70.742)
    assert run.passed is True


def test_h100_oci_roce_1g_to_16g() -> None:
    (run,) = _runs("nccl_allreduce_h100_2node_16gpu_oci_roce_1G-16G.txt")
    assert run.test == "all_reduce_perf"
    assert run.config is not None
    assert (run.config.min_bytes, run.config.max_bytes) == (GIB, 16 * GIB)
    assert [r.size_bytes for r in run.rows] == [GIB << k for k in range(5)]
    top = run.row_at(16 * GIB)
    assert top is not None and top.in_place is not None
    assert top.out_of_place.busbw_gbps == pytest.approx(464.57)
    assert top.in_place.busbw_gbps == pytest.approx(464.79)
    assert top.out_of_place.algbw_gbps == pytest.approx(247.77)
    assert run.footer is not None
    assert run.footer.avg_busbw_gbps == pytest.approx(458.452)
    assert run.ranks[15].host == "inst-yyyyy-h100-ol89"
    assert run.ranks[15].bus_id == "0xd8"
    assert run.passed is True


ALL_FIXTURES = [
    "nccl_allreduce_a100_8gpu_superbench_fixture.txt",
    "nccl_allreduce_dcgm_mock_pass_oobfail_bwfail_SYNTHETIC.txt",
    "nccl_allreduce_gb200_nvl72_1rack_2rack_20rack_coreweave.txt",
    "nccl_allreduce_h100_2node_16gpu_a3mega.txt",
    "nccl_allreduce_h100_2node_16gpu_oci_roce_1G-16G.txt",
]


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_round_trips_to_json(name: str) -> None:
    runs = _runs(name)
    doc = json.loads(json.dumps([r.to_dict() for r in runs], allow_nan=False))
    assert len(doc) == len(runs)
    for entry, run in zip(doc, runs, strict=True):
        assert len(entry["rows"]) == len(run.rows)
        first = entry["rows"][0]
        assert first["size_bytes"] == run.rows[0].size_bytes
        assert first["out_of_place"]["busbw_gbps"] == run.rows[0].out_of_place.busbw_gbps
        assert set(first["in_place"]) == {"time_us", "algbw_gbps", "busbw_gbps", "wrong"}
        assert set(entry["footer"]) == {
            "out_of_bounds",
            "out_of_bounds_status",
            "avg_busbw_gbps",
            "avg_busbw_status",
        }


# -- launcher prefixes, log noise, truncation -------------------------------------------


PREFIXES = [
    lambda i: "0: ",  # srun --label
    lambda i: "[1,0]<stdout>:",  # mpirun --tag-output
    lambda i: "gb200-r01-t01: ",  # pdsh
    lambda i: f"2025-06-01T12:00:{i % 60:02d}.123456Z ",  # timestamped log
    lambda i: f"[2025-06-01 12:00:{i % 60:02d}] 3: ",
]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_prefixed_lines_parse_like_plain(prefix: object) -> None:
    text, _ = _load("nccl_allreduce_h100_2node_16gpu_a3mega.txt")
    plain = parse_nccl_tests(text)
    assert callable(prefix)
    prefixed = "\n".join(prefix(i) + line for i, line in enumerate(text.splitlines()))
    (run,) = parse_nccl_tests(prefixed)
    assert run.rows == plain[0].rows
    assert run.footer == plain[0].footer
    assert run.ranks == plain[0].ranks
    assert run.config == plain[0].config
    assert run.passed is True


def test_nccl_info_and_warn_lines_interleaved() -> None:
    text, _ = _load("nccl_allreduce_h100_2node_16gpu_oci_roce_1G-16G.txt")
    plain = parse_nccl_tests(text)[0]
    noisy: list[str] = []
    for line in text.splitlines():
        noisy.append(line)
        if line.startswith("#  Rank 15"):
            noisy.append("inst-x:1274:1274 [0] NCCL INFO NCCL version 2.21.5+cuda12.4")
        noisy.append("inst-x:1274:1290 [0] NCCL INFO Channel 00/24 : 0 1 2 3 4 5 6 7 # 8")
    noisy.insert(30, "inst-x:1274:1290 [0] NCCL WARN NET/IB : Got async event : port error")
    (run,) = parse_nccl_tests("\n".join(noisy))
    assert run.rows == plain.rows
    assert run.footer == plain.footer
    assert run.nccl_version == "2.21.5+cuda12.4"
    assert any("port error" in m for m in run.messages)
    assert run.passed is True


def test_truncated_run_keeps_rows_and_is_not_a_pass() -> None:
    text, _ = _load("nccl_allreduce_h100_2node_16gpu_oci_roce_1G-16G.txt")
    lines = text.splitlines()
    cut = next(i for i, line in enumerate(lines) if line.lstrip().startswith("4294967296"))
    (run,) = parse_nccl_tests("\n".join(lines[:cut]))
    assert [r.size_bytes for r in run.rows] == [GIB, 2 * GIB]
    assert run.footer is None
    assert run.passed is None and run.verdict == "UNVERIFIED"
    assert any("no footer" in w for w in run.warnings)


def test_half_footer_is_reported() -> None:
    text, _ = _load("nccl_allreduce_h100_2node_16gpu_oci_roce_1G-16G.txt")
    without_avg = "\n".join(line for line in text.splitlines() if "Avg bus" not in line)
    (run,) = parse_nccl_tests(without_avg)
    assert run.footer is not None and run.footer.avg_busbw_gbps is None
    assert run.passed is True  # out-of-bounds 0 OK and every #wrong is 0
    assert any("Avg bus bandwidth" in w for w in run.warnings)
    without_oob = "\n".join(line for line in text.splitlines() if "Out of bounds" not in line)
    (run,) = parse_nccl_tests(without_oob)
    assert run.footer is not None and run.footer.out_of_bounds is None
    assert run.passed is None


# -- other layouts -----------------------------------------------------------------------

NEW_HEADER = """\
# nccl-tests version 2.17.1 nccl-headers=22703 nccl-library=22703
# Collective test starting: {binary}
# nThread 1 nGpus 1 minBytes 1024 maxBytes 2048 step: 2(factor) warmup iters: 1 iters: 5 \
agg iters: 1 validation: 1 graph: 0 unalign: 0
#
# Using devices
#  Rank  0 Group  0 Pid   4242 on gb200-r01-t01 device  0 [0009:01:00] NVIDIA GB200
#  Rank  1 Group  0 Pid   4243 on gb200-r01-t01 device  1 [0019:01:00] NVIDIA GB200
#
"""


def test_new_format_version_lines_and_other_collectives() -> None:
    text = (
        NEW_HEADER.format(binary="all_gather_perf")
        + "#       size         count      type   redop    root     time   algbw   busbw  #wrong"
        "     time   algbw   busbw  #wrong\n"
        "        1024           128     float    none      -1    10.50    0.10    0.05       0"
        "    10.40    0.10    0.05       0\n"
        "        2048           256     float    none      -1    11.00  1.2e+05  6.1e+04      0"
        "    10.90    0.19    0.09       0\n"
        "# Out of bounds values : 0 OK\n"
        "# Avg bus bandwidth    : 0.07 OK\n#\n"
        "# Collective test concluded: all_gather_perf\n\n"
        + NEW_HEADER.format(binary="broadcast_perf")
        + "#       size         count      type   redop    root     time   algbw   busbw  #wrong"
        "     time   algbw   busbw  #wrong\n"
        "        1024           256     float    none       0     9.00    0.11    0.11       0"
        "     9.10    0.11    0.11   1e+06\n"
        "# Out of bounds values : 1000000 FAILED\n"
        "# Avg bus bandwidth    : 0.11\n"
    )
    gather, bcast = parse_nccl_tests(text)
    assert gather.op == "all_gather" and bcast.op == "broadcast"
    assert gather.nccl_version == "2.27.3" and gather.nccl_tests_version == "2.17.1"
    assert gather.redop is None and gather.rows[0].root is None
    assert gather.rows[1].out_of_place.algbw_gbps == 120000.0
    assert gather.rows[1].out_of_place.busbw_gbps == 61000.0
    assert gather.footer is not None and gather.footer.avg_busbw_status == "OK"
    assert gather.passed is True
    assert [r.host for r in gather.ranks] == ["gb200-r01-t01"] * 2
    assert bcast.rows[0].root == 0
    assert bcast.rows[0].in_place is not None and bcast.rows[0].in_place.wrong == 1_000_000
    assert bcast.passed is False


def test_per_iteration_and_timestamp_columns() -> None:
    header = (
        "#       size         count      type   redop    root     time   algbw   busbw  #wrong"
        "    i_min    i_max    i_p99    i_cv%     time   algbw   busbw  #wrong    i_min    i_max"
        "    i_p99    i_cv%  timestamp\n"
    )
    row = (
        "    16777216       4194304     float     sum      -1    226.0   74.23  129.90       0"
        "    220.1    240.2    239.9     1.20    225.0   74.57  130.49       0    219.0    241.0"
        "    240.0     1.10  2025-10-28 12:00:00\n"
    )
    text = header + row + "# Out of bounds values : 0 OK\n# Avg bus bandwidth    : 130.2\n"
    (run,) = parse_nccl_tests(text)
    (parsed,) = run.rows
    assert parsed.out_of_place.busbw_gbps == pytest.approx(129.90)
    assert parsed.in_place is not None
    assert parsed.in_place.time_us == pytest.approx(225.0)
    assert parsed.in_place.busbw_gbps == pytest.approx(130.49)
    assert parsed.in_place.wrong == 0
    assert run.passed is True
    assert run.warnings == ()


def test_rows_without_header_are_inferred_with_a_warning() -> None:
    text = (
        "  1073741824     268435456     float     sum      -1   4511.2  238.02  446.28      0"
        "   4520.9  237.50  445.32      0\n"
        "  2147483648     536870912     float     sum   8825.9  243.31  456.22    N/A"
        "   8827.8  243.26  456.12    N/A\n"
    )
    (run,) = parse_nccl_tests(text, source="rows.txt")
    assert [r.root for r in run.rows] == [None, None]
    assert run.rows[1].out_of_place.busbw_gbps == pytest.approx(456.22)
    assert run.rows[1].out_of_place.wrong is None
    assert run.footer is None and run.passed is None
    assert any("no column header" in w for w in run.warnings)


def test_mangled_row_is_a_warning_not_a_value() -> None:
    text, _ = _load("nccl_allreduce_h100_2node_16gpu_oci_roce_1G-16G.txt")
    mangled = text.replace("34719  247.41  463.90", "34719  247.41  46#.90")
    (run,) = parse_nccl_tests(mangled)
    assert 8 * GIB not in [r.size_bytes for r in run.rows]
    assert len(run.rows) == 4
    assert any("not understood" in w for w in run.warnings)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello\nworld\n",
        "# nThread 1 nGpus 8 minBytes 8 maxBytes 128 step: 2(factor) warmup iters: 5 iters: 20\n",
        "# Out of bounds values : 0 OK\n# Avg bus bandwidth    : 400.0\n",
        '{"version": 3, "config": {}}',
    ],
)
def test_no_result_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError, match=r"^x\.log: .*no nccl-tests result found"):
        parse_nccl_tests(text, source="x.log")


# -- -J JSON -------------------------------------------------------------------------------

# Constructed, not captured: the shape written by nccl-tests src/util.cu (JSON file
# version 3, nccl-tests 2.17+): strings "true"/"false" for booleans, "unchecked" for an
# average without NCCL_TESTS_MIN_BW, root as the padded "%6i" string, "nan" for NaN.
NCCL_JSON = {
    "version": 3,
    "start_time": "2025-10-28 12:00:00",
    "args": ["/opt/nccl-tests/build/all_reduce_perf", "-b", "1G", "-e", "2G", "-J", "out.json"],
    "env": ["NCCL_DEBUG=WARN"],
    "nccl_version": 22703,
    "config": {
        "nthreads": 1,
        "ngpus": 4,
        "minimum_bytes": 1073741824,
        "maximum_bytes": 2147483648,
        "step_factor": 2,
        "warmup_iters": 5,
        "iterations": 20,
        "aggregated_iterations": 1,
        "validation": 1,
        "graph": 0,
        "blocking_collectives": "false",
        "devices": [
            {
                "rank": i,
                "group": 0,
                "pid": 100 + i,
                "hostname": "gb200-r01-t01",
                "device": i,
                "device_hex": f"000{i}:01:00",
                "device_info": "NVIDIA GB200",
            }
            for i in range(4)
        ],
    },
    "results": [
        {
            "size": 1073741824,
            "count": 268435456,
            "type": "float",
            "redop": "sum",
            "root": "    -1",
            "out_of_place": {"time": 2800.5, "alg_bw": 383.4, "bus_bw": 575.1, "nwrong": 0.0},
            "in_place": {"time": 2790.0, "alg_bw": 384.8, "bus_bw": 577.2, "nwrong": 0.0},
            "actual_iterations": 20,
            "experiment_name": "all_reduce_perf",
        },
        {
            "size": 2147483648,
            "count": 536870912,
            "type": "float",
            "redop": "sum",
            "root": "    -1",
            "out_of_place": {"time": 5500.0, "alg_bw": 390.4, "bus_bw": 585.6, "nwrong": None},
            "in_place": {"time": "nan", "alg_bw": "nan", "bus_bw": "nan", "nwrong": None},
            "actual_iterations": 20,
            "experiment_name": "all_reduce_perf",
        },
    ],
    "out_of_bounds": {"count": 0, "okay": "true"},
    "average_bus_bandwidth": {"bandwidth": 579.3, "okay": "unchecked"},
    "errors": [],
    "end_time": "2025-10-28 12:00:09",
}


def test_json_output_file() -> None:
    (run,) = parse_nccl_tests(json.dumps(NCCL_JSON), source="out.json")
    assert run.format == "json"
    assert run.test == "all_reduce_perf" and run.op == "all_reduce"
    assert run.nccl_version == "2.27.3"
    assert run.config is not None and run.config.n_gpus == 4 and run.config.step_factor == 2
    assert [r.device for r in run.ranks] == [0, 1, 2, 3]
    assert run.ranks[2].bus_id == "0002:01:00"
    first, second = run.rows
    assert first.root is None
    assert first.out_of_place.busbw_gbps == pytest.approx(575.1)
    assert first.out_of_place.wrong == 0
    assert second.out_of_place.wrong is None
    assert second.in_place is not None and math.isnan(second.in_place.busbw_gbps)
    assert run.footer is not None
    assert run.footer.out_of_bounds_status == "OK"
    assert run.footer.avg_busbw_gbps == pytest.approx(579.3)
    assert run.footer.avg_busbw_status is None
    assert run.passed is None  # one size was not validated
    doc = json.loads(json.dumps(run.to_dict(), allow_nan=False))
    assert doc["rows"][1]["in_place"]["busbw_gbps"] is None


def test_json_failed_footer_and_validated_pass() -> None:
    doc = json.loads(json.dumps(NCCL_JSON))
    doc["results"] = doc["results"][:1]
    (run,) = parse_nccl_tests(json.dumps(doc))
    assert run.passed is True
    doc["average_bus_bandwidth"]["okay"] = "false"
    (run,) = parse_nccl_tests(json.dumps(doc))
    assert run.footer is not None and run.footer.avg_busbw_status == "FAILED"
    assert run.passed is False
    del doc["out_of_bounds"], doc["average_bus_bandwidth"]
    (run,) = parse_nccl_tests(json.dumps(doc))
    assert run.footer is None and run.passed is None


# -- properties ----------------------------------------------------------------------------


def _fmt(value: float, width: int) -> str:
    """nccl-tests' number format: 2, 1 or 0 decimals, else exponent, to fit ``width``."""
    for spec in (".2f", ".1f", ".0f"):
        text = f"{value:{width}{spec}}"
        if len(text) <= width:
            return text
    return f"{value:{width}.1e}" if width >= 7 else f"{value:{width}.0e}"


#: One sample of a row: time_us, algbw, busbw, #wrong.
_Sample = tuple[float, float, float, int]
#: One rendered row: size, count, type, redop, root, out-of-place and in-place samples.
_Row = tuple[int, int, str, str, int, _Sample, _Sample]

_FLOATS = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
_SAMPLE = st.tuples(_FLOATS, _FLOATS, _FLOATS, st.integers(0, 10**6))
_ROW = st.tuples(
    st.integers(0, 2**40),
    st.integers(0, 2**38),
    st.sampled_from(["float", "half", "bfloat16", "int8", "uint64", "double", "f8e4m3"]),
    st.sampled_from(["sum", "prod", "max", "min", "avg", "none"]),
    st.integers(-1, 71),
    _SAMPLE,
    _SAMPLE,
)


def _render(rows: list[_Row], old: bool) -> str:
    if old:
        head = "#       size         count    type   redop     time   algbw   busbw  error"
        head += "     time   algbw   busbw  error\n"
    else:
        head = "#       size         count      type   redop    root     time   algbw   busbw"
        head += "  #wrong     time   algbw   busbw  #wrong\n"
    out = [head]
    for size, count, dtype, redop, root, oop, inp in rows:
        cells = [f"{size:12d}", f"{count:12d}", f"{dtype:>8}", f"{redop:>6}"]
        if not old:
            cells.append(f"{root:6d}")
        for time_us, algbw, busbw, wrong in (oop, inp):
            cells += [_fmt(time_us, 7), _fmt(algbw, 6), _fmt(busbw, 6)]
            cells.append("   N/A" if old else f"{wrong:6g}")
        out.append("  ".join(cells) + "\n")
    out.append("# Out of bounds values : 0 OK\n# Avg bus bandwidth    : 1.5 \n#\n")
    return "".join(out)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_ROW, min_size=1, max_size=8), old=st.booleans())
def test_rendered_rows_parse_back(rows: list[_Row], old: bool) -> None:
    text = _render(rows, old)
    (run,) = parse_nccl_tests(text)
    assert run.warnings == () or old
    assert len(run.rows) == len(rows)
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    for parsed, line, spec in zip(run.rows, lines, rows, strict=True):
        size, count, dtype, redop, root, _, _ = spec
        tokens = line.split()
        assert (parsed.size_bytes, parsed.count, parsed.dtype) == (size, count, dtype)
        assert parsed.redop == (None if redop == "none" else redop)
        assert parsed.root == (None if old or root < 0 else root)
        values = tokens[4:] if old else tokens[5:]
        assert parsed.in_place is not None
        for sample, cells in ((parsed.out_of_place, values[:4]), (parsed.in_place, values[4:])):
            assert sample.time_us == float(cells[0])
            assert sample.algbw_gbps == float(cells[1])
            assert sample.busbw_gbps == float(cells[2])
            assert sample.wrong == (None if old else int(float(cells[3])))
    wrongs = [s[3] for r in rows for s in (r[5], r[6])]
    if old:
        assert run.passed is None
    else:
        assert run.passed is (not any(wrongs))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(
        alphabet=st.sampled_from(list("0123456789 .-#:\nabcdeflnoprstuvwxyzAFIKLNOT/")),
        max_size=400,
    )
)
def test_garbage_never_parses_as_a_pass(text: str) -> None:
    try:
        runs = parse_nccl_tests(text)
    except InputError:
        return
    assert all(run.passed is not True for run in runs)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_truncation_before_the_footer_is_not_a_pass(data: st.DataObject) -> None:
    lines = _a3mega().splitlines()
    footer_at = next(i for i, line in enumerate(lines) if "Out of bounds" in line)
    cut = data.draw(st.integers(0, footer_at))
    try:
        runs = parse_nccl_tests("\n".join(lines[:cut]))
    except InputError:
        return
    assert all(run.passed is not True for run in runs)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_wrong_value_fails_the_run(data: st.DataObject) -> None:
    lines = _a3mega().splitlines()
    rows = [i for i, line in enumerate(lines) if re.match(r"^\s+\d+\s+\d+\s+float", line)]
    at = data.draw(st.sampled_from(rows))
    wrong = data.draw(st.integers(1, 10**6))
    tokens = lines[at].split()
    tokens[data.draw(st.sampled_from([8, 12]))] = str(wrong)
    lines[at] = "  ".join(tokens)
    (run,) = parse_nccl_tests("\n".join(lines))
    assert run.wrong_total == wrong
    assert run.failed and run.passed is False


def _a3mega() -> str:
    return data_file(f"{NCCL}/nccl_allreduce_h100_2node_16gpu_a3mega.txt").read_text()


def test_validation_disabled_is_not_a_pass_even_with_zero_wrong() -> None:
    text = _a3mega().replace("validation: 1", "validation: 0")
    (run,) = parse_nccl_tests(text)
    assert run.wrong_total == 0
    assert not run.validated
    assert run.passed is None and run.verdict == "UNVERIFIED"

"""gpu_count check: nvidia-smi -L listings, lost GPUs, missing driver, inventory mismatch."""

from __future__ import annotations

from dcops.measurements import CommandResult
from health.base import CheckResult, CheckStatus, NodeFacts, get_check
from health.checks.gpu_count import parse_gpu_list

FACTS = NodeFacts("n1", "gb200-nvl72", 4)
PROC = "0008:01:00.0\n0009:01:00.0\n0018:01:00.0\n0019:01:00.0\n"


def listing(indexes: list[int]) -> str:
    return "".join(
        f"GPU {i}: NVIDIA GB200 (UUID: GPU-{i:08d}-aaaa-bbbb-cccc-dddddddddddd)\n" for i in indexes
    )


def judge(stdout: str, rc: int = 0, stderr: str = "", proc: str = PROC) -> list[CheckResult]:
    return get_check("gpu_count").judge(
        [
            CommandResult("n1", ("nvidia-smi", "-L"), rc, stdout, stderr, 0.1),
            CommandResult("n1", ("ls",), 0 if proc else 2, proc, "", 0.01),
        ],
        FACTS,
    )


def test_all_present_is_ok_with_uuids() -> None:
    (res,) = judge(listing([0, 1, 2, 3]))
    assert (res.status, res.value, res.threshold) == (CheckStatus.OK, 4, 4)
    assert len(res.evidence["uuids"]) == 4


def test_mig_lines_are_not_gpus() -> None:
    text = listing([0]) + "  MIG 1g.23gb     Device  0: (UUID: MIG-1234)\n"
    assert parse_gpu_list(text) == [(0, "NVIDIA GB200", "GPU-00000000-aaaa-bbbb-cccc-dddddddddddd")]


def test_missing_gpu_is_fatal_and_named_when_indexes_leave_a_gap() -> None:
    (res,) = judge(listing([0, 1, 3]))
    assert (res.status, res.fatal, res.gpu, res.value) == (CheckStatus.FAIL, True, 2, 3)
    (res,) = judge(listing([0, 1, 2]))  # renumbered: which one is gone is unknown
    assert (res.status, res.fatal, res.gpu) == (CheckStatus.FAIL, True, None)


def test_more_gpus_than_inventory_warns() -> None:
    (res,) = judge(listing([0, 1, 2, 3, 4]))
    assert res.status is CheckStatus.WARN


def test_lost_gpu_is_fatal_and_indexed_from_proc() -> None:
    text = "Unable to determine the device handle for GPU00000018:01:00.0: Unknown Error\n"
    (res,) = judge(text, rc=15)
    assert (res.status, res.fatal, res.gpu) == (CheckStatus.FAIL, True, 2)
    assert res.evidence["pci"] == "0018:01:00"
    assert res.action == "drain, reboot, then check mechanicals"
    lost = (
        "Unable to determine the device handle for GPU 0000:3B:00.0: GPU is lost.  "
        "Reboot the system to recover this GPU\n"
    )
    (res,) = judge(lost, rc=15, proc="")
    assert (res.fatal, res.gpu) == (True, None)
    assert "GPU is lost" in res.message


def test_lost_gpu_plus_driver_listing_short_reports_both() -> None:
    text = "Unable to determine the device handle for GPU00000018:01:00.0: Unknown Error\n"
    found = judge(text, rc=15, proc="0008:01:00.0\n0018:01:00.0\n")
    assert [r.metric for r in found] == ["gpu_lost", "gpus_visible"]
    assert all(r.fatal for r in found)


def test_driver_not_loaded_is_fatal() -> None:
    text = (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
        "Make sure that the latest NVIDIA driver is installed and running.\n"
    )
    (res,) = judge(text, rc=9)
    assert (res.status, res.fatal, res.value) == (CheckStatus.FAIL, True, 0)


def test_no_devices_found_is_fatal_missing() -> None:
    (res,) = judge("No devices were found\n", rc=6)
    assert (res.status, res.fatal, res.value) == (CheckStatus.FAIL, True, 0)


def test_unparsable_or_missing_tool_is_an_error() -> None:
    for stdout, rc in (
        ("", 0),
        ("hello\n", 0),
        (listing([0]) + "junk\n", 0),
        (listing([0, 1, 2, 3]), 4),
    ):
        (res,) = judge(stdout, rc=rc)
        assert res.status is CheckStatus.ERROR, (stdout, rc)
    (res,) = judge("", rc=127)
    assert res.status is CheckStatus.ERROR and "not installed" in res.message

"""Every built-in check over the simulator: each fault of a scenario is found by the right
check on the right node and GPU, and every healthy node is ok."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from dcops.errors import ConnectError
from dcops.measurements import CommandResult
from dcops.sim import Fault, SimFleet
from dcops.sim.model import DRIVER_VERSION
from dcops.sim.runner import Answer
from dcops.sim.smi_xml import VBIOS_VERSION
from health.base import CheckResult, CheckStatus, NodeFacts, get_checks

DEMO = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "demo.yaml"
SKIPPED = {"sim-r01-t17", "sim-r02-t18"}  # unreachable / hung: the sweep's business
EXTRA_FAULTS = [
    {"node": "sim-r01-t02", "gpu": 2, "kind": "missing_gpu"},
    {"node": "sim-r01-t03", "gpu": 1, "kind": "nvlink_down", "links": 2},
    {"node": "sim-r01-t10", "gpu": 0, "kind": "nvlink_down"},
    {"node": "sim-r01-t04", "gpu": 0, "kind": "remapped_rows"},
    {"node": "sim-r01-t06", "gpu": 3, "kind": "remapped_rows", "state": "failed"},
    {"node": "sim-r01-t07", "kind": "power_brake"},
    {"node": "sim-r01-t08", "gpu": 2, "kind": "xid", "code": 13},
]
#: The built-in checks (other tests may register their own in the same registry).
BUILTIN = ["dcgm", "drift", "gpu_count", "memory", "node_basics", "nvlink", "throttle", "xid"]
BASELINE = {"driver_version": DRIVER_VERSION, "vbios_version": VBIOS_VERSION}

#: (node, check) -> the non-ok findings expected there: (status, fatal, gpu, metric).
EXPECTED: dict[tuple[str, str], set[tuple[CheckStatus, bool, int | None, str]]] = {
    ("sim-r02-t03", "gpu_count"): {(CheckStatus.FAIL, True, 1, "gpu_lost")},
    ("sim-r02-t03", "xid"): {(CheckStatus.FAIL, True, 1, "xid")},
    ("sim-r01-t14", "throttle"): {(CheckStatus.WARN, False, 3, "clocks_event_reasons")},
    ("sim-r02-t16", "memory"): {(CheckStatus.FAIL, True, 0, "ecc_uncorrectable")},
    ("sim-r02-t11", "nvlink"): {(CheckStatus.WARN, False, g, "nvlink_link_gbps") for g in range(4)},
    ("sim-r01-t02", "gpu_count"): {(CheckStatus.FAIL, True, 2, "gpus_visible")},
    ("sim-r01-t03", "nvlink"): {(CheckStatus.FAIL, False, 1, "nvlink_links_active")},
    ("sim-r01-t10", "nvlink"): {(CheckStatus.FAIL, False, 0, "nvlink_links_active")},
    ("sim-r01-t04", "memory"): {(CheckStatus.WARN, False, 0, "remapped_rows_pending")},
    ("sim-r01-t06", "memory"): {(CheckStatus.FAIL, True, 3, "remapped_rows_failed")},
    ("sim-r01-t07", "throttle"): {
        (CheckStatus.WARN, False, g, "clocks_event_reasons") for g in range(4)
    },
    ("sim-r01-t08", "xid"): {(CheckStatus.WARN, False, 2, "xid")},
}
#: nvidia-smi answers nothing on a node with a lost GPU: these checks cannot judge it.
BLIND = {("sim-r02-t03", c) for c in ("memory", "throttle", "nvlink", "drift")}


def fleet() -> SimFleet:
    data = yaml.safe_load(DEMO.read_text())
    data["faults"] = list(data["faults"]) + EXTRA_FAULTS
    return SimFleet.from_dict(data, base_dir=DEMO.parent)


def sweep_node(f: SimFleet, node: str, since_s: float | None = None) -> list[CheckResult]:
    """What the sweep does for one node: run each distinct argv once, judge every check."""
    facts = NodeFacts(node, "gb200-nvl72", 4, baseline=BASELINE, since_s=since_s)
    checks = get_checks(BUILTIN)
    done: dict[tuple[str, ...], CommandResult] = {}
    found: list[CheckResult] = []
    for check in checks:
        argvs: Sequence[Sequence[str]] = check.commands(facts)
        for argv in argvs:
            if tuple(argv) not in done:
                done[tuple(argv)] = f.runner.run(node, argv, timeout_s=5)
        found.extend(check.judge([done[tuple(a)] for a in argvs], facts))
    return found


@pytest.fixture(scope="module")
def swept() -> dict[str, list[CheckResult]]:
    f = fleet()
    nodes = [n for n in f.site.nodes() if n not in SKIPPED]
    return {node: sweep_node(f, node) for node in nodes}


def test_every_fault_found_by_the_right_check_node_and_gpu(
    swept: dict[str, list[CheckResult]],
) -> None:
    seen: dict[tuple[str, str], set[tuple[CheckStatus, bool, int | None, str]]] = {}
    for node, findings in swept.items():
        for r in findings:
            if r.status is CheckStatus.OK or (node, r.check) in BLIND:
                continue
            seen.setdefault((node, r.check), set()).add((r.status, r.fatal, r.gpu, r.metric))
    assert seen == EXPECTED


def test_healthy_nodes_are_ok_everywhere(swept: dict[str, list[CheckResult]]) -> None:
    faulty = {node for node, _ in EXPECTED}
    healthy = [n for n in swept if n not in faulty]
    assert len(swept) == 36 - len(SKIPPED)  # two racks of 18 trays
    assert {"sim-r01-t05", "sim-r01-t09"} <= set(healthy)  # slow GEMM / SDC: burn-in finds them
    for node in healthy:
        checks = {r.check for r in swept[node]}
        assert checks == set(BUILTIN)
        bad = [r for r in swept[node] if r.status is not CheckStatus.OK]
        assert not bad, (node, bad)


def test_lost_gpu_blinds_the_other_nvidia_smi_checks_with_an_error(
    swept: dict[str, list[CheckResult]],
) -> None:
    blind = [r for r in swept["sim-r02-t03"] if ("sim-r02-t03", r.check) in BLIND]
    assert {r.check for r in blind} == {c for _, c in BLIND}
    assert all(r.status is CheckStatus.ERROR and "lost" in r.message for r in blind)


def test_xid_window_and_dmesg_fallback() -> None:
    f = fleet()
    start = f.scenario.start_time_s
    later = [r for r in sweep_node(f, "sim-r02-t03", since_s=start + 1) if r.check == "xid"]
    assert [r.status for r in later] == [CheckStatus.OK]  # reported by an earlier sweep
    f.advance(600)
    f.inject(Fault(kind="xid", node="sim-r01-t01", gpus=(3,), code=48, at_s=600))
    found = [r for r in sweep_node(f, "sim-r01-t01", since_s=start + 300) if r.check == "xid"]
    assert [(r.value, r.gpu, r.fatal) for r in found] == [(48, 3, True)]
    f.runner.register("journalctl", lambda host, argv, stdin: Answer(returncode=127))
    found = [r for r in sweep_node(f, "sim-r01-t01", since_s=start + 300) if r.check == "xid"]
    assert [(r.value, r.gpu, r.evidence["source"]) for r in found] == [(48, 3, "dmesg")]


def test_dcgm_answer_can_be_registered_and_unreachable_raises() -> None:
    f = fleet()
    f.runner.register(
        "dcgmi",
        lambda host, argv, stdin: Answer(returncode=255, stdout="Error: host engine down\n"),
    )
    (res,) = [r for r in sweep_node(f, "sim-r01-t01") if r.check == "dcgm"]
    assert res.status is CheckStatus.ERROR
    with pytest.raises(ConnectError):
        f.runner.run("sim-r01-t17", ["nvidia-smi", "-L"], timeout_s=1)

"""Detection quality on a simulated 2-rack GB200 fleet: every hard fault found, no false alarm."""

from __future__ import annotations

import pytest

from burnin.profiles import load_thresholds
from burnin.verdicts import Status
from dcops.sim import SimFleet
from tests.burnin._sim_burnin import burnin_sim, flagged_gpus

TH = load_thresholds("gb200-nvl72")

FAULTS: list[dict[str, object]] = [
    {"node": "sim-r01-t02", "gpu": 1, "kind": "slow_gemm", "factor": 0.93},
    {"node": "sim-r01-t05", "gpu": 2, "kind": "slow_gemm", "factor": 0.90},
    {"node": "sim-r01-t07", "kind": "slow_node", "factor": 0.92},
    {"node": "sim-r01-t09", "gpu": 0, "kind": "sdc"},
    {"node": "sim-r01-t11", "gpu": 3, "kind": "sdc", "nan": True},
    {"node": "sim-r01-t14", "gpu": 3, "kind": "thermal_throttle"},
    {"node": "sim-r01-t16", "gpu": 2, "kind": "remapped_rows", "state": "failed"},
    {"node": "sim-r01-t17", "kind": "unreachable"},
    {"node": "sim-r02-t03", "gpu": 1, "kind": "xid", "code": 79},
    {"node": "sim-r02-t05", "gpu": 0, "kind": "xid", "code": 48},
    {"node": "sim-r02-t08", "gpu": 2, "kind": "missing_gpu"},
    {"node": "sim-r02-t11", "kind": "nvlink_degraded", "factor": 0.50},
    {"node": "sim-r02-t13", "gpu": 1, "kind": "nvlink_down", "links": 4},
    {"node": "sim-r02-t16", "gpu": 0, "kind": "ecc", "uncorrectable": 1},
    {"node": "sim-r02-t18", "kind": "hang"},
]


@pytest.mark.parametrize("seed", [1, 2])
def test_two_racks_all_hard_faults_found_no_false_positives(seed: int) -> None:
    fleet = SimFleet.from_dict(
        {"sku": "gb200-nvl72", "racks": 2, "seed": seed, "noise": 0.02, "faults": FAULTS}
    )
    try:
        run = burnin_sim(fleet, TH)
    finally:
        fleet.close()
    nodes = {n.target: n for r in run.verdict.children for n in r.children}
    for fault in FAULTS:
        node = nodes[str(fault["node"])]
        assert node.status is not Status.PASS, fault
        if "gpu" in fault and fault["kind"] not in ("missing_gpu",):
            gpu = next(g for g in node.children if g.target == f"{fault['node']}:gpu{fault['gpu']}")
            assert gpu.status is not Status.PASS, fault
    assert nodes["sim-r01-t17"].status is Status.ERROR
    assert nodes["sim-r02-t18"].status is Status.ERROR
    faulty_nodes = {str(f["node"]) for f in FAULTS}
    healthy = {g.target for n in nodes.values() if n.target not in faulty_nodes for g in n.children}
    assert len(healthy) == 4 * (36 - len(faulty_nodes))
    assert flagged_gpus(run.verdict) & healthy == set()
    assert run.verdict.status is Status.FAIL
    loc = run.localizations["r02"]
    assert "sim-r02-t11" in {c.target.split(":")[0] for c in loc.culprits}
    assert loc.method == "staged" and loc.stages <= 4 and loc.gpu_seconds > 0


def test_healthy_fleet_passes() -> None:
    fleet = SimFleet.from_dict({"sku": "gb200-nvl72", "racks": 2, "seed": 5, "noise": 0.02})
    run = burnin_sim(fleet, TH)
    assert run.verdict.status is Status.PASS, run.verdict.to_dict()
    assert run.localizations == {}

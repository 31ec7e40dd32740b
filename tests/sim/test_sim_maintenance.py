"""The simulator answers remediation commands: reboots take time and clear transient faults."""

from __future__ import annotations

import pytest

from dcops.errors import CommandTimeout, ConnectError
from dcops.sim import SimFleet
from dcops.sim.maintenance import REBOOT_S, Maintenance, install, restore_world, world_state

SCENARIO = {
    "racks": 1,
    "seed": 3,
    "faults": [
        {"node": "sim-r01-t01", "kind": "xid", "gpu": 2, "code": 79},
        {"node": "sim-r01-t02", "kind": "xid", "gpu": 0, "code": 48},
        {"node": "sim-r01-t02", "kind": "ecc", "gpu": 0, "uncorrectable": 2},
        {"node": "sim-r01-t03", "kind": "hang"},
        {"node": "sim-r01-t04", "kind": "remapped_rows", "gpu": 1},
    ],
}


def _fleet() -> tuple[SimFleet, Maintenance]:
    fleet = SimFleet.from_dict(SCENARIO)
    return fleet, install(fleet)


def test_reboot_takes_time_and_brings_the_lost_gpu_back() -> None:
    fleet, m = _fleet()
    node = "sim-r01-t01"
    assert fleet.probe.read(node).gpus[2].lost
    assert fleet.runner.run(node, ["systemctl", "reboot"], timeout_s=5).returncode == 0
    with pytest.raises(ConnectError):
        fleet.runner.run(node, ["true"], timeout_s=5)
    m.sleep(REBOOT_S / 2)
    with pytest.raises(ConnectError):
        fleet.runner.run(node, ["true"], timeout_s=5)
    m.sleep(REBOOT_S)
    assert fleet.runner.run(node, ["true"], timeout_s=5).ok
    assert not fleet.probe.read(node).gpus[2].lost


def test_uncorrectable_ecc_survives_reboot_and_reset() -> None:
    fleet, m = _fleet()
    node = "sim-r01-t02"
    reset = fleet.runner.run(node, ["nvidia-smi", "-r", "-i", "0"], timeout_s=30)
    assert reset.ok and "reset" in reset.stdout
    gpu = fleet.probe.read(node).gpus[0]
    assert gpu.ecc_uncorrectable == 2 and not gpu.xids
    fleet.runner.run(node, ["reboot"], timeout_s=5)
    m.sleep(REBOOT_S + 1)
    assert fleet.probe.read(node).gpus[0].ecc_uncorrectable == 2


def test_lost_gpu_cannot_be_reset_and_hung_node_stays_hung() -> None:
    fleet, _ = _fleet()
    out = fleet.runner.run("sim-r01-t01", ["nvidia-smi", "-r", "-i", "2"], timeout_s=30)
    assert out.returncode == 15
    with pytest.raises(CommandTimeout):
        fleet.runner.run("sim-r01-t03", ["systemctl", "reboot"], timeout_s=0.05)
    with pytest.raises(CommandTimeout):
        fleet.runner.run("sim-r01-t03", ["true"], timeout_s=0.05)


def test_reset_applies_pending_remap_and_services_answer() -> None:
    fleet, _ = _fleet()
    node = "sim-r01-t04"
    assert fleet.probe.read(node).gpus[1].remapped_rows_pending
    fleet.runner.run(node, ["nvidia-smi", "-r", "-i", "1"], timeout_s=30)
    assert not fleet.probe.read(node).gpus[1].remapped_rows_pending
    restart = fleet.runner.run(node, ["systemctl", "restart", "nvidia-fabricmanager"], timeout_s=9)
    active = fleet.runner.run(node, ["systemctl", "is-active", "nvidia-fabricmanager"], timeout_s=9)
    assert restart.ok and active.stdout == "active\n"


def test_world_state_round_trips_into_a_fresh_fleet() -> None:
    fleet, m = _fleet()
    fleet.runner.run("sim-r01-t01", ["systemctl", "reboot"], timeout_s=5)
    state = world_state(fleet, m)
    again, m2 = _fleet()
    restore_world(again, m2, state)
    with pytest.raises(ConnectError):
        again.runner.run("sim-r01-t01", ["true"], timeout_s=5)
    m2.sleep(REBOOT_S + 1)
    assert not again.probe.read("sim-r01-t01").gpus[2].lost
    assert again.probe.read("sim-r01-t02").gpus[0].ecc_uncorrectable == 2

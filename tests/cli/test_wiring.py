"""The composition root (dcops/cli/wiring.py): config and mode -> ports, for every command."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from pathlib import Path

import pytest

from dcops.actions import ActionSettings
from dcops.cli.wiring import Mode, RemoteBurnin, Where, Wiring
from dcops.config import Config, SlurmConfig
from dcops.errors import InputError
from dcops.node_actions.stored import StoredNodeActions
from dcops.remote.local import LocalRunner

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "examples" / "scenarios" / "demo.yaml")


def _cfg(tmp_path: Path, **fields: object) -> Config:
    return dataclasses.replace(Config(data_dir=tmp_path / "data"), **fields)  # type: ignore[arg-type]


def test_where_picks_the_mode_and_refuses_two() -> None:
    assert Where.choose(scenario=DEMO).mode is Mode.SIM
    assert Where.choose(local=True).mode is Mode.LOCAL
    assert Where.choose().mode is Mode.SSH
    assert Where.choose(remote=Mode.SLURM).mode is Mode.SLURM
    with pytest.raises(InputError, match="choose one"):
        Where.choose(scenario=DEMO, local=True)


def test_sim_mode_shares_one_stored_scheduler_across_commands(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    with Wiring(cfg, Where.choose(scenario=DEMO)) as first:
        site = first.site()
        assert site.name == first.fleet().site.name
        assert first.runner() is first.fleet().runner
        actions = first.node_actions()
        assert isinstance(actions, StoredNodeActions)
        node = site.nodes()[0]
        actions.drain([node], "dcops: test")
    # a later command (a new wiring, as a new process would make) sees the drain
    with Wiring(cfg, Where.choose(scenario=DEMO)) as second:
        later = second.node_actions()
        assert later is not None
        state = later.states([node])[node]
        assert state.drain and state.reason == "dcops: test"


def test_what_a_wiring_opened_is_closed_on_exit(tmp_path: Path) -> None:
    with Wiring(_cfg(tmp_path), Where.choose(scenario=DEMO)) as wiring:
        store = wiring.store()
        store.conn.execute("SELECT 1")
    with pytest.raises(sqlite3.ProgrammingError):
        store.conn.execute("SELECT 1")


def test_local_mode_runs_here_and_ssh_mode_needs_a_site_when_asked(tmp_path: Path) -> None:
    with Wiring(_cfg(tmp_path), Where.choose(local=True)) as wiring:
        assert isinstance(wiring.runner(), LocalRunner)
        assert len(wiring.site().nodes()) == 1
    with Wiring(_cfg(tmp_path), Where.choose()) as wiring:
        assert wiring.configured_site() is None
        with pytest.raises(InputError, match="need a site"):
            wiring.burnin_ports(nodes=["n1"], remote=RemoteBurnin(launcher="ssh"))


def test_node_actions_follow_the_flag_then_the_config(tmp_path: Path) -> None:
    none = _cfg(tmp_path, slurm=SlurmConfig(node_actions="none"))
    with Wiring(none, Where.choose()) as wiring:
        assert wiring.node_actions() is None
    with Wiring(none, Where.choose(node_actions="recording")) as wiring:
        assert isinstance(wiring.node_actions(), StoredNodeActions)
    with Wiring(_cfg(tmp_path), Where.choose(scenario=DEMO, node_actions="none")) as wiring:
        assert wiring.node_actions() is None


def test_the_actuator_takes_config_limits_with_flags_on_top(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, actions=ActionSettings(max_drain_rack=0.5, max_drain_fleet=0.4))
    with Wiring(cfg, Where.choose(scenario=DEMO)) as wiring:
        actuator = wiring.actuator(wiring.node_actions(), max_drain_fleet=0.1)
        assert actuator.settings.max_drain_rack == 0.5
        assert actuator.settings.max_drain_fleet == 0.1
        assert actuator.topology is not None  # the scenario's racks, for the breaker


# What builds adapters: only the composition root. A command that made its own SSH runner,
# simulated fleet, scheduler port or actuator would drift from the others again.
_ADAPTERS = re.compile(
    r"\b(SshRunner|LocalRunner|StoredNodeActions|Actuator|NvmlProbe|SlurmCommands)\("
    r"|\b(load_fleet|open_world|build_backend|backend_options|local_ports|remote_ports"
    r"|sim_ports)\("
    r"|node_actions import create|SimFleet\.from_file\("
)
# `dcops sim measure` measures the scenario file as written: the simulator's own check tool.
_OWN_FLEET = {"sim.py"}


def test_no_command_builds_its_own_adapters() -> None:
    found = []
    for path in sorted((REPO / "dcops" / "cli").glob("*.py")):
        if path.name == "wiring.py":
            continue
        if path.name in _OWN_FLEET:
            assert "SimFleet.from_file(" in path.read_text()  # the exception is still needed
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _ADAPTERS.search(line):
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert found == []

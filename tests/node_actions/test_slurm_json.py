"""parse_nodes_json on captured real outputs of several Slurm releases (tests/data/slurm)."""

from __future__ import annotations

import json

import pytest

from dcops.errors import SchedulerError
from dcops.node_actions.slurm_json import normalize_states, parse_nodes_json
from tests.conftest import data_file

RESTD_VERSIONS = ["23.11/0.0.40", "24.05/0.0.41", "24.11/0.0.42", "25.05/0.0.43", "25.11/0.0.44"]


def _load(relpath: str) -> str:
    return data_file(f"slurm/{relpath}").read_text()


@pytest.mark.parametrize("version", RESTD_VERSIONS)
def test_restd_drained_node(version: str) -> None:
    states = parse_nodes_json(_load(f"slurmrestd/{version}/slurm-node-drain.json"))
    (state,) = states.values()
    assert state.states == ("IDLE", "DRAIN")
    assert state.drain and state.drained and not state.draining and not state.in_service
    assert state.reason == "ECC memory error"
    assert state.reason_user == "root"
    assert state.reason_time_s is not None and state.reason_time_s > 1.7e9
    assert not state.by_dcops


@pytest.mark.parametrize("version", RESTD_VERSIONS)
def test_restd_idle_down_and_allocated(version: str) -> None:
    idle = next(
        iter(parse_nodes_json(_load(f"slurmrestd/{version}/slurm-node-idle.json")).values())
    )
    assert idle.base == "IDLE"
    if not idle.drain:  # the 23.11 capture's "idle" node happens to be drained too
        assert idle.in_service and idle.reason == "" and idle.reason_user is None
        assert idle.reason_time_s is None
    down = next(
        iter(parse_nodes_json(_load(f"slurmrestd/{version}/slurm-node-down.json")).values())
    )
    assert down.down and not down.in_service and down.reason
    alloc = parse_nodes_json(_load(f"slurmrestd/{version}/slurm-node-allocated.json"))
    assert next(iter(alloc.values())).base == "ALLOCATED"


@pytest.mark.parametrize("version", ["24.05/0.0.41", "25.11/0.0.44"])
def test_restd_draining_node_still_runs_work(version: str) -> None:
    (state,) = parse_nodes_json(_load(f"slurmrestd/{version}/slurm-node-draining.json")).values()
    assert state.states == ("MIXED", "DRAIN")
    assert state.draining and not state.drained


@pytest.mark.parametrize("version", RESTD_VERSIONS)
def test_restd_all_nodes(version: str) -> None:
    text = _load(f"slurmrestd/{version}/slurm-nodes.json")
    states = parse_nodes_json(text)
    raw = json.loads(text)["nodes"]
    assert sorted(states) == sorted(n["name"] for n in raw)
    for node in raw:
        assert list(states[node["name"]].states) == [s.upper() for s in node["state"]]


def test_restd_unfound_node_is_a_scheduler_error() -> None:
    with pytest.raises(SchedulerError, match="Failure to query node"):
        parse_nodes_json(_load("slurmrestd/24.05/0.0.41/slurm-node-unfound.json"))


def test_sinfo_21_08_lowercase_state_string() -> None:
    states = parse_nodes_json(_load("cli_json/rivosinc/sinfo_--json_slurm-21.08.5_v0.0.37.json"))
    assert {s.base for s in states.values()} == {"ALLOCATED", "DOWN", "IDLE", "MIXED"}
    assert all(s.reason_time_s is None or s.reason for s in states.values())


def test_sinfo_23_02_grouped_entries() -> None:
    states = parse_nodes_json(_load("cli_json/rivosinc/sinfo_--json_slurm-23.02.4_v0.0.39.json"))
    state = states["cs62"]
    assert state.states == ("ALLOCATED", "DRAIN")
    assert state.draining
    assert state.reason == "IT-4461"
    assert state.reason_user == "root"
    assert state.reason_time_s == 1705613872.0


def test_sinfo_22_05_state_and_flags() -> None:
    """The shape `sinfo --json` prints on 22.05 (openapi/v0.0.38), as captured on the test rig."""
    doc = {
        "meta": {"plugin": {"type": "openapi/v0.0.38"}},
        "errors": [],
        "nodes": [
            {
                "name": "sim-r01-t03",
                "state": "idle",
                "state_flags": ["DRAIN"],
                "reason": "dcops: test x",
                "reason_changed_at": 1795429686,
                "reason_set_by_user": "root",
            },
            {
                "name": "sim-r01-t04",
                "state": "idle",
                "state_flags": ["NOT_RESPONDING"],
                "reason": "",
                "reason_changed_at": 0,
                "reason_set_by_user": None,
            },
        ],
    }
    states = parse_nodes_json(json.dumps(doc))
    drained = states["sim-r01-t03"]
    assert drained.states == ("IDLE", "DRAIN") and drained.by_dcops
    assert drained.reason_time_s == 1795429686.0 and drained.reason_user == "root"
    waking = states["sim-r01-t04"]
    assert not waking.responding and not waking.in_service and waking.reason_time_s is None


@pytest.mark.parametrize(
    ("state", "flags", "expected"),
    [
        ("drained", None, ("IDLE", "DRAIN")),
        ("draining", None, ("ALLOCATED", "DRAIN")),
        ("down*", None, ("DOWN", "NOT_RESPONDING")),
        ("idle~", None, ("IDLE", "POWERED_DOWN")),
        ("IDLE+DRAIN", None, ("IDLE", "DRAIN")),
        (["MIXED", "DRAIN", "DRAIN"], None, ("MIXED", "DRAIN")),
        ("idle", ["COMPLETING"], ("IDLE", "COMPLETING")),
        (None, None, ("UNKNOWN",)),
        ("", [], ("UNKNOWN",)),
    ],
)
def test_normalize_states(state: object, flags: object, expected: tuple[str, ...]) -> None:
    assert normalize_states(state, flags) == expected


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[1, 2]", '{"meta": {}}', '{"errors": [{"description": "boom"}]}'],
)
def test_bad_documents_are_scheduler_errors(text: str) -> None:
    with pytest.raises(SchedulerError):
        parse_nodes_json(text)


def test_entries_without_names_are_skipped() -> None:
    states = parse_nodes_json({"nodes": [{"state": "idle"}, "junk", {"name": "n1", "state": 3}]})
    assert list(states) == ["n1"]
    assert states["n1"].states == ("UNKNOWN",)

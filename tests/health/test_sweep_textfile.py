"""The sweep textfile's lifecycle and drained-since metrics, from real sweep reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dcops.node_actions import RecordingNodeActions
from dcops.sim import Fault, SimFleet
from dcops.store import Store
from health.textfile import LIFECYCLE_STATES, drained_by_dcops_since, write
from tests.health.test_sweep_engine import T, sweep

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fleet() -> Iterator[SimFleet]:
    with SimFleet.from_dict({"racks": 1, "seed": 3}) as f:
        yield f


def _families(path: Path) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        f.name: [(s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(path.read_text())
    }


def test_drained_by_dcops_since_and_lifecycle(fleet: SimFleet, tmp_path: Path) -> None:
    actions = RecordingNodeActions(fleet.site.nodes(), clock=lambda: 1_700_000_000.0)
    actions.drain([T(6)], "psu swap by ops")  # an operator's drain: never "by dcops"
    fleet.inject(Fault(kind="xid", node=T(4), gpus=(2,), code=79))
    with Store(tmp_path / "state.db") as store:
        first = sweep(fleet, store, actions)
        assert [a["node"] for a in first["actions"] if a["outcome"] == "ok"] == [T(4)]
        second = sweep(fleet, store, actions)  # reads the drain back from the scheduler
    out = tmp_path / "textfile"
    out.mkdir()
    families = _families(write(out, second))
    since = {
        labels["node"]: value
        for labels, value in families["dcops_node_drained_by_dcops_since_timestamp_seconds"]
    }
    assert since == {T(4): 1_700_000_000.0}
    states = {
        (labels["node"], labels["state"]): value
        for labels, value in families["dcops_node_lifecycle_state"]
    }
    assert len(states) == 18 * len(LIFECYCLE_STATES)
    assert states[(T(4), "drained")] == 1 and states[(T(4), "ok")] == 0
    assert sum(v for (node, _), v in states.items() if node == T(5)) == 1
    assert states[(T(5), "ok")] == 1


def test_drained_since_needs_a_dcops_drain_with_a_time() -> None:
    entry = {
        "scheduler": {
            "states": ["IDLE", "DRAIN"],
            "reason": "dcops: xid: gpu2 XID 79",
            "reason_time_s": 1.5e9,
        }
    }
    assert drained_by_dcops_since(entry) == 1.5e9
    assert drained_by_dcops_since({"scheduler": {**entry["scheduler"], "reason": "ops"}}) is None
    assert drained_by_dcops_since({"scheduler": {**entry["scheduler"], "states": ["IDLE"]}}) is None
    no_time = {"scheduler": {**entry["scheduler"], "reason_time_s": None}}
    assert drained_by_dcops_since(no_time) is None
    assert drained_by_dcops_since({"scheduler": None}) is None

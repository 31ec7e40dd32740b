"""run_sweep end to end on the fleet simulator, with in-memory node actions and a real store."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dcops.actions import ActionSettings
from dcops.node_actions import RecordingNodeActions, SchedulerNodeState
from dcops.sim import Fault, SimFleet
from dcops.store import AuditLog, Store
from health.base import Check, check_names, get_check, get_checks
from health.sweep import SweepOptions, SweepPorts, exit_status, run_sweep
from health.textfile import render, write
from tests.health import _sweep_checks

pytestmark = pytest.mark.timeout(60)

T = "sim-r01-t{:02d}".format


@pytest.fixture
def fleet() -> Iterator[SimFleet]:
    with SimFleet.from_dict({"racks": 2, "seed": 3}) as f:
        yield f


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "state.db") as s:
        yield s


@pytest.fixture(autouse=True)
def _no_flags() -> Iterator[None]:
    _sweep_checks.FLAGGED.clear()
    yield
    _sweep_checks.FLAGGED.clear()


def _checks(names: Sequence[str] = ("t-smi", "t-flag")) -> list[Check]:
    return [get_check(n) for n in names]


def sweep(
    fleet: SimFleet,
    store: Store,
    actions: RecordingNodeActions | None,
    *,
    apply: bool = True,
    nodes: Sequence[str] | None = None,
    **opts: Any,
) -> dict[str, Any]:
    ports = SweepPorts(
        runner=fleet.runner,
        site=fleet.site,
        checks=_checks(),
        store=store,
        audit=AuditLog(store, actor="test"),
        actions=actions,
    )
    options = SweepOptions(apply=apply, timeout_s=opts.pop("timeout_s", 5.0), mode="sim", **opts)
    return run_sweep(ports, nodes or fleet.site.nodes(), options)


def by_node(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["node"]: n for n in report["nodes"]}


def test_healthy_fleet_is_ok_and_stored(fleet: SimFleet, store: Store) -> None:
    actions = RecordingNodeActions(fleet.site.nodes())
    report = sweep(fleet, store, actions)
    assert report["status"] == "ok" and exit_status(report) == 0
    assert report["summary"] == {"ok": 36, "warn": 0, "suspect": 0, "fail": 0, "error": 0}
    assert report["actions"] == [] and report["consistency"] == []
    row = store.conn.execute("SELECT kind, status FROM runs").fetchone()
    assert tuple(row) == ("sweep", "ok")
    assert store.conn.execute("SELECT COUNT(*) FROM node_state").fetchone()[0] == 36


def test_xid79_drains_at_once_with_evidence_and_audit(fleet: SimFleet, store: Store) -> None:
    fleet.inject(Fault(kind="xid", node=T(3), gpus=(1,), code=79))
    actions = RecordingNodeActions(fleet.site.nodes())
    report = sweep(fleet, store, actions)
    node = by_node(report)[T(3)]
    assert node["status"] == "fail" and node["state"] == "drained"
    assert node["checks"][0]["fatal"] is True
    assert exit_status(report) == 1
    (drain,) = report["actions"]
    assert drain["outcome"] == "ok" and drain["reason"].startswith("dcops: t-smi:")
    state = actions.states([T(3)])[T(3)]
    assert state.drain and state.by_dcops
    intent, rec = AuditLog(store).records(action="drain")  # intent before the call, outcome after
    assert (intent.outcome, rec.target, rec.outcome) == ("started", T(3), "ok")
    assert intent.evidence["evidence"][0]["message"] == "GPU fell off the bus (XID 79)"
    assert rec.evidence["action_id"] == drain["id"] and rec.evidence["source"].startswith("sweep:")


def test_non_fatal_suspect_then_drain_then_repair_then_resume(
    fleet: SimFleet, store: Store
) -> None:
    actions = RecordingNodeActions(fleet.site.nodes())
    _sweep_checks.FLAGGED.add(T(5))
    first = sweep(fleet, store, actions)
    assert by_node(first)[T(5)]["status"] == "suspect" and first["actions"] == []
    (note,) = first["consistency"]
    assert note == {
        "node": T(5),
        "kind": "failing-not-drained",
        "message": "suspect this sweep but still in service (not drained yet)",
    }
    second = sweep(fleet, store, actions)
    assert by_node(second)[T(5)]["status"] == "fail"
    assert [(a["action"], a["outcome"]) for a in second["actions"]] == [("drain", "ok")]
    assert actions.states([T(5)])[T(5)].reason.startswith("dcops: t-flag: flagged by the test")

    _sweep_checks.FLAGGED.clear()  # repaired
    third = sweep(fleet, store, actions)
    assert by_node(third)[T(5)]["state"] == "repair" and third["actions"] == []
    assert third["consistency"][0]["kind"] == "dcops-drained-but-healthy"
    fourth = sweep(fleet, store, actions)
    assert [(a["action"], a["outcome"]) for a in fourth["actions"]] == [("resume", "ok")]
    assert actions.states([T(5)])[T(5)].in_service
    assert by_node(fourth)[T(5)]["state"] == "ok"
    records = AuditLog(store).records()
    assert [(r.action, r.outcome) for r in records if r.action != "node.lifecycle"] == [
        ("drain", "started"),
        ("drain", "ok"),
        ("resume", "started"),
        ("resume", "ok"),
    ]
    # every lifecycle state change is an audited event too
    changes = [
        (r.evidence["from"], r.evidence["to"])
        for r in records
        if r.action == "node.lifecycle" and r.target == T(5)
    ]
    assert changes == [
        ("ok", "suspect"),
        ("suspect", "drained"),
        ("drained", "repair"),
        ("repair", "ok"),
    ]


def test_admin_drained_node_is_never_resumed_nor_redrained(fleet: SimFleet, store: Store) -> None:
    actions = RecordingNodeActions(fleet.site.nodes())
    actions.drain([T(7)], "RMA ticket 4711")
    fleet.inject(Fault(kind="xid", node=T(7), gpus=(0,), code=79))
    report = sweep(fleet, store, actions)
    assert report["actions"] == []
    assert actions.states([T(7)])[T(7)].reason == "RMA ticket 4711"
    fleet.repair(T(7))
    for _ in range(3):
        report = sweep(fleet, store, actions)
        assert report["actions"] == []
    assert actions.states([T(7)])[T(7)].drain
    kinds = {c["kind"] for c in report["consistency"] if c["node"] == T(7)}
    assert kinds == {"admin-drained-but-healthy"}


def test_dry_run_changes_nothing(fleet: SimFleet, store: Store) -> None:
    fleet.inject(Fault(kind="xid", node=T(2), gpus=(0,), code=79))
    actions = RecordingNodeActions(fleet.site.nodes())
    report = sweep(fleet, store, actions, apply=False)
    assert [(a["action"], a["node"], a["outcome"]) for a in report["actions"]] == [
        ("drain", T(2), "dry-run")
    ]
    assert actions.log == [] and AuditLog(store).records() == []
    assert store.conn.execute("SELECT COUNT(*) FROM node_state").fetchone()[0] == 0


def test_circuit_breaker_drains_none_and_alerts(fleet: SimFleet, store: Store) -> None:
    for t in range(1, 8):  # 7 of 18 in rack r01 > 34%
        fleet.inject(Fault(kind="xid", node=T(t), gpus=(0,), code=79))
    actions = RecordingNodeActions(fleet.site.nodes())
    report = sweep(fleet, store, actions)
    assert report["circuit_breaker"].startswith("circuit breaker: 7 of 18 nodes of rack r01")
    assert actions.log == []
    assert {a["outcome"] for a in report["actions"]} == {"refused"}
    assert exit_status(report) == 5
    recs = AuditLog(store).records(action="drain")
    assert sorted(r.target for r in recs) == [T(t) for t in range(1, 8)]
    assert {r.outcome for r in recs} == {"refused"}
    # the nodes stay suspect (in service), so the next sweep tries again
    assert {by_node(report)[T(t)]["state"] for t in range(1, 8)} == {"suspect"}
    again = sweep(
        fleet, store, actions, action_settings=ActionSettings(max_drain_fleet=1, max_drain_rack=1)
    )
    assert len([a for a in again["actions"] if a["outcome"] == "ok"]) == 7


def test_unreachable_and_hung_nodes_are_errors_within_the_deadline(
    fleet: SimFleet, store: Store
) -> None:
    fleet.inject(Fault(kind="unreachable", node=T(9)))
    fleet.inject(Fault(kind="hang", node=T(10)))
    actions = RecordingNodeActions(fleet.site.nodes())
    report = sweep(fleet, store, actions, timeout_s=30, deadline_s=3)
    nodes = by_node(report)
    assert nodes[T(9)]["status"] == "error" and "resolve" not in nodes[T(9)]["error"]
    hung = nodes[T(10)]
    assert hung["status"] == "error"
    # depending on which fires first (the deadline or the per-command timeout cut to it),
    # the hang shows as a node error or as every check's error: never as ok
    said = (hung["error"] or "") + " ".join(c["message"] for c in hung["checks"])
    assert any(word in said for word in ("deadline", "hung", "no time left")), said
    assert all(c["status"] == "error" for c in hung["checks"])
    assert report["collect_s"] < 10
    assert report["actions"] == []
    assert report["summary"]["ok"] == 34


def test_textfile_parses_with_prometheus_client(
    fleet: SimFleet, store: Store, tmp_path: Path
) -> None:
    fleet.inject(Fault(kind="xid", node=T(4), gpus=(2,), code=79))
    report = sweep(fleet, store, RecordingNodeActions(fleet.site.nodes()), apply=False)
    out = tmp_path / "textfile"
    out.mkdir()
    path = write(out, report)
    assert path.name == "dcops_sweep.prom" and [p.name for p in out.iterdir()] == [path.name]
    families = {f.name: f for f in text_string_to_metric_families(path.read_text())}
    health = {
        (s.labels["node"], s.labels["check"]): s.value
        for s in families["dcops_node_health"].samples
    }
    assert health[(T(4), "t-smi")] == 0 and health[(T(5), "t-smi")] == 1
    assert len(health) == 72
    nodes = {s.labels["state"]: s.value for s in families["dcops_sweep_nodes"].samples}
    assert nodes == {"ok": 35, "warn": 0, "suspect": 0, "fail": 1, "error": 0}
    assert families["dcops_sweep_duration_seconds"].samples[0].value >= 0
    assert families["dcops_sweep_last_success_timestamp_seconds"].samples[0].value > 1e9
    assert render(report) == path.read_text()


def test_only_chosen_nodes(fleet: SimFleet, store: Store) -> None:
    report = sweep(fleet, store, None, nodes=[T(1), T(2)], apply=False)
    assert [n["node"] for n in report["nodes"]] == [T(1), T(2)]
    assert report["targets"] == "sim-r01-t[01-02]"


def test_real_checks_drain_xid79_and_uncorrectable_ecc_at_once(
    fleet: SimFleet, store: Store
) -> None:
    """The built-in checks (health.checks) on the simulator: fatal findings drain at once."""
    if not {"xid", "gpu_count", "memory"} <= set(check_names()):
        pytest.skip("the built-in checks are not installed")
    fleet.inject(Fault(kind="xid", node=T(3), gpus=(1,), code=79))
    fleet.inject(Fault(kind="ecc", node=T(8), gpus=(0,), uncorrectable=1))
    actions = RecordingNodeActions(fleet.site.nodes())
    ports = SweepPorts(
        runner=fleet.runner,
        site=fleet.site,
        checks=get_checks(),
        store=store,
        audit=AuditLog(store, actor="test"),
        actions=actions,
    )
    report = run_sweep(ports, fleet.site.nodes(), SweepOptions(apply=True, timeout_s=5))
    drained = {a["node"]: a for a in report["actions"] if a["outcome"] == "ok"}
    assert set(drained) == {T(3), T(8)}
    assert {n["node"] for n in report["nodes"] if n["status"] == "fail"} == {T(3), T(8)}
    assert any(
        f["fatal"] and f["check"] in ("xid", "gpu_count") for f in by_node(report)[T(3)]["checks"]
    )
    assert actions.states([T(3)])[T(3)].reason.startswith("dcops: ")
    assert report["summary"]["ok"] == 34


def test_skipped_resume_says_why_once(fleet: SimFleet, store: Store) -> None:
    """An operator re-drains while the sweep runs: the skip names the node and the why once."""
    import io

    from rich.console import Console

    from dcops.cli.sweep import _render

    actions = RecordingNodeActions(fleet.site.nodes())
    _sweep_checks.FLAGGED.add(T(5))
    sweep(fleet, store, actions)
    sweep(fleet, store, actions)  # drained
    _sweep_checks.FLAGGED.clear()
    sweep(fleet, store, actions)  # repair, 1 clean
    read = actions.states

    def states(nodes: str | Iterable[str] | None = None) -> dict[str, SchedulerNodeState]:
        found = read(nodes)
        actions.drain([T(5)], "admin: RMA 1")  # after the sweep read the scheduler
        return found

    actions.states = states  # type: ignore[method-assign]
    report = sweep(fleet, store, actions, nodes=[T(5)])
    (resume,) = report["actions"]
    assert resume["outcome"] == (
        "skipped: out of service by someone else (admin: RMA 1); "
        "dcops returns only what it took out"
    )
    out = io.StringIO()
    _render(Console(file=out, width=200), report)
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("resume ")]
    assert lines == [f"resume {T(5)}: {resume['outcome']}"]  # not the old drain's reason too

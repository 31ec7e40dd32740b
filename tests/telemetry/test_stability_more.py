"""ETTR on restart chains, interruptions per node, lemon nodes, badput."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from telemetry.jobs import JobRecord, jobs_frame
from telemetry.stability import badput, chain_roots, ettr, lemon_nodes, node_interruptions

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def job(
    jid: str,
    state: str,
    submit: float,
    start: float | None,
    end: float | None,
    *,
    prev: str | None = None,
    nodes: tuple[str, ...] = ("n1",),
    gpus: float = 8.0,
    extra: dict[str, str] | None = None,
) -> JobRecord:
    return JobRecord(
        job_id=jid,
        source="sacct",
        backend="slurm",
        state=state,
        submit_time=h(submit),
        start_time=None if start is None else h(start),
        end_time=None if end is None else h(end),
        restart_of=prev,
        nodes=nodes,
        num_nodes=len(nodes),
        gpus=gpus,
        extra=extra,
    )


CHAIN = [
    # submitted at 0, waited 1 h, ran 10 h, node failed; restarted after 1 h, ran 8 h, done
    job("a@0", "node_fail", 0, 1, 11),
    job("a", "completed", 11, 12, 20, prev="a@0"),
    job("solo", "completed", 0, 0, 4),
]


def test_chain_roots_follow_restart_of() -> None:
    frame = jobs_frame(CHAIN)
    assert chain_roots(frame).tolist() == ["a@0", "a@0", "solo"]


def test_ettr_of_hand_built_chains() -> None:
    out = ettr(jobs_frame(CHAIN))
    by = {c.first_job_id: c for c in out.chains}
    a = by["a@0"]
    assert (a.attempts, a.interruptions, a.state, a.last_job_id) == (2, 1, "completed", "a")
    assert a.wall_clock_s == 20 * 3600 and a.productive_s == 18 * 3600
    assert a.ettr == pytest.approx(0.9)
    assert by["solo"].ettr == 1.0
    assert out.ettr == pytest.approx(22 / 24)


def test_ettr_with_checkpoint_loss_and_startup() -> None:
    out = ettr(jobs_frame(CHAIN[:2]), checkpoint_interval_s=7200, startup_s=600)
    # 10 h - 10 min - 1 h lost + 8 h - 10 min = 16 h 40 min over 20 h
    assert out.chains[0].productive_s == pytest.approx(16 * 3600 + 40 * 60)


def test_ettr_of_running_chain_needs_now() -> None:
    frame = jobs_frame([job("r", "running", 0, 1, None)])
    assert ettr(frame).chains == ()
    (c,) = ettr(frame, now=h(5)).chains
    assert c.ettr == pytest.approx(4 / 5)


def test_ettr_rejects_cycles() -> None:
    frame = jobs_frame(
        [job("x", "failed", 0, 0, 1, prev="y"), job("y", "failed", 0, 1, 2, prev="x")]
    )
    with pytest.raises(ValueError, match="cycle"):
        ettr(frame)


def _fleet_jobs() -> pd.DataFrame:
    return jobs_frame(
        [
            job("1", "node_fail", 0, 0, 10, nodes=("n1", "n2"), extra={"failed_node": "n2"}),
            job("2", "node_fail", 0, 10, 20, nodes=("n2", "n3")),
            job("3", "failed", 0, 20, 30, nodes=("n2",)),
            job("4", "failed", 0, 20, 30, nodes=("n4",)),
            job("5", "completed", 0, 0, 48, nodes=("n1", "n3", "n4")),
            job("6", "node_fail", 0, 30, 40, nodes=("n3",)),
            job("7", "cancelled", 0, 40, 42, nodes=("n2",), gpus=4.0),
        ]
    )


XIDS = pd.DataFrame(
    {
        "node": ["n2", "n4", "n4"],
        "time": [h(25), h(31), h(5)],  # n4's XIDs are outside job 4's window
        "xid": [79, 48, 79],
    }
)


def test_interruptions_attributed_to_nodes() -> None:
    per = node_interruptions(_fleet_jobs(), XIDS).set_index("node")
    # job 1 names n2 as its failed node; job 2 charges both nodes; job 3 by XID 79
    assert list(per.loc["n2", ["interruptions", "node_fail", "xid"]]) == [3, 2, 1]
    assert list(per.loc["n3", ["interruptions", "node_fail", "xid"]]) == [2, 2, 0]
    assert "n1" not in per.index and "n4" not in per.index
    # exposure of n2: jobs 1, 2, 3, 7 = 10 + 10 + 10 + 2 hours
    assert per.loc["n2", "exposure_node_days"] == pytest.approx(32 / 24)
    assert per.loc["n2", "per_1000_node_days"] == pytest.approx(3000 / (32 / 24))


def test_lemon_ranking() -> None:
    lemons = lemon_nodes(node_interruptions(_fleet_jobs(), XIDS))
    assert [(n.rank, n.node, n.interruptions) for n in lemons] == [(1, "n2", 3), (2, "n3", 2)]
    assert (
        lemon_nodes(node_interruptions(_fleet_jobs(), XIDS), min_interruptions=3, top=1)[0].node
        == "n2"
    )
    # ties on count: the higher rate (less exposure) ranks first
    per = pd.DataFrame(
        {
            "node": ["a", "b"],
            "interruptions": [2, 2],
            "node_fail": [2, 2],
            "xid": [0, 0],
            "jobs": [2, 2],
            "exposure_node_days": [10.0, 1.0],
            "per_1000_node_days": [200.0, 2000.0],
            "last_time": [h(1), h(2)],
        }
    )
    assert [n.node for n in lemon_nodes(per)] == ["b", "a"]


def test_badput_gpu_hours_and_energy() -> None:
    jobs = _fleet_jobs()
    energy = pd.DataFrame({"job_id": ["1", "5", "7"], "energy_mj": [100, 900, 50]})
    bp = badput(jobs, energy)
    # completed: job 5 (8 GPUs x 48 h); the others are badput
    assert bp.gpu_hours == 8 * (10 + 10 + 10 + 10 + 48 + 10) + 4 * 2
    assert bp.badput_gpu_hours == 8 * 50 + 4 * 2
    assert bp.by_state["node_fail"]["jobs"] == 3
    assert bp.by_state["cancelled"]["gpu_hours"] == 8.0
    assert (bp.energy_mj, bp.badput_energy_mj) == (1050, 150)
    assert bp.energy_share == pytest.approx(150 / 1050)
    assert badput(jobs).energy_mj is None

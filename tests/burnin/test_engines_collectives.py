"""TorchCollectiveEngine with real gloo ranks on CPU: correctness, busbw, faults, timeouts."""

from __future__ import annotations

import json
import socket
import time

import pytest

from dcops.errors import (
    BackendError,
    CommandTimeout,
    InputError,
    UnknownNameError,
    UnknownNodeError,
)
from dcops.measurements import COLLECTIVES, GpuRef, bus_factor
from dcops.ports import CollectiveEngine

torch = pytest.importorskip("torch", reason="torch is not installed (pip install dcops[torch])")

from burnin.engines.collective_worker import Fault, RankEnv, parse_worker_json  # noqa: E402
from burnin.engines.collectives import TorchCollectiveEngine  # noqa: E402

pytestmark = pytest.mark.torch

HOST = socket.gethostname()
SIZES = [4096, 65536]


def _members(n: int) -> list[GpuRef]:
    return [GpuRef(HOST, i) for i in range(n)]


def test_engine_is_a_collective_engine() -> None:
    assert isinstance(TorchCollectiveEngine(device="cpu"), CollectiveEngine)


def test_every_op_on_two_gloo_ranks_is_correct() -> None:
    members = _members(2)
    results = TorchCollectiveEngine(device="cpu").run_many(
        COLLECTIVES, members, sizes_bytes=SIZES, iterations=3, timeout_s=60
    )
    assert [r.op for r in results] == list(COLLECTIVES)
    for res in results:
        assert res.backend == "gloo"
        assert res.members == tuple(members)
        assert not any("not supported" in n for n in res.notes), res.notes
        assert [row.size_bytes for row in res.rows] == SIZES
        for row in res.rows:
            s = row.out_of_place
            assert s.wrong == 0, (res.op, row.size_bytes)
            assert s.time_us > 0 and s.algbw_gbps > 0
            assert s.busbw_gbps / s.algbw_gbps == pytest.approx(bus_factor(res.op, 2))
            assert s.algbw_gbps == pytest.approx(row.size_bytes / (s.time_us * 1e-6) / 1e9)
            assert row.dtype == "float" and row.count * 4 == row.size_bytes
        assert res.peak_busbw_gbps > 0


def test_injected_wrong_results_are_counted_on_four_ranks() -> None:
    engine = TorchCollectiveEngine(device="cpu", fault="wrong:2:5", warmup=0)
    results = engine.run_many(
        ["all_reduce", "alltoall"], _members(4), sizes_bytes=[4000], iterations=1, timeout_s=60
    )
    for res in results:
        (row,) = res.rows
        assert row.out_of_place.wrong == 5
        # 4000 bytes splits into 4 ranks x 250 floats: the size stays as asked.
        assert row.size_bytes == 4000
        ratio = row.out_of_place.busbw_gbps / row.out_of_place.algbw_gbps
        assert ratio == pytest.approx(bus_factor(res.op, 4))


def test_hung_rank_hits_the_timeout_and_leaves_no_worker() -> None:
    engine = TorchCollectiveEngine(device="cpu", fault="hang:1")
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match="did not finish within 6 s"):
        engine.run("all_reduce", _members(2), sizes_bytes=[4096], timeout_s=6)
    assert time.monotonic() - start < 10


def test_batch_runs_disjoint_process_groups_at_the_same_time() -> None:
    engine = TorchCollectiveEngine(device="cpu", warmup=0)
    groups = [[GpuRef(HOST, 0), GpuRef(HOST, 1)], [GpuRef(HOST, 2), GpuRef(HOST, 3)]]
    start = time.monotonic()
    out = engine.run_batch("all_reduce", groups, sizes_bytes=[65536], iterations=2, timeout_s=60)
    wall = time.monotonic() - start
    assert [o.error for o in out] == [None, None]
    for o, members in zip(out, groups, strict=True):
        assert o.result is not None and o.result.members == tuple(members)
        assert o.result.rows[0].out_of_place.wrong == 0
        assert o.elapsed_s > 0 and o.result.elapsed_s == o.elapsed_s
        assert o.gpu_seconds == pytest.approx(2 * o.elapsed_s)
    # concurrent, not one after the other: the batch lasts less than the sum of its groups
    assert wall < 0.85 * sum(o.elapsed_s for o in out), (wall, [o.elapsed_s for o in out])
    with pytest.raises(ValueError, match="disjoint"):
        engine.run_batch("all_reduce", [groups[0], groups[0][:1]], sizes_bytes=[4096])


def test_batch_group_that_hangs_does_not_hold_back_the_others() -> None:
    engine = TorchCollectiveEngine(device="cpu", fault="hang:1", warmup=0)
    groups = [[GpuRef(HOST, 0), GpuRef(HOST, 1)], [GpuRef(HOST, 2)]]  # rank 1 only in the first
    # 15 s: the healthy group's worker must import torch and start gloo in that time on a
    # loaded 2-core machine (8 s was too tight there).
    out = engine.run_batch("all_reduce", groups, sizes_bytes=[4096], timeout_s=15)
    assert isinstance(out[0].error, CommandTimeout) and out[0].result is None
    assert out[1].error is None and out[1].result is not None
    assert out[1].elapsed_s < out[0].elapsed_s and out[0].elapsed_s >= 15


def test_failing_rank_is_a_backend_error_naming_it() -> None:
    engine = TorchCollectiveEngine(device="cuda")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the failure path needs one without")
    with pytest.raises(BackendError, match=r"rank \d .*no CUDA GPU"):
        engine.run("all_reduce", _members(2), sizes_bytes=[4096], timeout_s=60)


def test_bad_requests_fail_before_any_worker_starts() -> None:
    engine = TorchCollectiveEngine(device="cpu")
    with pytest.raises(UnknownNameError, match="collective"):
        engine.run("all_to_all_v", _members(2), sizes_bytes=[4096])
    with pytest.raises(UnknownNodeError, match="not this node"):
        engine.run("all_reduce", [GpuRef("elsewhere", 0)], sizes_bytes=[4096])
    with pytest.raises(ValueError, match="distinct"):
        engine.run("all_reduce", [GpuRef(HOST, 0)] * 2, sizes_bytes=[4096])
    with pytest.raises(InputError, match="fault"):
        TorchCollectiveEngine(fault="explode:1")


def test_worker_environment_like_torchrun_or_srun() -> None:
    env = {"MASTER_ADDR": "n1", "MASTER_PORT": "29500", "SLURM_PROCID": "3", "SLURM_NTASKS": "8"}
    assert RankEnv.from_environ(env) == RankEnv(rank=3, world_size=8, local_rank=0)
    env |= {"RANK": "5", "LOCAL_RANK": "1"}
    assert RankEnv.from_environ(env) == RankEnv(rank=5, world_size=8, local_rank=1)
    with pytest.raises(InputError, match="MASTER_PORT"):
        RankEnv.from_environ({"MASTER_ADDR": "n1", "RANK": "0", "WORLD_SIZE": "1"})
    assert Fault.parse("wrong:1") == Fault("wrong", 1, 8)


def test_worker_document_errors_are_backend_errors() -> None:
    with pytest.raises(BackendError, match="rank 3: boom"):
        parse_worker_json(json.dumps({"rank": 3, "error": "boom"}))
    with pytest.raises(BackendError, match="does not parse"):
        parse_worker_json("{not json")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_nccl_sweep_on_local_gpus() -> None:
    members = _members(torch.cuda.device_count())
    results = TorchCollectiveEngine(device="cuda").run_many(
        COLLECTIVES, members, sizes_bytes=[1 << 20, 1 << 26], iterations=5, timeout_s=300
    )
    for res in results:
        assert res.backend == "nccl"
        for row in res.rows:
            assert row.out_of_place.wrong == 0
            assert row.out_of_place.busbw_gbps >= 0

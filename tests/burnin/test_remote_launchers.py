"""Pure parts of the remote burn-in launchers: argv, worker JSON, error mapping, ports."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from burnin.engines.gemm_worker import (
    _env_fault,
    error_json,
    find_document,
    gemm_json,
    parse_gemm_json,
)
from burnin.remote import argv as cmd
from burnin.remote.ports import choose_launcher
from burnin.remote.rank import parse_map, torch_env
from burnin.remote.results import collective_results, gemm_results, last_error_line
from burnin.remote.slurm import SlurmGemmEngine, SlurmLauncher, by_node, launch_failure
from burnin.remote.ssh import SshCollectiveEngine
from dcops.errors import (
    BackendError,
    CommandTimeout,
    ConnectError,
    InputError,
    SchedulerError,
    UnknownNameError,
)
from dcops.inventory import Site, load_site
from dcops.measurements import CommandResult, GemmResult, GpuRef

N1 = "gb200-r01-t01"


def _result(rc: int, stdout: str = "", stderr: str = "") -> CommandResult:
    return CommandResult("h", ("x",), rc, stdout, stderr, 0.1)


def _gemm(node: str = N1, index: int = 0, rel: float = 1e-7) -> GemmResult:
    return GemmResult(
        gpu=GpuRef(node, index), dtype="bf16", m=64, n=64, k=64, iterations=3,
        duration_s=0.2, tflops=1.5, checksum="ab", rel_error=rel, device="cuda:0",
    )  # fmt: skip


# -- argv ---------------------------------------------------------------------------


def test_minutes_round_up_and_never_zero() -> None:
    assert cmd.minutes(0.5) == 1
    assert cmd.minutes(60) == 1
    assert cmd.minutes(61) == 2


def test_env_argv_prefixes_env_and_refuses_bad_names() -> None:
    assert cmd.env_argv({}, ["a"]) == ["a"]
    assert cmd.env_argv({"A": "1 2", "B_C": "x"}, ["p", "-m"]) == [
        "env",
        "A=1 2",
        "B_C=x",
        "p",
        "-m",
    ]
    with pytest.raises(ValueError, match="bad environment"):
        cmd.env_argv({"A=B": "1"}, ["p"])
    with pytest.raises(ValueError, match="bad environment"):
        cmd.env_argv({"A;rm": "1"}, ["p"])


def test_salloc_argv_one_allocation_for_the_domain() -> None:
    opts = cmd.SlurmOptions(partition="burnin", exclusive=True, alloc_wait_s=30, time_limit_s=600)
    argv = cmd.salloc_argv(["n1", "n2"], 4, opts, nodelist="n[1-2]")
    assert argv[:2] == ["salloc", "--no-shell"]
    for flag in (
        "--nodelist=n[1-2]", "--nodes=2", "--ntasks-per-node=4", "--gres=gpu:4",
        "--time=10", "--immediate=30", "--exclusive", "--partition=burnin",
        "--job-name=dcops-burnin",
    ):  # fmt: skip
        assert flag in argv
    plain = cmd.salloc_argv(["n1"], 4, cmd.SlurmOptions(gres=False), nodelist="n1")
    assert not any(a.startswith(("--gres", "--exclusive", "--partition")) for a in plain)


def test_srun_step_argv_inside_the_allocation() -> None:
    argv = cmd.srun_step_argv(
        "42", nodelist="n[1-3]", nodes=3, tasks_per_node=4, gpus_per_node=4, timeout_s=90,
        step_name="dcops-coll-1", options=cmd.SlurmOptions(), command=["python3", "-m", "x"],
    )  # fmt: skip
    assert argv[0] == "srun" and argv[-3:] == ["python3", "-m", "x"]
    for flag in (
        "--jobid=42", "--nodelist=n[1-3]", "--nodes=3", "--ntasks=12", "--ntasks-per-node=4",
        "--gres=gpu:4", "--time=2", "--kill-on-bad-exit=1", "--distribution=block",
        "--job-name=dcops-coll-1",
    ):  # fmt: skip
        assert flag in argv


def test_gemm_worker_argv() -> None:
    argv = cmd.gemm_worker_argv(
        "/opt/py/bin/python3", N1, [0, 1, 2, 3], dtype="bf16", duration_s=60, seed=7,
        timeout_s=240, threads=2,
    )  # fmt: skip
    assert argv[:3] == ["/opt/py/bin/python3", "-m", "burnin.engines.gemm_worker"]
    text = " ".join(argv)
    assert f"--node {N1} --gpus 0,1,2,3 --dtype bf16 --duration-s 60 --seed 7" in text
    assert "--timeout-s 240 --device auto --threads 2" in text


def test_slurm_query_argvs() -> None:
    assert cmd.sinfo_argv("n[1-2]") == [
        "sinfo", "--noheader", "--Node", "--nodes=n[1-2]", "--format=%N|%t|%o",
    ]  # fmt: skip
    assert cmd.squeue_steps_argv("9")[-2:] == ["--jobs=9", "--format=%i|%j"]
    assert cmd.scancel_argv("9.1") == ["scancel", "9.1"]


def test_ssh_rank_argvs_are_torchrun_envs() -> None:
    no_commands = ScriptedRunner({})  # rendering argvs runs nothing
    engine = SshCollectiveEngine(no_commands, python="py", address=lambda n: f"addr-{n}")
    members = [GpuRef("a", 0), GpuRef("a", 2), GpuRef("b", 1)]
    argvs = engine.rank_argvs(
        "all_reduce", members, sizes_bytes=[1024], iterations=3, timeout_s=30, port=29501
    )
    assert len(argvs) == 3
    last = argvs[2]
    assert last[0] == "env"
    assert "RANK=2" in last and "WORLD_SIZE=3" in last and "LOCAL_RANK=1" in last
    assert "MASTER_ADDR=addr-a" in last and "MASTER_PORT=29501" in last
    assert "LOCAL_WORLD_SIZE=1" in last
    assert "LOCAL_WORLD_SIZE=2" in argvs[0] and "LOCAL_RANK=2" in argvs[1]
    tail = last[last.index("py") :]
    assert tail[:3] == ["py", "-m", "burnin.engines.collective_worker"]
    assert tail[tail.index("--node") + 1] == "b"


def test_gpu_map_and_rank_env_from_slurm() -> None:
    assert cmd.gpu_map({"a": [0, 1, 3], "b": [2]}) == "a=0,1,3;b=2"
    gpus = {"n01": [0, 1, 3], "n02": [0, 1, 2]}
    env = {
        "SLURMD_NODENAME": "n01", "SLURM_PROCID": "2", "SLURM_NTASKS": "6",
        "SLURM_LOCALID": "2", "SLURM_STEP_NODELIST": "n[01-02]",
    }  # fmt: skip
    out = torch_env(env, gpus, {"n01": "10.0.0.1"})
    assert out == {
        "RANK": "2", "WORLD_SIZE": "6", "LOCAL_RANK": "3", "LOCAL_WORLD_SIZE": "3",
        "MASTER_ADDR": "10.0.0.1",
    }  # fmt: skip
    assert "MASTER_ADDR" not in torch_env({**env, "MASTER_ADDR": "x"}, gpus, {})
    with pytest.raises(InputError, match="no GPU"):
        torch_env({**env, "SLURM_LOCALID": "5"}, gpus, {})
    with pytest.raises(InputError, match="srun"):
        torch_env({}, gpus, {})
    assert parse_map("a=1; b = 2;") == {"a": "1", "b": "2"}
    with pytest.raises(InputError):
        parse_map("nonsense")


def test_by_node_groups_in_order_and_refuses_duplicates() -> None:
    assert by_node([GpuRef("b", 1), GpuRef("a", 0), GpuRef("b", 0)]) == {"b": [1, 0], "a": [0]}
    with pytest.raises(ValueError):
        by_node([GpuRef("a", 0), GpuRef("a", 0)])


# -- worker JSON and error mapping ---------------------------------------------------


def test_gemm_json_round_trip_including_nan() -> None:
    results = [_gemm(index=0), _gemm(index=1, rel=math.nan)]
    text = gemm_json(N1, results, device="cuda", torch="2.4")
    back = parse_gemm_json(text)
    assert back[0] == results[0]
    assert math.isnan(back[1].rel_error)
    assert [r.gpu for r in parse_gemm_json(text, node="other")] == [
        GpuRef("other", 0), GpuRef("other", 1),
    ]  # fmt: skip


def test_gemm_error_documents() -> None:
    with pytest.raises(BackendError, match=f"{N1}: GEMM worker: boom"):
        parse_gemm_json(error_json(N1, "boom"))
    with pytest.raises(CommandTimeout):
        parse_gemm_json(error_json(N1, "late", timed_out=True))
    with pytest.raises(BackendError, match="does not parse"):
        parse_gemm_json('{"format": "dcops.gemm/1", "results": [{"gpu": 1}]}', N1)
    with pytest.raises(BackendError, match=r"not dcops\.gemm/1"):
        parse_gemm_json('{"format": "other"}', N1)


def test_find_document_skips_noise() -> None:
    doc = gemm_json(N1, [_gemm()], device="cpu", torch="2")
    stdout = f"warning: something\n{{not json}}\n{doc}\ntrailing\n"
    assert find_document(stdout, "dcops.gemm/1") == doc
    assert find_document("nothing here", "dcops.gemm/1") is None


def test_gemm_results_map_exits_to_errors() -> None:
    doc = gemm_json(N1, [_gemm()], device="cpu", torch="2")
    assert gemm_results(N1, _result(0, doc))[0].tflops == 1.5
    with pytest.raises(CommandTimeout):
        gemm_results(N1, _result(124, "", "srun: error: timeout"))
    with pytest.raises(BackendError, match="exited 1: srun: error: Unable to create step"):
        gemm_results(
            N1, _result(1, "", "srun: error: Unable to create step\nsrun: Job step aborted")
        )
    with pytest.raises(BackendError, match="no JSON"):
        gemm_results(N1, _result(0, "hello"))


def test_env_fault_names_one_node() -> None:
    env = {"DCOPS_GEMM_FAULT": "a=hang, b=fail,c=bogus"}
    assert _env_fault("a", env) == "hang"
    assert _env_fault("b", env) == "fail"
    assert _env_fault("c", env) is None
    assert _env_fault("d", {}) is None


def _collective_doc(members: Sequence[GpuRef]) -> str:
    return json.dumps(
        {
            "format": "dcops.collective/1", "rank": 0, "world_size": len(members),
            "backend": "gloo", "device": "cpu", "torch": "2",
            "members": [{"node": g.node, "index": g.index} for g in members],
            "results": [{"op": "all_reduce", "notes": [], "rows": [{
                "size_bytes": 1024, "count": 256, "time_us": 10.0, "algbw_gbps": 0.1,
                "busbw_gbps": 0.15, "wrong": 0,
            }]}],
            "error": None,
        }
    )  # fmt: skip


def test_collective_results_check_who_ran() -> None:
    members = [GpuRef("a", 0), GpuRef("b", 0)]
    res = collective_results("a,b", "all_reduce", _result(0, _collective_doc(members)), members)
    assert res[0].members == tuple(members) and res[0].rows[0].out_of_place.busbw_gbps == 0.15
    with pytest.raises(BackendError, match="other GPUs"):
        collective_results("a,b", "all_reduce", _result(0, _collective_doc(members[:1])), members)
    with pytest.raises(CommandTimeout):
        collective_results("a,b", "all_reduce", _result(124), members)
    err = "x\ncollective_worker rank 1: gloo: connection reset\nsrun: error: task 1: Exited"
    with pytest.raises(BackendError, match="rank 1: gloo: connection reset"):
        collective_results("a,b", "all_reduce", _result(3, "", err), members)
    assert last_error_line("") == "no output"


# -- launcher choice and the Slurm launcher on a scripted runner ----------------------


def test_choose_launcher() -> None:
    assert choose_launcher("ssh", None) == "ssh"
    assert choose_launcher("slurm", None) == "slurm"
    assert choose_launcher("auto", None) in ("slurm", "ssh")
    with pytest.raises(UnknownNameError, match="launcher"):
        choose_launcher("pbs", None)


class ScriptedRunner:
    """Answers Slurm commands from a script; records every argv."""

    def __init__(self, answers: dict[str, CommandResult]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, ...]] = []

    def run(
        self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
    ) -> CommandResult:
        self.calls.append(tuple(argv))
        tool = next(a for a in argv if a in self.answers)
        return self.answers[tool]


def _site(tmp_path: Path) -> Site:
    path = tmp_path / "site.yaml"
    path.write_text(
        yaml.safe_dump(
            {"site": "t", "sku": "cpu", "racks": [{"name": "r", "nodes": "n[1-3]", "domain": "d"}]}
        )
    )
    return load_site(path)


def test_slurm_launcher_skips_unusable_nodes_and_allocates_the_rest(tmp_path: Path) -> None:
    site = _site(tmp_path)
    runner = ScriptedRunner(
        {
            "sinfo": _result(0, "n1|idle|10.0.0.1\nn2|drain|10.0.0.2\nn3|idle*|10.0.0.3\n"),
            "salloc": _result(0, "", "salloc: Granted job allocation 77\n"),
            "srun": _result(0, gemm_json("n1", [_gemm("n1")], device="cpu", torch="2")),
            "scancel": _result(0),
        }
    )
    la = SlurmLauncher(site, ["n1", "n2", "n3"], runner=runner, slurm_conf="/etc/s.conf")
    assert la.job_for(["n1"]) == "77"
    with pytest.raises(ConnectError, match="drain"):
        la.job_for(["n2"])
    with pytest.raises(ConnectError, match=r"idle\*"):
        la.job_for(["n3"])
    salloc = next(c for c in runner.calls if "salloc" in c)
    assert salloc[:2] == ("env", "SLURM_CONF=/etc/s.conf")
    assert "--nodelist=n1" in salloc and "--nodes=1" in salloc
    out = SlurmGemmEngine(la).run(site.gpus("n1"), dtype="fp32", duration_s=0.1, seed=1)
    assert out[0].gpu == GpuRef("n1", 0)
    srun = runner.calls[-1]
    assert "--jobid=77" in srun and "burnin.engines.gemm_worker" in srun
    la.close()
    assert runner.calls[-1][-2:] == ("scancel", "77")
    assert la.addresses["n1"] == "10.0.0.1"


def test_slurm_launcher_salloc_failure_is_an_error_for_the_domain(tmp_path: Path) -> None:
    site = _site(tmp_path)
    runner = ScriptedRunner(
        {
            "sinfo": _result(0, "n1|idle|n1\nn2|idle|n2\n"),
            "salloc": _result(1, "", "salloc: error: Unable to allocate resources: busy\n"),
        }
    )
    la = SlurmLauncher(site, ["n1", "n2"], runner=runner)
    for node in ("n1", "n2"):
        with pytest.raises(SchedulerError, match="Unable to allocate"):
            la.job_for([node])
    assert sum(1 for c in runner.calls if "salloc" in c) == 1


def test_a_step_no_slurmd_took_is_the_nodes_connect_error(tmp_path: Path) -> None:
    """srun's launch failures (a hung or gone slurmd) are the node's: unreachable, not backend."""
    hung = "srun: error: Application launch failed: Socket timed out on send/recv operation\n"
    named = (
        "srun: error: Task launch for StepId=3.1 failed on node n2: Communication connection "
        "failure\nsrun: error: Application launch failed: Communication connection failure\n"
    )
    one = launch_failure(_result(1, "", hung), ["n1"])
    assert isinstance(one, ConnectError) and one.host == "n1" and "Socket timed out" in str(one)
    two = launch_failure(_result(1, "", named), ["n1", "n2", "n3"])
    assert isinstance(two, ConnectError) and two.host == "n2"
    # several nodes, none named: no node is blamed; other failures and successes: none either
    assert launch_failure(_result(1, "", hung), ["n1", "n2"]) is None
    assert launch_failure(_result(1, "", "srun: error: Unable to create step\n"), ["n1"]) is None
    assert launch_failure(_result(0, "", hung), ["n1"]) is None
    site = _site(tmp_path)
    runner = ScriptedRunner(
        {
            "sinfo": _result(0, "n1|idle|10.0.0.1\n"),
            "salloc": _result(0, "", "salloc: Granted job allocation 5\n"),
            "srun": _result(1, "", hung),
            "scancel": _result(0),
        }
    )
    la = SlurmLauncher(site, ["n1"], runner=runner)
    with pytest.raises(ConnectError, match="n1: its slurmd did not take the step"):
        SlurmGemmEngine(la).run(site.gpus("n1"), dtype="fp32", duration_s=0.1, seed=1)
    la.close()

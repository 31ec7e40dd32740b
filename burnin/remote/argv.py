"""Pure argv builders of the remote launchers: workers, ``salloc``, ``srun``, ``env``.

Nothing here runs anything; every function returns an argv list (never a shell
string), so the launchers' command lines are unit-tested as plain data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

GEMM_WORKER = "burnin.engines.gemm_worker"
COLLECTIVE_WORKER = "burnin.engines.collective_worker"
SLURM_RANK = "burnin.remote.rank"


def minutes(seconds: float) -> int:
    """A Slurm ``--time`` in whole minutes that covers ``seconds`` (at least 1)."""
    return max(1, math.ceil(seconds / 60.0))


def env_argv(env: Mapping[str, str], argv: Sequence[str]) -> list[str]:
    """``env K=V ... argv``: set variables for one command without a shell."""
    for key in env:
        if not key or "=" in key or not key.replace("_", "a").isalnum():
            raise ValueError(f"bad environment variable name {key!r}")
    if not env:
        return list(argv)
    return ["env", *(f"{k}={v}" for k, v in env.items()), *argv]


def gemm_worker_argv(
    python: str,
    node: str,
    gpu_indexes: Sequence[int],
    *,
    dtype: str,
    duration_s: float,
    seed: int,
    timeout_s: float,
    device: str = "auto",
    threads: int | None = None,
    size: int | None = None,
) -> list[str]:
    """``python -m burnin.engines.gemm_worker`` for one node's GPUs."""
    argv = [
        python,
        "-m",
        GEMM_WORKER,
        "--node",
        node,
        "--gpus",
        ",".join(str(i) for i in gpu_indexes),
        "--dtype",
        dtype,
        "--duration-s",
        f"{duration_s:g}",
        "--seed",
        str(seed),
        "--timeout-s",
        f"{timeout_s:g}",
        "--device",
        device,
    ]
    if threads:
        argv += ["--threads", str(threads)]
    if size:
        argv += ["--size", str(size)]
    return argv


def collective_args(
    ops: Sequence[str],
    sizes_bytes: Sequence[int],
    *,
    iterations: int,
    warmup: int,
    device: str,
    timeout_s: float,
    node: str | None = None,
) -> list[str]:
    """The collective worker's own options (after ``-m MODULE``)."""
    argv = [
        "--ops",
        ",".join(ops),
        "--sizes",
        ",".join(str(int(s)) for s in sizes_bytes),
        "--iterations",
        str(iterations),
        "--warmup",
        str(warmup),
        "--device",
        device,
        "--timeout-s",
        f"{timeout_s:g}",
    ]
    if node is not None:
        argv += ["--node", node]
    return argv


def rank_env(
    *, rank: int, world_size: int, local_rank: int, local_world_size: int, addr: str, port: int
) -> dict[str, str]:
    """torchrun's environment for one rank."""
    return {
        "RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(local_rank),
        "LOCAL_WORLD_SIZE": str(local_world_size),
        "MASTER_ADDR": addr,
        "MASTER_PORT": str(port),
    }


def gpu_map(groups: Mapping[str, Sequence[int]]) -> str:
    """``node=0,1,3;node2=0,1`` for :mod:`burnin.remote.rank` (``SLURM_LOCALID`` -> GPU)."""
    return ";".join(f"{n}={','.join(str(i) for i in idx)}" for n, idx in groups.items())


# -- Slurm -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlurmOptions:
    """How burn-in asks Slurm for nodes (flags of ``burnin run --launcher slurm``)."""

    partition: str | None = None
    exclusive: bool = False
    gres: bool = True  # --gres=gpu:N (off for clusters without GPU gres)
    alloc_wait_s: float = 120.0  # salloc --immediate: give up when not granted by then
    time_limit_s: float = 3600.0  # the allocation's --time
    account: str | None = None
    job_name: str = "dcops-burnin"


def salloc_argv(
    nodes: Sequence[str], gpus_per_node: int, options: SlurmOptions, *, nodelist: str
) -> list[str]:
    """``salloc --no-shell`` holding ``nodes`` (one allocation per rack/NVLink domain)."""
    argv = [
        "salloc",
        "--no-shell",
        f"--job-name={options.job_name}",
        f"--nodelist={nodelist}",
        f"--nodes={len(nodes)}",
        f"--ntasks-per-node={max(1, gpus_per_node)}",
        f"--time={minutes(options.time_limit_s)}",
        f"--immediate={max(1, math.ceil(options.alloc_wait_s))}",
    ]
    if options.gres and gpus_per_node > 0:
        argv.append(f"--gres=gpu:{gpus_per_node}")
    if options.exclusive:
        argv.append("--exclusive")
    if options.partition:
        argv.append(f"--partition={options.partition}")
    if options.account:
        argv.append(f"--account={options.account}")
    return argv


def srun_step_argv(
    job_id: str,
    *,
    nodelist: str,
    nodes: int,
    tasks_per_node: int,
    gpus_per_node: int,
    timeout_s: float,
    step_name: str,
    options: SlurmOptions,
    command: Sequence[str],
) -> list[str]:
    """``srun`` one step inside allocation ``job_id``: ``tasks_per_node`` tasks on each node."""
    argv = [
        "srun",
        f"--jobid={job_id}",
        f"--job-name={step_name}",
        f"--nodelist={nodelist}",
        f"--nodes={nodes}",
        f"--ntasks={nodes * tasks_per_node}",
        f"--ntasks-per-node={tasks_per_node}",
        "--distribution=block",
        f"--time={minutes(timeout_s)}",
        "--kill-on-bad-exit=1",
        "--quiet",
    ]
    if options.gres and gpus_per_node > 0:
        argv.append(f"--gres=gpu:{gpus_per_node}")
    return [*argv, *command]


def sinfo_argv(nodelist: str) -> list[str]:
    """``sinfo`` one line per node: ``name|compact state|NodeAddr``."""
    return ["sinfo", "--noheader", "--Node", f"--nodes={nodelist}", "--format=%N|%t|%o"]


def squeue_steps_argv(job_id: str) -> list[str]:
    """``squeue`` the steps of ``job_id``: ``step id|step name``."""
    return ["squeue", "--noheader", "--steps", f"--jobs={job_id}", "--format=%i|%j"]


def scancel_argv(target: str) -> list[str]:
    """``scancel JOB`` or ``scancel JOB.STEP``."""
    return ["scancel", target]

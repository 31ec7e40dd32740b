"""Burn-in over SSH: workers started on each node through a :class:`~dcops.ports.RemoteRunner`.

* :class:`SshGemmEngine` runs :mod:`burnin.engines.gemm_worker` on the node and
  parses its JSON back into GemmResults.
* :class:`SshCollectiveEngine` starts one :mod:`burnin.engines.collective_worker`
  per member, all at once, each as ``env RANK=.. WORLD_SIZE=.. LOCAL_RANK=<gpu>
  MASTER_ADDR=<first member's node address> MASTER_PORT=.. python3 -m ...`` (argv,
  quoted only by the SSH runner), and reads rank 0's JSON.

Timeouts: each worker gets the call's ``timeout_s`` as its own watchdog and the
runner a little more (the SSH runner kills the remote command past it). An
unreachable node is the runner's :class:`~dcops.errors.ConnectError`; a worker
that fails, a :class:`~dcops.errors.BackendError` naming it. A collective rank
whose node cannot be reached, hangs or drops its connection raises the runner's
error again (same class: ConnectError, CommandTimeout, RemoteError) with that
node as its ``host``, so the suite marks that node ``error`` besides the group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from burnin.engines.collective_ops import OPS
from burnin.remote import argv as cmd
from burnin.remote.results import collective_results, gemm_results, last_error_line
from burnin.remote.slurm import by_node, free_port
from dcops.collective_batch import BatchInThreads
from dcops.errors import (
    BackendError,
    CommandTimeout,
    DcopsError,
    RemoteError,
    UnknownNameError,
)
from dcops.hostlist import compress
from dcops.measurements import (
    CollectiveResult,
    CommandResult,
    GemmResult,
    GpuRef,
)
from dcops.ports import RemoteRunner

#: Seconds the runner waits beyond a worker's own watchdog (start-up, Python imports).
RUNNER_GRACE_S = 20.0


class SshGemmEngine:
    """GemmEngine: one :mod:`burnin.engines.gemm_worker` per node over the runner."""

    def __init__(
        self,
        runner: RemoteRunner,
        *,
        python: str = "python3",
        device: str = "auto",
        threads: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.runner = runner
        self.python = python
        self.device = device
        self.threads = threads
        self.env = dict(env or {})

    def run(
        self,
        gpus: Sequence[GpuRef],
        *,
        dtype: str,
        duration_s: float,
        seed: int,
        timeout_s: float | None = None,
    ) -> list[GemmResult]:
        if not gpus:
            return []
        nodes = {g.node for g in gpus}
        if len(nodes) != 1:
            raise ValueError(f"one GEMM call burns one node's GPUs, got {sorted(nodes)}")
        node = nodes.pop()
        limit = timeout_s if timeout_s is not None else duration_s * 3 + 60.0
        command = cmd.gemm_worker_argv(
            self.python, node, [g.index for g in gpus], dtype=dtype, duration_s=duration_s,
            seed=seed, timeout_s=limit, device=self.device, threads=self.threads,
        )  # fmt: skip
        res = self.runner.run(
            node, cmd.env_argv(self.env, command), timeout_s=limit + RUNNER_GRACE_S
        )
        return gemm_results(node, res)


class SshCollectiveEngine(BatchInThreads):
    """CollectiveEngine: one collective worker per member, started over the runner."""

    def __init__(
        self,
        runner: RemoteRunner,
        *,
        python: str = "python3",
        device: str = "auto",
        address: Callable[[str], str] | None = None,
        warmup: int = 2,
        threads: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.runner = runner
        self.python = python
        self.device = device
        self.address = address or (lambda node: node)
        self.warmup = warmup
        self.threads = threads
        self.env = dict(env or {})

    def rank_argvs(
        self,
        op: str,
        members: Sequence[GpuRef],
        *,
        sizes_bytes: Sequence[int],
        iterations: int,
        timeout_s: float,
        port: int,
    ) -> list[list[str]]:
        """The argv of every rank, in rank order (members' order)."""
        groups = by_node(members)
        addr = self.address(members[0].node)
        out = []
        for rank, g in enumerate(members):
            env = dict(self.env)
            if self.threads:
                env["OMP_NUM_THREADS"] = str(self.threads)
            env.update(
                cmd.rank_env(
                    rank=rank, world_size=len(members), local_rank=g.index,
                    local_world_size=len(groups[g.node]), addr=addr, port=port,
                )
            )  # fmt: skip
            worker = [
                self.python, "-m", cmd.COLLECTIVE_WORKER,
                *cmd.collective_args(
                    [op], sizes_bytes, iterations=iterations, warmup=self.warmup,
                    device=self.device, timeout_s=timeout_s, node=g.node,
                ),
            ]  # fmt: skip
            out.append(cmd.env_argv(env, worker))
        return out

    def run(
        self,
        op: str,
        members: Sequence[GpuRef],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> CollectiveResult:
        if op not in OPS:
            raise UnknownNameError("collective", op, OPS)
        limit = timeout_s if timeout_s is not None else 900.0
        argvs = self.rank_argvs(
            op, members, sizes_bytes=sizes_bytes, iterations=iterations, timeout_s=limit,
            port=free_port(),
        )  # fmt: skip

        def launch(rank: int) -> CommandResult | DcopsError:
            try:
                return self.runner.run(
                    members[rank].node, argvs[rank], timeout_s=limit + RUNNER_GRACE_S
                )
            except DcopsError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=len(members)) as pool:
            outcomes = list(pool.map(launch, range(len(members))))
        where = compress(sorted({g.node for g in members}))
        for rank, outcome in enumerate(outcomes):
            if isinstance(outcome, RemoteError):
                # The rank's own node could not be reached, hung or dropped its connection:
                # the same error, now naming that node, so the suite marks the node too.
                raise type(outcome)(
                    members[rank].node,
                    f"{op} rank {rank} ({members[rank]}) over {where}: {outcome}",
                )
            if isinstance(outcome, DcopsError):
                raise BackendError(f"{op} rank {rank} ({members[rank]}): {outcome}")
        first_bad = next(
            (r for r, o in enumerate(outcomes) if isinstance(o, CommandResult) and not o.ok), None
        )
        if first_bad is not None and first_bad != 0:
            bad = outcomes[first_bad]
            assert isinstance(bad, CommandResult)
            if bad.returncode == 124:
                raise CommandTimeout(where, f"{op} rank {first_bad} timed out")
            raise BackendError(
                f"{op} over {len(members)} ranks failed on rank {first_bad} "
                f"({members[first_bad]}): {last_error_line(bad.stderr)}"
            )
        rank0 = outcomes[0]
        assert isinstance(rank0, CommandResult)
        return collective_results(where, op, rank0, members)[0]

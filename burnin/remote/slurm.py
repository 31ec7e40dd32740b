"""Burn-in through Slurm: one allocation per NVLink domain, workers started as job steps.

:class:`SlurmLauncher` holds the allocations of a run. The first engine call
that touches a domain allocates it, once:

1. ``sinfo`` the run's nodes of that domain: a node Slurm cannot give us
   (drained, down, not responding, unknown) is an error for that node alone;
2. ``salloc --no-shell --nodelist=... --ntasks-per-node=G --gres=gpu:G`` the
   rest (``--immediate``: a domain not granted in time is an error for its
   nodes); :meth:`SlurmLauncher.close` ``scancel`` s every allocation.

Engines then ``srun --jobid`` steps in it (argv in :mod:`burnin.remote.argv`):

* :class:`SlurmGemmEngine`: one step per node and round running
  :mod:`burnin.engines.gemm_worker`, its JSON parsed back into GemmResults;
* :class:`SlurmCollectiveEngine`: one step over the members' nodes, one task
  per member (block distribution) running :mod:`burnin.remote.rank`, which
  rendezvous like torchrun (``MASTER_ADDR`` = the first node's ``NodeAddr``,
  ``MASTER_PORT`` a port free here).

Every step is bounded three ways: the worker's own watchdog, ``srun --time``,
and our runner's timeout, after which the step is ``scancel`` led and
:class:`~dcops.errors.CommandTimeout` raised. Slurm commands run through the
core's :class:`~dcops.slurm.commands.SlurmCommands` over a
:class:`~dcops.ports.RemoteRunner` (this machine by default) with ``SLURM_CONF``
from config.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import uuid
from collections.abc import Sequence

from burnin.engines.collective_ops import OPS
from burnin.remote import argv as cmd
from burnin.remote.results import collective_results, gemm_results
from dcops.collective_batch import BatchInThreads
from dcops.errors import (
    BackendError,
    CommandTimeout,
    ConnectError,
    DcopsError,
    SchedulerError,
    UnknownNameError,
)
from dcops.hostlist import compress
from dcops.inventory import Site
from dcops.measurements import (
    CollectiveResult,
    CommandResult,
    GemmResult,
    GpuRef,
)
from dcops.ports import RemoteRunner
from dcops.slurm.commands import SlurmCommands

#: sinfo compact states in which Slurm can hand a node to a job.
USABLE_STATES = ("idle", "mix", "alloc", "comp", "resv", "plnd")
_GRANTED = re.compile(r"Granted job allocation (\d+)")
#: srun's words when a node's slurmd did not take a step (hung, gone, unreachable): the node's
#: problem, not Slurm's. "Task launch ... failed on node NAME" names the node.
_LAUNCH_FAILED = re.compile(
    r"Application launch failed|Task launch for \S+ failed on node|"
    r"Required node not available"
)
_LAUNCH_FAILED_ON = re.compile(r"Task launch for \S+ failed on node (\S+?):")
_STEP_GRACE_S = 15.0  # srun start-up and teardown beyond the worker's own limit


class SlurmLauncher:
    """Allocations per NVLink domain and steps in them (see the module docstring)."""

    def __init__(
        self,
        site: Site,
        nodes: Sequence[str],
        *,
        options: cmd.SlurmOptions | None = None,
        runner: RemoteRunner | None = None,
        submit_host: str = "localhost",
        slurm_conf: str | None = None,
        python: str = "python3",
        device: str = "auto",
        threads: int | None = None,
    ) -> None:
        if runner is None:
            from dcops.remote.local import LocalRunner

            runner = LocalRunner()
        self.site = site
        self.nodes = list(nodes)
        self.options = options or cmd.SlurmOptions()
        self.runner = runner
        self.submit_host = submit_host
        self.slurm_conf = slurm_conf
        self.commands = SlurmCommands(runner=runner, host=submit_host, slurm_conf=slurm_conf)
        self.python = python
        self.device = device
        self.threads = threads
        self.addresses: dict[str, str] = {}
        self._jobs: dict[str, str] = {}  # domain -> job id
        self._problems: dict[str, DcopsError] = {}  # node -> why it is not allocated
        self._lock = threading.Lock()
        self._allocated: set[str] = set()  # domains tried

    # -- Slurm commands -------------------------------------------------------------

    def slurm(
        self, argv: Sequence[str], *, timeout_s: float, env: dict[str, str] | None = None
    ) -> CommandResult:
        """Run a Slurm client command on the submit host (``SLURM_CONF`` set when configured)."""
        return self.commands.run(argv, env=env, timeout_s=timeout_s)

    # -- allocations ----------------------------------------------------------------

    def job_for(self, nodes: Sequence[str]) -> str:
        """The allocation holding ``nodes`` (allocating their domain first); errors name nodes."""
        domains = {self.site.domain_of(n) for n in nodes}
        for domain in sorted(domains):
            self._ensure(domain)
        for node in nodes:
            if node in self._problems:
                raise self._problems[node]
        outside = [n for n in nodes if n not in self.nodes]
        if outside:
            raise BackendError(f"{compress(outside)}: not among this run's nodes")
        jobs = {self._jobs[d] for d in domains}
        if len(jobs) != 1:
            raise BackendError(
                f"{compress(nodes)}: spans NVLink domains {sorted(domains)}, each its own "
                "Slurm allocation; a step cannot cross them"
            )
        return jobs.pop()

    def _ensure(self, domain: str) -> None:
        with self._lock:
            if domain in self._allocated:
                return
            self._allocated.add(domain)
            wanted = [n for n in self.nodes if self.site.domain_of(n) == domain]
            try:
                usable = self._usable(wanted)
                if usable:
                    self._jobs[domain] = self._salloc(usable)
            except DcopsError as exc:
                # sinfo/salloc on the submit host failed: Slurm's problem, never the nodes'
                problem = SchedulerError(f"Slurm allocation for domain {domain}: {exc}")
                for node in wanted:
                    self._problems.setdefault(node, problem)

    def _usable(self, nodes: list[str]) -> list[str]:
        res = self.slurm(cmd.sinfo_argv(compress(nodes)), timeout_s=30.0)
        if not res.ok:
            raise SchedulerError(f"sinfo failed: {res.stderr.strip()[:300]}")
        states: dict[str, str] = {}
        for line in res.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3:
                states[parts[0]] = parts[1]
                self.addresses[parts[0]] = parts[2]
        usable = []
        for node in nodes:
            state = states.get(node)
            if state is None:
                self._problems[node] = ConnectError(node, "Slurm does not know this node")
            elif state.rstrip("*~#!%$@^-") not in USABLE_STATES or state.endswith("*"):
                self._problems[node] = ConnectError(
                    node, f"Slurm cannot allocate it (state {state})"
                )
            else:
                usable.append(node)
        return usable

    def _salloc(self, nodes: list[str]) -> str:
        gpus = max(self.site.node(n).gpus_per_node for n in nodes)
        argv = cmd.salloc_argv(nodes, gpus, self.options, nodelist=compress(nodes))
        res = self.slurm(argv, timeout_s=self.options.alloc_wait_s + 30.0)
        found = _GRANTED.search(res.stderr + res.stdout)
        if not res.ok or not found:
            why = res.stderr.strip().splitlines()[-1:] or [f"exit {res.returncode}"]
            raise SchedulerError(f"salloc {compress(nodes)} failed: {why[0][:300]}")
        return found.group(1)

    def close(self) -> None:
        """``scancel`` every allocation of this run (idempotent)."""
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
        for job in jobs:
            # on failure, the allocation's --time ends it anyway
            with contextlib.suppress(DcopsError):
                self.slurm(cmd.scancel_argv(job), timeout_s=30.0)

    # -- steps ----------------------------------------------------------------------

    def step(
        self,
        nodes: Sequence[str],
        *,
        tasks_per_node: int,
        command: Sequence[str],
        timeout_s: float,
        kind: str,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        """``srun`` ``command`` as one step over ``nodes``; scancel it when it outlives us."""
        job = self.job_for(nodes)
        name = f"dcops-{kind}-{uuid.uuid4().hex[:8]}"
        argv = cmd.srun_step_argv(
            job,
            nodelist=compress(nodes),
            nodes=len(nodes),
            tasks_per_node=tasks_per_node,
            gpus_per_node=max(self.site.node(n).gpus_per_node for n in nodes),
            timeout_s=timeout_s + _STEP_GRACE_S,
            step_name=name,
            options=self.options,
            command=command,
        )
        try:
            return self.slurm(argv, timeout_s=timeout_s + _STEP_GRACE_S, env=env)
        except CommandTimeout:
            self._cancel_step(job, name)
            raise CommandTimeout(
                compress(nodes), f"{kind} step did not finish within {timeout_s:g} s (cancelled)"
            ) from None

    def _cancel_step(self, job: str, name: str) -> None:
        try:
            res = self.slurm(cmd.squeue_steps_argv(job), timeout_s=30.0)
            for line in res.stdout.splitlines():
                step_id, _, step_name = line.strip().partition("|")
                if step_name == name:
                    self.slurm(cmd.scancel_argv(step_id), timeout_s=30.0)
        except DcopsError:
            pass  # srun --time ends it anyway


class SlurmGemmEngine:
    """GemmEngine: :mod:`burnin.engines.gemm_worker` as one Slurm step per node."""

    def __init__(self, launcher: SlurmLauncher) -> None:
        self.launcher = launcher

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
        node = _one_node(gpus)
        limit = timeout_s if timeout_s is not None else duration_s * 3 + 60.0
        la = self.launcher
        command = cmd.gemm_worker_argv(
            la.python, node, [g.index for g in gpus], dtype=dtype, duration_s=duration_s,
            seed=seed, timeout_s=limit, device=la.device, threads=la.threads,
        )  # fmt: skip
        res = la.step([node], tasks_per_node=1, command=command, timeout_s=limit, kind="gemm")
        lost = launch_failure(res, [node])
        if lost is not None:
            raise lost
        return gemm_results(node, res)


class SlurmCollectiveEngine(BatchInThreads):
    """CollectiveEngine: one Slurm step, a :mod:`burnin.remote.rank` task per member."""

    def __init__(self, launcher: SlurmLauncher, *, warmup: int = 2) -> None:
        self.launcher = launcher
        self.warmup = warmup

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
        groups = by_node(members)
        counts = {len(v) for v in groups.values()}
        if len(counts) != 1:
            raise BackendError(
                f"{op}: members have unequal GPU counts per node ({sorted(counts)}); "
                "a Slurm step runs the same number of tasks on each node"
            )
        la = self.launcher
        limit = timeout_s if timeout_s is not None else 900.0
        nodes = list(groups)
        la.job_for(nodes)  # fills addresses
        addrs = {n: la.addresses.get(n, n) for n in nodes}
        command = [
            la.python, "-m", cmd.SLURM_RANK, "--gpu-map", cmd.gpu_map(groups),
            "--addr", ";".join(f"{n}={a}" for n, a in addrs.items()), "--",
            *cmd.collective_args(
                [op], sizes_bytes, iterations=iterations, warmup=self.warmup,
                device=la.device, timeout_s=limit,
            ),
        ]  # fmt: skip
        env = {"MASTER_PORT": str(free_port())}
        if la.threads:
            env["OMP_NUM_THREADS"] = str(la.threads)
        res = la.step(
            nodes,
            tasks_per_node=counts.pop(),
            command=command,
            timeout_s=limit,
            kind="coll",
            env=env,
        )
        lost = launch_failure(res, nodes)
        if lost is not None:
            raise lost
        return collective_results(compress(nodes), op, res, members)[0]


def launch_failure(result: CommandResult, nodes: Sequence[str]) -> ConnectError | None:
    """A ConnectError for the node whose slurmd did not take the step, else None.

    srun says which node when it can (``Task launch for StepId=... failed on node n3``);
    a step of one node names that node. A step over several nodes that failed without a
    name stays the caller's (Slurm's) error: no node is blamed on a guess.
    """
    if result.ok:
        return None
    lines = [ln.strip() for ln in result.stderr.splitlines() if _LAUNCH_FAILED.search(ln)]
    if not lines:
        return None
    for line in lines:
        named = _LAUNCH_FAILED_ON.search(line)
        if named and named.group(1) in nodes:
            return ConnectError(named.group(1), f"its slurmd did not take the step: {line[:300]}")
    if len(nodes) == 1:
        return ConnectError(nodes[0], f"its slurmd did not take the step: {lines[-1][:300]}")
    return None


def by_node(members: Sequence[GpuRef]) -> dict[str, list[int]]:
    """Members grouped by node, in first-seen order: node -> GPU indexes."""
    if not members:
        raise ValueError("a collective needs at least one member")
    if len(set(members)) != len(members):
        raise ValueError("a collective's members must be distinct GPUs")
    out: dict[str, list[int]] = {}
    for g in members:
        out.setdefault(g.node, []).append(g.index)
    return out


def free_port() -> int:
    """A TCP port free on this machine now (the rendezvous port of the next launch)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _one_node(gpus: Sequence[GpuRef]) -> str:
    nodes = {g.node for g in gpus}
    if len(nodes) != 1:
        raise ValueError(f"one GEMM call burns one node's GPUs, got {sorted(nodes)}")
    return nodes.pop()

"""TorchCollectiveEngine: collective sweeps on this node through torch.distributed.

``run`` starts one worker process per member (``python -m
burnin.engines.collective_worker``, the same entry point Slurm or SSH launch
across nodes), with a torchrun-style environment: ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` (= the member's GPU index), ``MASTER_ADDR=127.0.0.1`` and a free
``MASTER_PORT`` (TCP store rendezvous). Workers use NCCL on CUDA GPUs and gloo
on CPU (``device="cpu"``: N CPU ranks, one per member). Rank 0's JSON holds
nccl-tests-like rows (time = max over ranks, ``wrong`` summed over ranks); see
:mod:`burnin.engines.collective_worker`.

``run_batch`` starts every group's workers at once, each group its own
process group (own ``MASTER_PORT`` rendezvous, own world), and watches them
together: the groups run concurrently, a group that fails or hangs is killed
and reported as that group's outcome while the others finish. Each outcome's
``elapsed_s`` is the group's wall-clock time from launch to its last worker.

``timeout_s`` bounds everything: the process group's own timeout, each
worker's self-watchdog, and this engine's watchdog, which kills every worker
and raises :class:`~dcops.errors.CommandTimeout`. A worker that fails makes
the engine kill the others and raise :class:`~dcops.errors.BackendError` with
that rank's one-line error. The parent process never imports torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import burnin
import dcops
from burnin.engines._torch import DEVICE_KINDS, local_hostname
from burnin.engines.collective_ops import OPS
from burnin.engines.collective_worker import (
    EXIT_TIMEOUT,
    Fault,
    parse_worker_json,
)
from dcops.collective_batch import check_disjoint
from dcops.errors import (
    BackendError,
    CommandTimeout,
    ConfigError,
    DcopsError,
    UnknownNameError,
    UnknownNodeError,
)
from dcops.measurements import CollectiveOutcome, CollectiveResult, GpuRef

WORKER_MODULE = "burnin.engines.collective_worker"
DEFAULT_TIMEOUT_S = 900.0
_POLL_S = 0.05


class TorchCollectiveEngine:
    """CollectiveEngine over this node's GPUs (NCCL) or CPU ranks (gloo)."""

    def __init__(
        self,
        *,
        device: str = "auto",
        warmup: int = 2,
        default_timeout_s: float = DEFAULT_TIMEOUT_S,
        hostname: str | None = None,
        python: str = sys.executable,
        fault: str | None = None,
    ) -> None:
        if device not in DEVICE_KINDS:
            raise ConfigError(f"device must be one of {', '.join(DEVICE_KINDS)}, not {device!r}")
        if warmup < 0 or default_timeout_s <= 0:
            raise ValueError("warmup must be >= 0 and default_timeout_s > 0")
        self.device = device
        self.warmup = warmup
        self.default_timeout_s = default_timeout_s
        self.hostname = hostname or local_hostname()
        self.python = python
        self.fault = str(Fault.parse(fault)) if fault else None

    def run(
        self,
        op: str,
        members: Sequence[GpuRef],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> CollectiveResult:
        return self.run_many(
            [op], members, sizes_bytes=sizes_bytes, iterations=iterations, timeout_s=timeout_s
        )[0]

    def run_many(
        self,
        ops: Sequence[str],
        members: Sequence[GpuRef],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> list[CollectiveResult]:
        """Several ops in one launch of the workers (one rendezvous); one result per op."""
        for op in ops:
            if op not in OPS:
                raise UnknownNameError("collective", op, OPS)
        if not ops:
            return []
        outcome = self._batch(ops, [members], sizes_bytes, iterations, timeout_s)[0]
        if outcome[1] is not None:
            raise outcome[1]
        assert outcome[0] is not None
        return outcome[0]

    def run_batch(
        self,
        op: str,
        groups: Sequence[Sequence[GpuRef]],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> list[CollectiveOutcome]:
        if op not in OPS:
            raise UnknownNameError("collective", op, OPS)
        check_disjoint(groups)
        out = []
        start = time.monotonic()
        done = self._batch([op], groups, sizes_bytes, iterations, timeout_s, start)
        for members, (results, error, held) in zip(groups, done, strict=True):
            result = dataclasses.replace(results[0], elapsed_s=held) if results else None
            out.append(CollectiveOutcome(tuple(members), result, error, held))
        return out

    def _batch(
        self,
        ops: Sequence[str],
        groups: Sequence[Sequence[GpuRef]],
        sizes_bytes: Sequence[int],
        iterations: int,
        timeout_s: float | None,
        start: float | None = None,
    ) -> list[tuple[list[CollectiveResult] | None, DcopsError | None, float]]:
        for members in groups:
            self._check_members(members)
        sizes = [int(s) for s in sizes_bytes]
        if not sizes or min(sizes) <= 0:
            raise ValueError("sizes_bytes must be positive")
        if iterations < 1:
            raise ValueError("iterations must be >= 1")
        limit_s = self.default_timeout_s if timeout_s is None else float(timeout_s)
        if limit_s <= 0:
            raise ValueError("timeout_s must be positive")
        argv = [
            self.python,
            "-m",
            WORKER_MODULE,
            "--ops",
            ",".join(ops),
            "--sizes",
            ",".join(str(s) for s in sizes),
            "--iterations",
            str(iterations),
            "--warmup",
            str(self.warmup),
            "--device",
            self.device,
            "--node",
            self.hostname,
            "--timeout-s",
            f"{limit_s:g}",
        ]
        if self.fault:
            argv += ["--fault", self.fault]
        start = time.monotonic() if start is None else start
        with contextlib.ExitStack() as stack:
            tmps = [
                Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dcops-coll-")))
                for _ in groups
            ]
            launches = [
                _Group(list(members), tmp, [*argv, "--out", str(tmp / "rank{rank}.json")])
                for members, tmp in zip(groups, tmps, strict=True)
            ]
            total = sum(len(m) for m in groups)
            try:
                for g in launches:
                    self._start(g, total)
                self._watch(launches, start + limit_s, limit_s, " ".join(ops))
            finally:
                for g in launches:
                    g.kill()
            out: list[tuple[list[CollectiveResult] | None, DcopsError | None, float]] = []
            for g in launches:
                if g.error is not None:
                    out.append((None, g.error, g.held_s))
                    continue
                text = (g.tmp / "rank0.json").read_text(encoding="utf-8")
                try:
                    out.append((parse_worker_json(text, g.members), None, g.held_s))
                except DcopsError as exc:
                    out.append((None, exc, g.held_s))
            return out

    # -- internals ------------------------------------------------------------------

    def _check_members(self, members: Sequence[GpuRef]) -> None:
        if not members:
            raise ValueError("a collective needs at least one member")
        if len(set(members)) != len(members):
            raise ValueError("a collective's members must be distinct GPUs")
        foreign = sorted({g.node for g in members if g.node != self.hostname})
        if foreign:
            raise UnknownNodeError(
                f"{', '.join(foreign)}: not this node ({self.hostname}); TorchCollectiveEngine "
                f"runs local ranks only (launch {WORKER_MODULE} with srun/ssh for several nodes)"
            )

    def _start(self, group: _Group, total_ranks: int) -> None:
        n = len(group.members)
        env = dict(os.environ)
        roots = {str(Path(burnin.__file__).resolve().parents[1])}
        roots.add(str(Path(dcops.__file__).resolve().parents[1]))
        env["PYTHONPATH"] = os.pathsep.join([*sorted(roots), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // total_ranks)))
        env.update(
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(_free_port()),
            WORLD_SIZE=str(n),
            LOCAL_WORLD_SIZE=str(n),
        )
        group.started = time.monotonic()
        for rank, ref in enumerate(group.members):
            env_r = {**env, "RANK": str(rank), "LOCAL_RANK": str(ref.index)}
            with open(group.tmp / f"rank{rank}.stderr", "wb") as err:
                group.procs.append(
                    subprocess.Popen(
                        group.argv, env=env_r, stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=err,
                    )
                )  # fmt: skip

    def _watch(self, groups: list[_Group], deadline: float, limit_s: float, what: str) -> None:
        """Poll every group until each has finished, failed or run out of time."""
        while any(g.running for g in groups):
            now = time.monotonic()
            for g in groups:
                if g.running:
                    g.check(self.hostname, what, now >= deadline, limit_s)
            if any(g.running for g in groups):
                time.sleep(_POLL_S)


class _Group:
    """One group of a batch: its workers, scratch directory and how it ended."""

    def __init__(self, members: list[GpuRef], tmp: Path, argv: list[str]) -> None:
        self.members = members
        self.tmp = tmp
        self.argv = argv
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = time.monotonic()
        self.held_s = 0.0
        self.error: DcopsError | None = None
        self.running = True

    def check(self, host: str, what: str, late: bool, limit_s: float) -> None:
        codes = [p.poll() for p in self.procs]
        n = len(self.procs)
        timed_out = [r for r, c in enumerate(codes) if c == EXIT_TIMEOUT]
        if timed_out or late:
            running = [r for r, c in enumerate(codes) if c is None] or timed_out
            self._end(
                CommandTimeout(
                    host,
                    f"{what} over {n} ranks did not finish within {limit_s:g} s "
                    f"(ranks still waiting: {', '.join(map(str, running))})",
                )
            )
            return
        failed = [r for r, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            r = failed[0]
            self._end(
                BackendError(
                    f"{what} over {n} ranks failed on rank {r} ({self.members[r]}): "
                    f"{_rank_error(self.tmp, r)}"
                )
            )
            return
        if all(c == 0 for c in codes):
            self._end(None)

    def _end(self, error: DcopsError | None) -> None:
        self.error = error
        self.running = False
        self.held_s = time.monotonic() - self.started
        self.kill()

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()


def _free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the rendezvous store of rank 0 binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_error(tmp: Path, rank: int) -> str:
    """A failed rank's one-line error: its JSON ``error``, else its last stderr line."""
    doc = tmp / f"rank{rank}.json"
    if doc.exists():
        try:
            err = json.loads(doc.read_text(encoding="utf-8")).get("error")
        except ValueError:
            err = None
        if err:
            return str(err)
    stderr = tmp / f"rank{rank}.stderr"
    lines = (
        stderr.read_text(encoding="utf-8", errors="replace").splitlines() if stderr.exists() else []
    )
    lines = [ln.strip() for ln in lines if ln.strip()]
    return lines[-1] if lines else "exited without a word"

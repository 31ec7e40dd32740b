"""TorchCollectiveEngine: collective sweeps on this node through torch.distributed.

``run`` starts one worker process per member (``python -m
burnin.engines.collective_worker``, the same entry point Slurm or SSH launch
across nodes), with a torchrun-style environment: ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` (= the member's GPU index), ``MASTER_ADDR=127.0.0.1`` and a free
``MASTER_PORT`` (TCP store rendezvous). Workers use NCCL on CUDA GPUs and gloo
on CPU (``device="cpu"``: N CPU ranks, one per member). Rank 0's JSON holds
nccl-tests-like rows (time = max over ranks, ``wrong`` summed over ranks); see
:mod:`burnin.engines.collective_worker`.

``timeout_s`` bounds everything: the process group's own timeout, each
worker's self-watchdog, and this engine's watchdog, which kills every worker
and raises :class:`~dcops.errors.CommandTimeout`. A worker that fails makes
the engine kill the others and raise :class:`~dcops.errors.BackendError` with
that rank's one-line error. The parent process never imports torch.
"""

from __future__ import annotations

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
from burnin.engines._collective_ops import OPS
from burnin.engines._torch import DEVICE_KINDS, local_hostname
from burnin.engines.collective_worker import (
    EXIT_TIMEOUT,
    Fault,
    parse_worker_json,
)
from dcops.errors import (
    BackendError,
    CommandTimeout,
    ConfigError,
    UnknownNameError,
    UnknownNodeError,
)
from dcops.measurements import CollectiveResult, GpuRef

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
        with tempfile.TemporaryDirectory(prefix="dcops-coll-") as tmp:
            out = os.path.join(tmp, "rank{rank}.json")
            self._launch([*argv, "--out", out], members, limit_s, Path(tmp), " ".join(ops))
            text = Path(out.replace("{rank}", "0")).read_text(encoding="utf-8")
        return parse_worker_json(text, members)

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

    def _launch(
        self, argv: list[str], members: Sequence[GpuRef], limit_s: float, tmp: Path, what: str
    ) -> None:
        n = len(members)
        env = dict(os.environ)
        roots = {str(Path(burnin.__file__).resolve().parents[1])}
        roots.add(str(Path(dcops.__file__).resolve().parents[1]))
        env["PYTHONPATH"] = os.pathsep.join([*sorted(roots), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
        env.update(
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(_free_port()),
            WORLD_SIZE=str(n),
            LOCAL_WORLD_SIZE=str(n),
        )
        deadline = time.monotonic() + limit_s
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for rank, ref in enumerate(members):
                env_r = {**env, "RANK": str(rank), "LOCAL_RANK": str(ref.index)}
                with open(tmp / f"rank{rank}.stderr", "wb") as err:
                    procs.append(
                        subprocess.Popen(
                            argv, env=env_r, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err,
                        )
                    )  # fmt: skip
            self._watch(procs, members, deadline, limit_s, tmp, what)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            for p in procs:
                p.wait()

    def _watch(
        self,
        procs: list[subprocess.Popen[bytes]],
        members: Sequence[GpuRef],
        deadline: float,
        limit_s: float,
        tmp: Path,
        what: str,
    ) -> None:
        while True:
            codes = [p.poll() for p in procs]
            timed_out = [r for r, c in enumerate(codes) if c == EXIT_TIMEOUT]
            if timed_out or time.monotonic() >= deadline:
                running = [r for r, c in enumerate(codes) if c is None] or timed_out
                raise CommandTimeout(
                    self.hostname,
                    f"{what} over {len(procs)} ranks did not finish within {limit_s:g} s "
                    f"(ranks still waiting: {', '.join(map(str, running))})",
                )
            failed = [r for r, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                r = failed[0]
                raise BackendError(
                    f"{what} over {len(procs)} ranks failed on rank {r} ({members[r]}): "
                    f"{_rank_error(tmp, r)}"
                )
            if all(c == 0 for c in codes):
                return
            time.sleep(_POLL_S)


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

"""One rank of a collective sweep; run it like torchrun would, one process per GPU.

::

    RANK=0 WORLD_SIZE=8 LOCAL_RANK=0 MASTER_ADDR=node01 MASTER_PORT=29500 \\
        python -m burnin.engines.collective_worker --ops all_reduce,all_gather \\
        --sizes 1048576,1073741824 --iterations 20 --timeout-s 600

``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` fall back to Slurm's ``SLURM_PROCID``/
``SLURM_NTASKS``/``SLURM_LOCALID``, so ``srun`` can start it directly. On CUDA the
rank uses GPU ``LOCAL_RANK`` and NCCL; on CPU, gloo. Per op and size: ``--warmup``
untimed calls, ``--iterations`` timed calls between device synchronizations
(time = the max over ranks, as nccl-tests reports), then one checked call whose
``wrong`` is summed over ranks. Rank 0 writes the JSON document (see
:func:`parse_worker_json`) to ``--out`` (``{rank}`` is replaced) or stdout;
the other ranks write theirs only to ``--out``. A rank that fails writes
``{"rank": r, "error": "..."}`` and exits 3; one that outlives ``--timeout-s``
exits 124. An op the backend does not implement gets no rows and a note saying so.

Self-test faults (``--fault``): ``wrong:R[:K]`` adds 1 to K (default 8) result
elements on rank R after the checked call; ``hang:R`` makes rank R stall before
the sweep, so the others wait in their first collective.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from burnin.engines._torch import first_line, import_torch, resolve_device_kind
from burnin.engines.collective_ops import (
    DTYPE,
    ELEMENT_BYTES,
    OPS,
    REDOP,
    ROOT,
    ROOTED,
    make_buffers,
)
from dcops.atomic import write_atomic
from dcops.errors import BackendError, DcopsError, InputError
from dcops.measurements import (
    BandwidthSample,
    CollectiveResult,
    CollectiveRow,
    GpuRef,
    bus_factor,
)

FORMAT = "dcops.collective/1"
EXIT_FAILED = 3
EXIT_TIMEOUT = 124
_UNSUPPORTED_HINTS = ("not supported", "not implemented", "does not support", "unsupported")


@dataclass(frozen=True)
class Fault:
    """A self-test fault: ``wrong`` results or a ``hang`` on one rank."""

    kind: str
    rank: int
    elements: int = 8

    @classmethod
    def parse(cls, text: str) -> Fault:
        parts = text.split(":")
        try:
            if parts[0] == "wrong" and len(parts) in (2, 3):
                return cls("wrong", int(parts[1]), int(parts[2]) if len(parts) == 3 else 8)
            if parts[0] == "hang" and len(parts) == 2:
                return cls("hang", int(parts[1]))
        except ValueError:
            pass
        raise InputError(f"bad --fault {text!r}: want wrong:RANK[:ELEMENTS] or hang:RANK")

    def __str__(self) -> str:
        return f"wrong:{self.rank}:{self.elements}" if self.kind == "wrong" else f"hang:{self.rank}"


@dataclass(frozen=True)
class RankEnv:
    """Where this rank sits, from torchrun's (or Slurm's) environment."""

    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_environ(cls, env: dict[str, str] | None = None) -> RankEnv:
        env = dict(os.environ if env is None else env)

        def get(*names: str, default: str | None = None) -> int:
            for name in names:
                if env.get(name, "") != "":
                    try:
                        return int(env[name])
                    except ValueError:
                        raise InputError(f"{name}={env[name]!r} is not an integer") from None
            if default is not None:
                return int(default)
            raise InputError(f"{' or '.join(names)} is not set (launch like torchrun or srun)")

        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not env.get(name):
                raise InputError(f"{name} is not set (launch like torchrun or srun)")
        return cls(
            rank=get("RANK", "SLURM_PROCID"),
            world_size=get("WORLD_SIZE", "SLURM_NTASKS"),
            local_rank=get("LOCAL_RANK", "SLURM_LOCALID", default="0"),
        )


# -- the sweep -------------------------------------------------------------------------


def run_sweep(
    torch: Any,
    dist: Any,
    ops: Sequence[str],
    sizes_bytes: Sequence[int],
    *,
    rank: int,
    ranks: int,
    device: Any,
    iterations: int,
    warmup: int,
    fault: Fault | None = None,
) -> list[dict[str, Any]]:
    """Every op over every size on an initialized process group: one dict per op."""
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    if fault is not None and fault.kind == "hang" and fault.rank == rank:
        while True:  # stall until a watchdog ends us
            time.sleep(1.0)
    results = []
    for op in ops:
        rows: list[dict[str, Any]] = []
        notes: list[str] = []
        for size in sizes_bytes:
            bufs = make_buffers(torch, dist, op, size, rank, ranks, device)
            bufs.fill()
            try:
                bufs.call()
            except (RuntimeError, NotImplementedError, ValueError) as exc:
                text = first_line(exc)
                if rows or not (
                    isinstance(exc, NotImplementedError)
                    or any(h in text.lower() for h in _UNSUPPORTED_HINTS)
                ):
                    raise
                notes.append(f"{op} not supported by {dist.get_backend()} here: {text}")
                break
            for _ in range(warmup):
                bufs.call()
            sync()
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(iterations):
                bufs.call()
            sync()
            per_op_s = (time.perf_counter() - t0) / iterations
            bufs.fill()
            bufs.call()
            sync()
            if fault and fault.kind == "wrong" and fault.rank == rank and bufs.checked is not None:
                bufs.checked.reshape(-1)[: fault.elements] += 1.0
            wrong = bufs.count_wrong(torch)
            stats = torch.tensor([per_op_s], dtype=torch.float64, device=device)
            dist.all_reduce(stats, op=dist.ReduceOp.MAX)
            wrongs = torch.tensor([wrong], dtype=torch.int64, device=device)
            dist.all_reduce(wrongs)
            time_s = float(stats.item())
            size_bytes = bufs.count * ELEMENT_BYTES
            algbw = size_bytes / time_s / 1e9 if time_s > 0 else 0.0
            rows.append(
                {
                    "size_bytes": size_bytes,
                    "count": bufs.count,
                    "time_us": time_s * 1e6,
                    "algbw_gbps": algbw,
                    "busbw_gbps": algbw * bus_factor(op, ranks),
                    "wrong": int(wrongs.item()),
                }
            )
            del bufs
        results.append({"op": op, "rows": rows, "notes": notes})
    return results


# -- JSON document <-> records ----------------------------------------------------------


def parse_worker_json(text: str, members: Sequence[GpuRef] | None = None) -> list[CollectiveResult]:
    """Rank 0's JSON document -> one CollectiveResult per op.

    ``members`` (in rank order) overrides the members the ranks reported.
    A document with ``error`` raises :class:`~dcops.errors.BackendError`.
    """
    try:
        doc = json.loads(text)
        if doc.get("error"):
            raise BackendError(f"collective rank {doc.get('rank', '?')}: {doc['error']}")
        if doc.get("format") != FORMAT:
            raise BackendError(f"collective worker output is not {FORMAT}")
        refs = (
            tuple(members)
            if members is not None
            else tuple(GpuRef(str(m["node"]), int(m["index"])) for m in doc["members"])
        )
        common = (
            f"device={doc['device']}",
            f"ranks={doc['world_size']}",
            f"torch={doc['torch']}",
            "time=max over ranks; all_reduce/broadcast/reduce in place",
        )
        out = []
        for res in doc["results"]:
            op = str(res["op"])
            rows = tuple(
                CollectiveRow(
                    size_bytes=int(r["size_bytes"]),
                    count=int(r["count"]),
                    dtype=DTYPE,
                    redop=REDOP.get(op),
                    root=ROOT if op in ROOTED else None,
                    out_of_place=BandwidthSample(
                        float(r["time_us"]),
                        float(r["algbw_gbps"]),
                        float(r["busbw_gbps"]),
                        int(r["wrong"]),
                    ),
                )
                for r in res["rows"]
            )
            notes = (*common, *(str(n) for n in res["notes"]))
            out.append(
                CollectiveResult(
                    op=op, members=refs, rows=rows, backend=str(doc["backend"]), notes=notes
                )
            )
        return out
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackendError(f"collective worker output does not parse: {first_line(exc)}") from exc


# -- the process ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m burnin.engines.collective_worker",
        description="One rank of a dcops collective sweep (launch like torchrun or srun).",
    )
    p.add_argument("--ops", default="all_reduce", help=f"comma list of {', '.join(OPS)}")
    p.add_argument("--sizes", default="1048576", help="comma list of sizes in bytes")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    p.add_argument("--node", default=None, help="this node's name (default: hostname)")
    p.add_argument("--timeout-s", type=float, default=900.0)
    p.add_argument("--out", default=None, help="write JSON here ({rank} is replaced)")
    p.add_argument("--fault", default=None, help="self-test: wrong:RANK[:K] or hang:RANK")
    return p


def _write(path: str | None, rank: int, doc: dict[str, Any]) -> None:
    """Every rank writes ``--out``; without it rank 0 prints to stdout. Errors also go to stderr."""
    text = json.dumps(doc)
    if path:
        target = path.replace("{rank}", str(rank))
        write_atomic(target, text)
    elif rank == 0:
        print(text, flush=True)
    if doc.get("error"):
        print(f"collective_worker rank {rank}: {doc['error']}", file=sys.stderr, flush=True)


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{what} must be a comma list of integers, not {text!r}") from None
    if not values or min(values) <= 0:
        raise InputError(f"{what} must be positive integers")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rank = -1
    try:
        where = RankEnv.from_environ()
        rank = where.rank
        ops = [o for o in args.ops.split(",") if o]
        unknown = [o for o in ops if o not in OPS]
        if unknown or not ops:
            raise InputError(f"unknown collective(s) {unknown} (known: {', '.join(OPS)})")
        sizes = _int_list(args.sizes, "--sizes")
        if args.iterations < 1 or args.warmup < 0 or args.timeout_s <= 0:
            raise InputError("--iterations >= 1, --warmup >= 0 and --timeout-s > 0 please")
        fault = Fault.parse(args.fault) if args.fault else None
        _start_watchdog(args.timeout_s, args.out, rank)
        doc = _run(args, where, ops, sizes, fault)
    except (DcopsError, RuntimeError, ValueError, OSError) as exc:
        _write(args.out, max(rank, 0), {"rank": rank, "error": first_line(exc)})
        return EXIT_FAILED
    _write(args.out, rank, doc)
    return 0


def _run(
    args: argparse.Namespace, where: RankEnv, ops: list[str], sizes: list[int], fault: Fault | None
) -> dict[str, Any]:
    torch = import_torch()
    import torch.distributed as dist

    kind = resolve_device_kind(torch, args.device)
    if kind == "cuda":
        if not 0 <= where.local_rank < torch.cuda.device_count():
            raise BackendError(
                f"LOCAL_RANK {where.local_rank} but torch sees {torch.cuda.device_count()} GPUs"
            )
        device = torch.device("cuda", where.local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    backend = "nccl" if kind == "cuda" else "gloo"
    dist.init_process_group(
        backend,
        rank=where.rank,
        world_size=where.world_size,
        timeout=timedelta(seconds=args.timeout_s),
        **({"device_id": device} if kind == "cuda" else {}),
    )
    try:
        me = {"node": args.node or socket.gethostname(), "index": where.local_rank}
        members: list[Any] = [None] * where.world_size
        dist.all_gather_object(members, me)
        results = run_sweep(
            torch,
            dist,
            ops,
            sizes,
            rank=where.rank,
            ranks=where.world_size,
            device=device,
            iterations=args.iterations,
            warmup=args.warmup,
            fault=fault,
        )
    finally:
        dist.destroy_process_group()
    return {
        "format": FORMAT,
        "rank": where.rank,
        "world_size": where.world_size,
        "backend": backend,
        "device": kind,
        "torch": str(torch.__version__),
        "members": members,
        "results": results,
        "error": None,
    }


def _start_watchdog(timeout_s: float, out: str | None, rank: int) -> None:
    """End this process (exit 124) when it outlives ``timeout_s``, whatever it waits on."""

    def fire() -> None:
        msg = f"rank {rank} did not finish within {timeout_s:g} s"
        try:
            _write(out, rank, {"rank": rank, "error": msg, "timed_out": True})
        finally:
            os._exit(EXIT_TIMEOUT)

    timer = threading.Timer(timeout_s, fire)
    timer.daemon = True
    timer.start()


if __name__ == "__main__":
    sys.exit(main())

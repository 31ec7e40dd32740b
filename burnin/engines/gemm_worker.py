"""One node's GEMM burn as a process: what Slurm (``srun``) or SSH start on each node.

::

    python -m burnin.engines.gemm_worker --node gb200-r01-t01 --gpus 0,1,2,3 \\
        --dtype bf16 --duration-s 60 --seed 1000 --timeout-s 240

It runs :class:`burnin.engines.gemm.TorchGemmEngine` on this node's GPUs (CUDA
when torch sees one, else CPU "GPUs", one per listed index) and prints one JSON
document on stdout (see :func:`gemm_json` / :func:`parse_gemm_json`)::

    {"format": "dcops.gemm/1", "node": "...", "device": "cuda", "torch": "2.x",
     "results": [{"gpu": {"node": "...", "index": 0}, "dtype": "bf16", ...}],
     "error": null}

A burn that fails prints ``{"format": ..., "node": ..., "error": "one line"}``
and exits 3; one that outlives ``--timeout-s`` (its own watchdog, whatever it
waits on) prints an error document with ``"timed_out": true`` and exits 124.

Self-test faults (``--fault``): ``fail`` errors before burning, ``hang``
stalls until the watchdog (or the launcher's) ends it. ``DCOPS_GEMM_FAULT``
in the environment does the same when it names this node (``NODE=fail`` or
``NODE=hang``, comma-separated), so a test can break one node of many.
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
from dataclasses import asdict
from typing import Any

from dcops.errors import BackendError, CommandTimeout, DcopsError, InputError
from dcops.measurements import GemmResult, GpuRef

FORMAT = "dcops.gemm/1"
EXIT_FAILED = 3
EXIT_TIMEOUT = 124
FAULTS = ("fail", "hang")
FAULT_ENV = "DCOPS_GEMM_FAULT"


# -- JSON document <-> records ----------------------------------------------------------


def gemm_json(node: str, results: Sequence[GemmResult], *, device: str, torch: str) -> str:
    """The worker's success document (one line)."""
    doc = {
        "format": FORMAT,
        "node": node,
        "device": device,
        "torch": torch,
        "results": [asdict(r) for r in results],
        "error": None,
    }
    return json.dumps(doc)


def error_json(node: str, message: str, *, timed_out: bool = False) -> str:
    """The worker's failure document (one line)."""
    doc: dict[str, Any] = {"format": FORMAT, "node": node, "error": message}
    if timed_out:
        doc["timed_out"] = True
    return json.dumps(doc)


def find_document(stdout: str, fmt: str) -> str | None:
    """The last line of ``stdout`` that is a JSON object of format ``fmt`` (or an error)."""
    for line in reversed(stdout.splitlines()):
        text = line.strip()
        if not (text.startswith("{") and text.endswith("}")):
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        if isinstance(doc, dict) and (doc.get("format") == fmt or "error" in doc):
            return text
    return None


def parse_gemm_json(text: str, node: str | None = None) -> list[GemmResult]:
    """A worker's JSON document -> GemmResults (``node`` overrides the node it reported).

    An error document raises :class:`~dcops.errors.CommandTimeout` when the worker
    timed out, else :class:`~dcops.errors.BackendError`; both name the node.
    """
    try:
        doc = json.loads(text)
        where = node or str(doc.get("node") or "?")
        if doc.get("error"):
            if doc.get("timed_out"):
                raise CommandTimeout(where, str(doc["error"]))
            raise BackendError(f"{where}: GEMM worker: {doc['error']}")
        if doc.get("format") != FORMAT:
            raise BackendError(f"{where}: GEMM worker output is not {FORMAT}")
        out = []
        for r in doc["results"]:
            gpu = GpuRef(node or str(r["gpu"]["node"]), int(r["gpu"]["index"]))
            out.append(
                GemmResult(
                    gpu=gpu,
                    dtype=str(r["dtype"]),
                    m=int(r["m"]),
                    n=int(r["n"]),
                    k=int(r["k"]),
                    iterations=int(r["iterations"]),
                    duration_s=float(r["duration_s"]),
                    tflops=float(r["tflops"]),
                    checksum=str(r["checksum"]),
                    rel_error=float(r["rel_error"]),
                    has_nan=bool(r.get("has_nan", False)),
                    device=str(r.get("device", "cpu")),
                )
            )
        return out
    except DcopsError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackendError(
            f"{node or '?'}: GEMM worker output does not parse: {type(exc).__name__}: {exc}"
        ) from exc


# -- the process ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m burnin.engines.gemm_worker",
        description="One node's dcops GEMM burn; prints a JSON document on stdout.",
    )
    p.add_argument("--node", default=None, help="this node's name (default: hostname)")
    p.add_argument("--gpus", required=True, help="comma list of GPU indexes to burn")
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--duration-s", type=float, required=True)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--timeout-s", type=float, default=None)
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    p.add_argument("--size", type=int, default=None, help="square GEMM size (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--fault", default=None, choices=FAULTS, help="self-test fault")
    return p


def _env_fault(node: str, environ: dict[str, str]) -> str | None:
    """The fault ``DCOPS_GEMM_FAULT`` names for ``node`` (``NODE=fail,NODE2=hang``)."""
    for item in environ.get(FAULT_ENV, "").split(","):
        name, _, kind = item.strip().partition("=")
        if name == node and kind in FAULTS:
            return kind
    return None


def _gpu_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--gpus must be a comma list of integers, not {text!r}") from None
    if not values or min(values) < 0:
        raise InputError("--gpus must list GPU indexes >= 0")
    return values


def _start_watchdog(timeout_s: float, node: str) -> None:
    def fire() -> None:
        try:
            msg = f"GEMM worker did not finish within {timeout_s:g} s"
            print(error_json(node, msg, timed_out=True), flush=True)
        finally:
            os._exit(EXIT_TIMEOUT)

    timer = threading.Timer(timeout_s, fire)
    timer.daemon = True
    timer.start()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    node = args.node or socket.gethostname()
    try:
        if args.duration_s <= 0 or (args.timeout_s is not None and args.timeout_s <= 0):
            raise InputError("--duration-s and --timeout-s must be positive")
        gpus = [GpuRef(node, i) for i in _gpu_list(args.gpus)]
        if args.timeout_s is not None:
            _start_watchdog(args.timeout_s, node)
        fault = args.fault or _env_fault(node, dict(os.environ))
        if fault == "hang":
            while True:  # stall until a watchdog ends us
                time.sleep(1.0)
        if fault == "fail":
            raise BackendError("self-test fault: this node fails on purpose")
        from burnin.engines._torch import import_torch
        from burnin.engines.gemm import TorchGemmEngine

        torch = import_torch()
        if args.threads:
            torch.set_num_threads(args.threads)
        engine = TorchGemmEngine(device=args.device, size=args.size, hostname=node)
        results = engine.run(
            gpus,
            dtype=args.dtype,
            duration_s=args.duration_s,
            seed=args.seed,
            # the watchdog bounds the process; the engine keeps a margin for its own report
            timeout_s=None if args.timeout_s is None else max(args.timeout_s - 1.0, 0.01),
        )
        text = gemm_json(node, results, device=engine.device_kind(), torch=str(torch.__version__))
    except (DcopsError, RuntimeError, ValueError, OSError) as exc:
        timed_out = isinstance(exc, CommandTimeout)
        print(error_json(node, _one_line(exc), timed_out=timed_out), flush=True)
        print(f"gemm_worker {node}: {_one_line(exc)}", file=sys.stderr, flush=True)
        return EXIT_TIMEOUT if timed_out else EXIT_FAILED
    print(text, flush=True)
    return 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())

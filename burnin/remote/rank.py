"""One rank of a collective sweep started by ``srun``: Slurm's environment -> torchrun's.

::

    srun --jobid=J --nodelist=n[1-2] --ntasks-per-node=4 ... \\
        python3 -m burnin.remote.rank --gpu-map 'n1=0,1,2,3;n2=0,1,2,3' \\
        --addr 'n1=10.0.0.1;n2=10.0.0.2' -- --ops all_reduce --sizes 1048576 ...

Each task sets, from Slurm's variables, what :mod:`burnin.engines.collective_worker`
reads, then runs it in this process:

* ``RANK``/``WORLD_SIZE`` = ``SLURM_PROCID``/``SLURM_NTASKS``;
* ``LOCAL_RANK`` = the GPU index ``--gpu-map`` gives this node for ``SLURM_LOCALID``
  (a tray whose GPU 2 is excluded runs ranks on GPUs 0, 1, 3);
* ``MASTER_ADDR`` = the address (``--addr``, else the name) of the first node of
  ``SLURM_STEP_NODELIST``, where block distribution puts rank 0 (the
  ``scontrol show hostnames $SLURM_JOB_NODELIST | head -n1`` idiom), unless set;
* ``--node`` = ``SLURMD_NODENAME``, so rank 0's JSON names every rank's node.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from dcops.errors import InputError


def parse_map(text: str) -> dict[str, str]:
    """``a=x;b=y`` -> ``{"a": "x", "b": "y"}``."""
    out: dict[str, str] = {}
    for item in text.split(";"):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"bad map entry {item!r}: want NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def torch_env(
    environ: dict[str, str], gpu_map: dict[str, list[int]], addrs: dict[str, str]
) -> dict[str, str]:
    """The torchrun variables for this Slurm task (see the module docstring)."""
    from dcops.hostlist import expand

    try:
        node = environ["SLURMD_NODENAME"]
        procid, ntasks = environ["SLURM_PROCID"], environ["SLURM_NTASKS"]
        localid = int(environ.get("SLURM_LOCALID", "0"))
    except (KeyError, ValueError) as exc:
        raise InputError(f"not a Slurm task ({exc}): start this module with srun") from None
    gpus = gpu_map.get(node)
    if gpus is None or not 0 <= localid < len(gpus):
        raise InputError(f"--gpu-map has no GPU for {node} task {localid}")
    out = {
        "RANK": procid,
        "WORLD_SIZE": ntasks,
        "LOCAL_RANK": str(gpus[localid]),
        "LOCAL_WORLD_SIZE": str(len(gpus)),
    }
    if not environ.get("MASTER_ADDR"):
        step_nodes = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST")
        if not step_nodes:
            raise InputError("SLURM_STEP_NODELIST is not set: start this module with srun")
        first = expand(step_nodes)[0]
        out["MASTER_ADDR"] = addrs.get(first) or first
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from burnin.engines import collective_worker

    args = list(sys.argv[1:] if argv is None else argv)
    gpu_text, addr_text = "", ""
    while args and args[0] != "--":
        flag = args.pop(0)
        if flag not in ("--gpu-map", "--addr") or not args:
            print(f"usage: {__name__} --gpu-map MAP [--addr MAP] -- WORKER-ARGS", file=sys.stderr)
            return 2
        value = args.pop(0)
        if flag == "--gpu-map":
            gpu_text = value
        else:
            addr_text = value
    worker_args = args[1:]
    try:
        gpu_map = {
            n: [int(i) for i in v.split(",") if i.strip()] for n, v in parse_map(gpu_text).items()
        }
        env = torch_env(dict(os.environ), gpu_map, parse_map(addr_text))
    except (InputError, ValueError) as exc:
        print(f"{__name__}: {exc}", file=sys.stderr, flush=True)
        return collective_worker.EXIT_FAILED
    os.environ.update(env)
    if "--node" not in worker_args:
        worker_args += ["--node", os.environ["SLURMD_NODENAME"]]
    return collective_worker.main(worker_args)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: submissions through the bridge vs raw ``sbatch``, same slurmctld, same run.

    sudo python bench/bench_bridge.py [--jobs 50] [--tenant tenant-a] [--slurm-conf PATH]

Needs root and the test rig (``scripts/test-cluster up``; tenant users come from
scripts/rig/users.conf). Both sides submit the same trivial job as the tenant's
Unix user, switched the same way (``runuser``):

* raw: ``runuser -u USER -- sbatch --parsable`` with the script on stdin;
* bridge: :meth:`scheduler.bridge.Bridge.submit` with ``slurm-cli`` -- admission,
  quota check and reservation in the state store, the same sbatch, the jobs row
  update and two audit records.

Prints submissions per second of each and the ratio bridge/raw (target >= 0.8).
Every job submitted is cancelled at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from _result import result  # noqa: E402

SCRIPT = "sleep 1\n"


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--tenant", default="tenant-a")
    parser.add_argument("--slurm-conf", default="/tmp/dcops-rig/slurm/etc/slurm.conf")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/bridge rounds")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_bridge: run as root (it submits as the tenant's Unix user)")
    os.environ["SLURM_CONF"] = args.slurm_conf

    from dcops.store import AuditLog, Store
    from scheduler.backends.slurm_cli import SlurmCliBackend, UserSwitch
    from scheduler.bridge import Bridge
    from scheduler.spec import spec_from_dict
    from scheduler.tenants.contract import TenantContract
    from scheduler.tenants.store import create_tenant

    name = args.tenant
    root = Path(tempfile.mkdtemp(prefix="dcops-bench-"))
    out_root = Path("/tmp/dcops-tenants") / name
    out_root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chown", f"{name}:{name}", str(out_root)], check=True)
    contract = TenantContract(
        name=name,
        slurm_account=name,
        slurm_qos="normal",
        slurm_partitions=("batch",),
        unix_users=(name,),
        k8s_namespace=f"tenant-{name}",
        k8s_local_queue=name,
        gpu_quota=8,
        output_roots=(str(out_root),),
        max_submissions_per_minute=100000,
    )
    store = Store(root / "state.db")
    audit = AuditLog(store, actor="bench")
    create_tenant(store, contract, audit)
    bridge = Bridge(store, audit, backend_options={"slurm-cli": {"slurm_conf": args.slurm_conf}})
    spec = spec_from_dict(
        {"name": "bench", "resources": {"time_limit": "2m", "memory": "64Mi"}, "script": SCRIPT}
    )
    header = (
        f"#!/bin/bash\n#SBATCH --job-name=bench-raw\n#SBATCH --account={name}\n"
        f"#SBATCH --partition=batch\n#SBATCH --time=2\n#SBATCH --mem=64M\n"
        f"#SBATCH --chdir={out_root}\n#SBATCH --output=/dev/null\n"
    )
    switch = UserSwitch("runuser", args.slurm_conf)
    raw_argv = switch.argv(name, ["sbatch", "--parsable"])
    env = switch.env(name)
    cli_backend = bridge.backend("slurm-cli")
    assert isinstance(cli_backend, SlurmCliBackend)
    cli_backend.site()  # warm: sbatch --version once

    raw_s = bridge_s = 0.0
    try:
        for _ in range(args.rounds):
            start = time.perf_counter()
            for _ in range(args.jobs):
                subprocess.run(
                    raw_argv,
                    input=header + SCRIPT,
                    env=env,
                    cwd="/",
                    capture_output=True,
                    text=True,
                    check=True,
                )
            raw_s += time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(args.jobs):
                bridge.submit(contract, spec, "slurm-cli")
            bridge_s += time.perf_counter() - start
    finally:
        subprocess.run(["scancel", f"--account={name}", "--name=bench,bench-raw"], check=False)
        store.close()
    total = args.jobs * args.rounds
    raw_rate, bridge_rate = _rate(total, raw_s), _rate(total, bridge_s)
    print(f"jobs per side:  {total} ({args.rounds} alternating rounds of {args.jobs})")
    print(f"raw sbatch:     {raw_rate:8.1f} submissions/s  ({1000 * raw_s / total:.1f} ms each)")
    print(
        f"bridge submit:  {bridge_rate:8.1f} submissions/s  ({1000 * bridge_s / total:.1f} ms each)"
    )
    print(f"ratio bridge/raw: {bridge_rate / raw_rate:.2f}  (target >= 0.80)")
    result("bridge_submit", bridge_rate, raw_rate, "submissions/s", "higher")


if __name__ == "__main__":
    main()

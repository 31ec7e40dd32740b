"""Runbook engine at fleet scale on the simulator, side by side with bare runner calls.

1,000 simulated GB200 trays (56 racks) each lost a GPU (XID 79). Both sides do
the same work per node, in the same process, on fresh copies of the same fleet:

* ``engine``: :func:`runbooks.engine.start` of an XID 79 runbook (drain,
  collect dmesg/journal/nvidia-smi -q, reboot, wait until reachable, health
  checks gpu_count/xid/memory, resume) with approvals off (``runbook:reboot=act``):
  every step stored in SQLite before and after, every action through the
  actuator (intent, audit record, lock, worker thread), every outcome audited;
* ``bare``: the same commands with the runner and the same health checks, the
  drain and resume straight to the scheduler: what a loop over ``ssh`` does,
  with no record of anything.

The burn-in re-certification step is left out of both (it is the burn-in's
cost, measured by bench_detection/bench_engines). Prints wall seconds, the
engine's overhead per step ((engine - bare) / steps) and the time from the XID
to the node back in service on the simulator's virtual clock (the reboot takes
240 s there) and in wall time per run.
Run: ``python bench/bench_runbooks.py [--nodes 1000]`` (~1-2 min on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from _result import result  # noqa: E402

from dcops.actions import ActionSettings, Actuator, ExecContext, topology_of  # noqa: E402
from dcops.cli.runbook_ports import HealthChecker  # noqa: E402
from dcops.errors import RemoteError  # noqa: E402
from dcops.node_actions import RecordingNodeActions  # noqa: E402
from dcops.sim.world import open_world, save_world  # noqa: E402
from dcops.store import AuditLog, Store  # noqa: E402
from runbooks.commands import COLLECT_ARGV  # noqa: E402
from runbooks.context import EngineContext  # noqa: E402
from runbooks.engine import start  # noqa: E402
from runbooks.evidence import DirectorySink  # noqa: E402
from runbooks.model import parse_runbook  # noqa: E402
from runbooks.runs import Limits  # noqa: E402

BOOK = {
    "name": "bench-xid-79",
    "description": "xid-79-reboot without the burn-in step",
    "triggers": {"xids": [79]},
    "steps": [
        {"name": "drain", "kind": "action", "action": "drain", "reason": "xid 79"},
        {"name": "collect", "kind": "collect", "items": ["dmesg", "journal", "nvidia-smi-q"]},
        {"name": "reboot", "kind": "action", "action": "reboot"},
        {"name": "wait-up", "kind": "wait_for", "condition": "reachable", "timeout_s": 900,
         "interval_s": 15},
        {"name": "check", "kind": "check", "checks": ["gpu_count", "xid", "memory"]},
        {"name": "resume", "kind": "action", "action": "resume"},
    ],
}  # fmt: skip
CHECKS = ["gpu_count", "xid", "memory"]


def scenario(tmp: Path, nodes: int) -> tuple[Path, list[str]]:
    racks = -(-nodes // 18)
    names = [f"sim-r{r:02d}-t{t:02d}" for r in range(1, racks + 1) for t in range(1, 19)][:nodes]
    faults = "".join(f"  - {{node: {n}, gpu: 0, kind: xid, code: 79}}\n" for n in names)
    path = tmp / "fleet.yaml"
    path.write_text(f"racks: {racks}\nseed: 1\nnoise: 0.0\nfaults:\n{faults}")
    return path, names


def run_engine(
    tmp: Path, path: Path, names: list[str]
) -> tuple[float, int, list[float], list[float]]:
    store = Store(tmp / "engine.db")
    world = open_world(store, path)
    site = world.fleet.site
    sched = RecordingNodeActions(site.nodes())
    audit = AuditLog(store, actor="bench")
    settings = ActionSettings(
        levels=("runbook:reboot=act",), max_drain_rack=1.0, max_drain_fleet=1.0,
        max_per_run=10_000, node_max_actions=100,
    )  # fmt: skip
    ctx = EngineContext(
        store=store,
        audit=audit,
        actuator=Actuator(
            audit,
            node_actions=sched,
            settings=settings,
            topology=topology_of(site),
            lock_dir=tmp / "locks",
            context=ExecContext(node_actions=sched, runner=world.fleet.runner),
        ),
        runner=world.fleet.runner,
        sink=DirectorySink(tmp / "tickets"),
        data_dir=tmp,
        requested_by="bench",
        node_actions=sched,
        checker=HealthChecker(world.fleet.runner, site),
        limits=Limits(max_per_rack=18, max_fleet=len(names) + 1, max_remediations_7d=10),
        clock=world.fleet.clock.now,
        sleep=world.maintenance.sleep,
        rack_of=lambda n: site.node(n).rack,
    )
    book = parse_runbook(BOOK, "bench")
    virtual, wall, steps = [], [], 0
    t0 = time.perf_counter()
    for node in names:
        v0, w0 = world.fleet.clock.now(), time.perf_counter()
        run = start(ctx, book, node)
        if run["status"] != "done":
            raise SystemExit(f"engine: {node}: {run['status']}: {run['message']}")
        wall.append(time.perf_counter() - w0)
        virtual.append(world.fleet.clock.now() - v0)
        steps += len(run["steps"])
    total = time.perf_counter() - t0
    save_world(store, world)
    store.close()
    return total, steps, virtual, wall


def run_bare(tmp: Path, path: Path, names: list[str]) -> float:
    store = Store(tmp / "bare.db")
    world = open_world(store, path)
    site = world.fleet.site
    runner = world.fleet.runner
    sched = RecordingNodeActions(site.nodes())
    checker = HealthChecker(runner, site)
    t0 = time.perf_counter()
    for node in names:
        sched.drain([node], "dcops: xid 79")
        for item in ("dmesg", "journal", "nvidia-smi-q"):
            runner.run(node, COLLECT_ARGV[item], timeout_s=120)
        runner.run(node, ["systemctl", "reboot"], timeout_s=90)
        while True:
            try:
                if runner.run(node, ["true"], timeout_s=30).ok:
                    break
            except RemoteError:
                pass
            world.maintenance.sleep(15)
        if not checker.check(node, CHECKS, timeout_s=60).passed:
            raise SystemExit(f"bare: {node} did not pass its checks")
        sched.resume([node])
    total = time.perf_counter() - t0
    store.close()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="50 nodes")
    args = parser.parse_args()
    if args.quick:
        args.nodes = 50
    with tempfile.TemporaryDirectory(prefix="dcops-bench-rb-") as tmp_name:
        tmp = Path(tmp_name)
        path, names = scenario(tmp, args.nodes)
        bare = run_bare(tmp, path, names)
        engine, steps, virtual, wall = run_engine(tmp, path, names)
    per_step_ms = (engine - bare) / steps * 1000
    print(f"{args.nodes} simulated trays, XID 79 each, {steps} steps (6 per run), approvals off")
    print(f"{'':<28} {'wall s':>8} {'ms/node':>8}")
    print(f"{'bare runner calls':<28} {bare:>8.2f} {bare / len(names) * 1000:>8.1f}")
    print(f"{'runbook engine':<28} {engine:>8.2f} {engine / len(names) * 1000:>8.1f}")
    print(f"engine / bare: {engine / bare:.2f}; engine overhead per step: {per_step_ms:.2f} ms")
    med_v, p95_v = statistics.median(virtual), sorted(virtual)[int(0.95 * (len(virtual) - 1))]
    med_w = statistics.median(wall) * 1000
    print(
        f"XID -> back in service: median {med_v:.0f} s, p95 {p95_v:.0f} s of simulated time "
        f"(reboot 240 s, polls every 15 s); {med_w:.1f} ms wall per run"
    )
    result("runbooks_engine_wall", engine, bare, "s", "lower")


if __name__ == "__main__":
    main()

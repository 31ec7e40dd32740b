"""A simulated day of GPU samples and allocations, for the energy tests (and the bench)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dcops.sim import SimFleet

DAY0 = 1_735_689_600.0  # 2025-01-01T00:00Z


def simulated_day(
    *, racks: int = 1, step_s: float = 300.0, hours: float = 24.0, no_counter_nodes: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Samples and allocations of ``hours`` on a simulated GB200 fleet.

    Jobs are laid out per node: a few back-to-back jobs per node with idle gaps,
    for three tenants. The fleet's load follows the jobs (set_load), the samples
    are the model's energy counters and power at each step. The first
    ``no_counter_nodes`` nodes report no energy counter (power only).
    """
    fleet = SimFleet.from_dict(
        {"sku": "gb200-nvl72", "racks": racks, "seed": 7, "start_time_s": DAY0}
    )
    model = fleet.model
    nodes = fleet.site.nodes()
    rng = np.random.default_rng(11)
    allocs: list[dict[str, Any]] = []
    tenants = ("acme", "globex", "initech")
    for n_i, node in enumerate(nodes):
        t = DAY0 + float(rng.integers(0, 3600))
        j = 0
        while t < DAY0 + hours * 3600:
            length = float(rng.integers(1800, 6 * 3600))
            end = min(t + length, DAY0 + hours * 3600 + 3600)
            job = f"job-{n_i}-{j}"
            for g in range(4):
                allocs.append(
                    {
                        "node": node,
                        "gpu": g,
                        "job_id": job,
                        "tenant": tenants[(n_i + j) % 3],
                        "start_s": t + 0.5,
                        "end_s": end + 0.25,
                    }
                )
            j += 1
            t = end + float(rng.integers(0, 3600))
    alloc = pd.DataFrame(allocs)
    idx = np.arange(model.gpu_count)
    node_of = np.array([nodes[i] for i in model.node_of_gpu], dtype=object)
    gpu_of = model.local_index
    rows = []
    steps = int(hours * 3600 / step_s) + 1
    for k in range(steps):
        now = DAY0 + k * step_s
        if k:
            fleet.advance(step_s)
        busy = np.zeros(model.gpu_count, bool)
        live = alloc[(alloc["start_s"] <= now) & (alloc["end_s"] > now)]
        for node, gpu in zip(live["node"], live["gpu"], strict=True):
            busy[model.first_gpu[model.node_index[node]] + gpu] = True
        energy = np.floor(model.energy_mj(idx)).astype(np.uint64)
        power = model.true_power_w(idx)
        rows.append(
            pd.DataFrame(
                {"node": node_of, "gpu": gpu_of, "ts_s": now, "power_w": power, "energy_mj": energy}
            )
        )
        model.set_load(np.flatnonzero(busy), 0.9)
        model.set_load(np.flatnonzero(~busy), 0.0)
    samples = pd.concat(rows, ignore_index=True)
    samples["energy_mj"] = samples["energy_mj"].astype("UInt64")
    no_counter = samples["node"].isin(nodes[:no_counter_nodes])
    samples.loc[no_counter, "energy_mj"] = pd.NA
    return samples, alloc, {"nodes": nodes, "no_counter": nodes[:no_counter_nodes]}

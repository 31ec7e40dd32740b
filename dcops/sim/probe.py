"""SimGpuProbe: NVML-like readings of simulated nodes (the GpuProbe port).

Readings are quantised as NVML reports them (power in mW, temperature in whole
°C, clocks in whole MHz, memory in MiB, utilisation in %). Each GPU's noise is
drawn from its own probe stream and call counter (see :mod:`dcops.sim.noise`),
so a GPU reads the same whichever nodes are read before it.

What shows up here: power, energy, temperature, clocks and clocks-event
reasons (thermal throttle, power brake), ECC counters, remapped rows, NVLink
links active (``nvlink_down``), XIDs, lost GPUs (XID 79: ``lost=True``) and
missing GPUs (absent from ``gpus``). GEMM speed, SDC and NVLink bandwidth do
not: they show only in GEMM and collective results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from dcops.errors import RemoteError
from dcops.measurements import ClocksEventReason, GpuReading, GpuRef, NodeReading
from dcops.sim.model import CUDA_VERSION, DRIVER_VERSION, I64, FleetModel, gpu_uuid
from dcops.sim.noise import Stream, normals

IDLE_LOAD = 0.05  # below this utilisation a GPU reports GPU_IDLE
IDLE_TEMPERATURE_DROP_C = 25.0  # an idle GPU runs this much cooler than under load
BASE_MEMORY_MIB = 600.0  # driver/context memory on an idle GPU
_LANES = 5  # power, temperature, clock, utilisation, memory


class SimGpuProbe:
    """GpuProbe over a :class:`~dcops.sim.model.FleetModel`."""

    def __init__(self, model: FleetModel, *, stream: Stream = Stream.PROBE) -> None:
        self.model = model
        self.stream = stream  # the runner's nvidia-smi reads its own stream

    def read(self, node: str, *, timeout_s: float | None = None) -> NodeReading:
        self.model.refresh()
        self.model.node_idx(node)
        self.model.check_nodes([node], timeout_s)
        return self._readings([node])[0]

    def read_many(
        self, nodes: Sequence[str], *, timeout_s: float | None = None
    ) -> list[NodeReading | RemoteError]:
        """Read many nodes at once (vectorised); an unreachable or hung node gives its error.

        Hung nodes are waited for once, together: the call takes ``timeout_s``
        if any node hangs, as a parallel sweep would.
        """
        model = self.model
        model.refresh()
        for node in nodes:
            model.node_idx(node)
        state = model.state
        good = [n for n in nodes if n not in state.unreachable and n not in state.hung]
        readings = dict(zip(good, self._readings(good), strict=True))
        out: list[NodeReading | RemoteError] = []
        hung_error: RemoteError | None = None
        for node in nodes:
            if node in readings:
                out.append(readings[node])
                continue
            try:
                model.check_nodes([node], 0.0 if hung_error else timeout_s)
            except RemoteError as exc:
                if node in state.hung and hung_error is None:
                    hung_error = exc
                out.append(exc)
        return out

    def _readings(self, nodes: Sequence[str]) -> list[NodeReading]:
        model = self.model
        if not nodes:
            return []
        idx: I64 = np.concatenate([model.node_gpus(n) for n in nodes])
        state = model.state
        nom = model.nominal
        counters = model.counters.take(self.stream, idx)
        z = normals(model.seed, self.stream, idx.astype(np.uint64), counters, _LANES)
        rel = 1.0 + model.noise * z
        load = model.load(idx)
        power = np.maximum(0.0, model.true_power_w(idx) * rel[:, 0])
        energy = model.energy_mj(idx)
        hot = state.temperature_c[idx]
        cool = nom.temperature_c[idx] - IDLE_TEMPERATURE_DROP_C * (1.0 - load)
        temperature = np.where(np.isnan(hot), cool, hot) * rel[:, 1]
        max_clock = nom.max_clock_mhz[idx]
        clock = np.minimum(max_clock, max_clock * state.clock_factor[idx] * rel[:, 2])
        util = np.clip(100.0 * load * rel[:, 3], 0.0, 100.0)
        mem_total = nom.memory_total_mib[idx]
        mem_used = np.clip((BASE_MEMORY_MIB + 0.9 * mem_total * load) * rel[:, 4], 0.0, mem_total)
        reasons = state.reasons[idx] | np.where(
            load < IDLE_LOAD, int(ClocksEventReason.GPU_IDLE), 0
        )
        links_total = nom.nvlink_links[idx]
        links_active = links_total - state.links_down[idx]

        cols = _Columns(
            power=np.round(power, 3).tolist(),
            energy=np.floor(energy).astype(np.int64).tolist(),
            temp=np.round(temperature).tolist(),
            clock=np.round(clock).tolist(),
            max_clock=max_clock.tolist(),
            util=np.round(util).tolist(),
            mem_used=np.round(mem_used).tolist(),
            mem_total=mem_total.tolist(),
            reasons=reasons.tolist(),
            ecc_unc=state.ecc_uncorrectable[idx].tolist(),
            ecc_corr=state.ecc_correctable[idx].tolist(),
            pending=state.remap_pending[idx].tolist(),
            failed=state.remap_failed[idx].tolist(),
            links_active=links_active.tolist(),
            links_total=links_total.tolist(),
            lost=state.lost[idx].tolist(),
            missing=state.missing[idx].tolist(),
        )
        now = model.now()
        out: list[NodeReading] = []
        pos = 0
        for node in nodes:
            name = model.profiles[model.node_idx(node)].gpu.name
            gpus: list[GpuReading] = []
            for index in range(int(model.gpus_per_node[model.node_idx(node)])):
                i, g = pos, int(idx[pos])
                pos += 1
                if cols.missing[i]:
                    continue
                gpus.append(self._gpu(node, index, name, g, i, cols))
            out.append(
                NodeReading(
                    node=node,
                    timestamp_s=now,
                    gpus=tuple(gpus),
                    driver_version=DRIVER_VERSION,
                    cuda_version=CUDA_VERSION,
                )
            )
        return out

    def _gpu(self, node: str, index: int, name: str, g: int, i: int, c: _Columns) -> GpuReading:
        ref = GpuRef(node, index)
        xids = self.model.state.xids.get(g, ())
        if c.lost[i]:
            return GpuReading(gpu=ref, uuid=gpu_uuid(node, index), name=name, lost=True, xids=xids)
        return GpuReading(
            gpu=ref,
            uuid=gpu_uuid(node, index),
            name=name,
            power_w=c.power[i],
            energy_mj=c.energy[i],
            temperature_c=c.temp[i],
            sm_clock_mhz=c.clock[i],
            max_sm_clock_mhz=c.max_clock[i],
            clocks_event_reasons=ClocksEventReason(c.reasons[i]),
            utilization_pct=c.util[i],
            memory_used_mib=c.mem_used[i],
            memory_total_mib=c.mem_total[i],
            ecc_uncorrectable=c.ecc_unc[i],
            ecc_correctable=c.ecc_corr[i],
            remapped_rows_pending=c.pending[i],
            remapped_rows_failed=c.failed[i],
            nvlink_links_active=c.links_active[i],
            nvlink_links_total=c.links_total[i],
            xids=xids,
        )


class _Columns(NamedTuple):
    """One probe's per-GPU values as Python lists (building records from lists is fastest)."""

    power: list[float]
    energy: list[int]
    temp: list[float]
    clock: list[float]
    max_clock: list[float]
    util: list[float]
    mem_used: list[float]
    mem_total: list[float]
    reasons: list[int]
    ecc_unc: list[int]
    ecc_corr: list[int]
    pending: list[bool]
    failed: list[bool]
    links_active: list[int]
    links_total: list[int]
    lost: list[bool]
    missing: list[bool]

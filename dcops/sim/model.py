"""The fleet model: each GPU's hidden true state, derived from the SKU profiles and the faults.

Nothing here is seen by detectors: the adapters (:mod:`dcops.sim.probe`,
:mod:`dcops.sim.gemm`, :mod:`dcops.sim.collectives`, :mod:`dcops.sim.runner`)
turn this state into noisy measurements. State lives in numpy arrays indexed by
a GPU's global index (nodes in site order, GPUs in index order), so a
100-rack fleet (7,200 GPUs) is measured in a few array expressions.

The state is a pure function of the faults active at the clock's current time
(a fault with ``at_s`` appears ``at_s`` seconds after ``start_time_s``); it is
rebuilt whenever that set changes. Energy counters integrate each GPU's true
power over the clock's time, settled before every change of power.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import numpy.typing as npt

from dcops.errors import UnknownNodeError
from dcops.measurements import ClocksEventReason, GpuRef, XidEvent
from dcops.sim.clock import Clock, VirtualClock
from dcops.sim.faults import (
    DEFAULT_POWER_BRAKE_FACTOR,
    DEFAULT_THROTTLE_FACTOR,
    THROTTLE_ABOVE_SLOWDOWN_C,
    Fault,
)
from dcops.sim.noise import F64, CallCounters, Stream, uniforms
from dcops.sim.reachability import Hangs, check_reachable
from dcops.sim.scenario import Scenario
from dcops.skus import SkuProfile, get_sku

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

DRIVER_VERSION = "570.133.20"
CUDA_VERSION = "12.8"
XID_LOST = 79  # "GPU has fallen off the bus"

XID_MESSAGES = {
    13: "Graphics Engine Exception",
    31: "GPU memory page fault",
    43: "GPU stopped processing",
    45: "Preemptive cleanup, due to previous errors",
    48: "An uncorrectable double bit error (DBE) has been detected on GPU",
    63: "Row remapping pending",
    64: "Row remapping failed",
    74: "NVLink Error",
    79: "GPU has fallen off the bus",
    92: "High single-bit ECC error rate",
    94: "Contained ECC error",
    95: "Uncontained ECC error",
    119: "Timeout after 6s of waiting for RPC response from GPU0 GSP",
    120: "GSP Error",
}


@dataclass
class GpuState:
    """Hidden per-GPU truth (arrays of length G) and per-node flags, from the active faults."""

    gemm_factor: F64
    clock_factor: F64
    link_factor: F64
    links_down: I64
    temperature_c: F64  # NaN: the profile's, else a throttling GPU's reading
    reasons: I64
    ecc_uncorrectable: I64
    ecc_correctable: I64
    remap_pending: B
    remap_failed: B
    sdc: B
    sdc_nan: B
    lost: B
    missing: B
    xids: dict[int, tuple[XidEvent, ...]] = field(default_factory=dict)
    unreachable: frozenset[str] = frozenset()
    hung: frozenset[str] = frozenset()

    @classmethod
    def healthy(cls, gpus: int) -> GpuState:
        ones = np.ones(gpus)
        zeros_i = np.zeros(gpus, dtype=np.int64)
        no = np.zeros(gpus, dtype=np.bool_)
        return cls(
            gemm_factor=ones.copy(),
            clock_factor=ones.copy(),
            link_factor=ones.copy(),
            links_down=zeros_i.copy(),
            temperature_c=np.full(gpus, np.nan),
            reasons=zeros_i.copy(),
            ecc_uncorrectable=zeros_i.copy(),
            ecc_correctable=zeros_i.copy(),
            remap_pending=no.copy(),
            remap_failed=no.copy(),
            sdc=no.copy(),
            sdc_nan=no.copy(),
            lost=no.copy(),
            missing=no.copy(),
        )

    @property
    def absent(self) -> B:
        """GPUs that cannot run work: fallen off the bus or missing."""
        result: B = self.lost | self.missing
        return result


@dataclass(frozen=True)
class Nominal:
    """Per-GPU figures from each node's SKU profile (arrays of length G)."""

    max_clock_mhz: F64
    power_w: F64
    idle_power_w: F64
    temperature_c: F64
    slowdown_temperature_c: F64
    memory_total_mib: F64
    nvlink_links: I64
    tflops: dict[str, F64]


class FleetModel:
    """The simulated fleet's hidden state, clock and energy counters."""

    def __init__(self, scenario: Scenario, clock: Clock | None = None) -> None:
        self.scenario = scenario
        self.site = scenario.site
        self.seed = scenario.seed
        self.noise = scenario.noise
        self.clock: Clock = clock or VirtualClock(scenario.start_time_s)
        self.hangs = Hangs()
        nodes = self.site.nodes()
        self.nodes = nodes
        self.node_index = {name: i for i, name in enumerate(nodes)}
        infos = [self.site.node(n) for n in nodes]
        per_node = np.array([info.gpus_per_node for info in infos], dtype=np.int64)
        self.first_gpu: I64 = np.concatenate(([0], np.cumsum(per_node)[:-1])).astype(np.int64)
        self.gpus_per_node: I64 = per_node
        self.gpu_count = int(per_node.sum())
        self.node_of_gpu: I64 = np.repeat(np.arange(len(nodes), dtype=np.int64), per_node)
        self.local_index: I64 = np.arange(self.gpu_count, dtype=np.int64) - np.repeat(
            self.first_gpu, per_node
        )
        self.domain_of_node = [info.domain for info in infos]
        self.profiles: list[SkuProfile] = [get_sku(info.sku) for info in infos]
        self.nominal = _nominal(self.profiles, per_node)
        self.counters = CallCounters(self.gpu_count)
        self._lock = threading.RLock()
        self._faults: list[Fault] = list(scenario.faults)
        self._load = np.full(self.gpu_count, scenario.load)
        self._active_key: tuple[int, ...] | None = None
        self.state = GpuState.healthy(self.gpu_count)
        self._power = self._true_power()
        self._settled_at = self.clock.now()
        self._energy_mj = self._initial_energy_mj()
        self.refresh()

    # -- lookup -----------------------------------------------------------------

    def node_idx(self, node: str) -> int:
        try:
            return self.node_index[node]
        except KeyError:
            raise UnknownNodeError(f"node {node!r} is not in site {self.site.name!r}") from None

    def gpu_indexes(self, gpus: Sequence[GpuRef]) -> I64:
        """Global indexes of ``gpus``; UnknownNodeError for a node or index not in the site."""
        out = np.empty(len(gpus), dtype=np.int64)
        for i, ref in enumerate(gpus):
            n = self.node_idx(ref.node)
            if not 0 <= ref.index < self.gpus_per_node[n]:
                raise UnknownNodeError(
                    f"{ref}: {ref.node} has GPUs 0..{int(self.gpus_per_node[n]) - 1}"
                )
            out[i] = self.first_gpu[n] + ref.index
        return out

    def node_gpus(self, node: str) -> I64:
        n = self.node_idx(node)
        first = int(self.first_gpu[n])
        return np.arange(first, first + int(self.gpus_per_node[n]), dtype=np.int64)

    def ref(self, gpu: int) -> GpuRef:
        return GpuRef(self.nodes[int(self.node_of_gpu[gpu])], int(self.local_index[gpu]))

    def profile_of_gpu(self, gpu: int) -> SkuProfile:
        return self.profiles[int(self.node_of_gpu[gpu])]

    # -- faults and time --------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def refresh(self) -> None:
        """Apply the faults whose time has come (and settle energy first if power changes)."""
        now = self.clock.now()
        start = self.scenario.start_time_s
        with self._lock:
            active = tuple(i for i, f in enumerate(self._faults) if start + f.at_s <= now)
            if active == self._active_key:
                return
            self._settle(now)
            self.state = _build_state(self, [self._faults[i] for i in active])
            self._active_key = active
            self._power = self._true_power()

    def inject(self, fault: Fault) -> None:
        """Add a fault at run time (``at_s`` counts from the scenario start)."""
        self.node_idx(fault.node)
        with self._lock:
            self._faults.append(fault)
            self._active_key = None  # force a rebuild
        self.refresh()

    def clear_faults(self, node: str, kinds: Iterable[str] | None = None) -> int:
        """Remove ``node``'s faults (of ``kinds`` only, if given), as a repair would; count."""
        self.node_idx(node)
        wanted = set(kinds) if kinds is not None else None
        with self._lock:
            keep = [
                f
                for f in self._faults
                if f.node != node or (wanted is not None and f.kind not in wanted)
            ]
            removed = len(self._faults) - len(keep)
            self._faults = keep
            self._active_key = None
        self.refresh()
        return removed

    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def remove_faults(self, drop: Callable[[Fault], bool]) -> int:
        """Remove the faults ``drop`` says yes to (a reboot, a reset, a repair); count."""
        with self._lock:
            keep = [f for f in self._faults if not drop(f)]
            removed = len(self._faults) - len(keep)
            self._faults = keep
            self._active_key = None
        self.refresh()
        return removed

    def set_faults(self, faults: Iterable[Fault]) -> None:
        """Replace the fault list (restoring a persisted fleet)."""
        with self._lock:
            self._faults = list(faults)
            self._active_key = None
        self.refresh()

    def set_load(self, gpus: I64 | None, load: float) -> None:
        """Set the utilisation (0..1) of ``gpus`` (None: all); power and energy follow."""
        if not 0.0 <= load <= 1.0:
            raise ValueError("load is a fraction in [0, 1]")
        with self._lock:
            self._settle(self.clock.now())
            if gpus is None:
                self._load[:] = load
            else:
                self._load[gpus] = load
            self._power = self._true_power()

    def load(self, gpus: I64) -> F64:
        with self._lock:
            result: F64 = self._load[gpus].copy()
        return result

    def check_nodes(self, nodes: Iterable[str], timeout_s: float | None) -> None:
        """Raise (or block, then raise) as unreachable / hung nodes do."""
        state = self.state
        if state.unreachable or state.hung:
            check_reachable(nodes, state.unreachable, state.hung, self.hangs, timeout_s)

    # -- power and energy -------------------------------------------------------

    def _true_power(self) -> F64:
        nom = self.nominal
        dynamic = (nom.power_w - nom.idle_power_w) * self._load * self.state.clock_factor
        power: F64 = np.where(self.state.absent, 0.0, nom.idle_power_w + dynamic)
        return power

    def true_power_w(self, gpus: I64) -> F64:
        with self._lock:
            result: F64 = self._power[gpus].copy()
        return result

    def _settle(self, now: float) -> None:
        elapsed = max(0.0, now - self._settled_at)
        self._energy_mj = self._energy_mj + self._power * elapsed * 1000.0
        self._settled_at = max(now, self._settled_at)

    def energy_mj(self, gpus: I64) -> F64:
        """Each GPU's energy counter (mJ since driver load) at the clock's current time."""
        now = self.clock.now()
        with self._lock:
            elapsed = max(0.0, now - self._settled_at)
            result: F64 = self._energy_mj[gpus] + self._power[gpus] * elapsed * 1000.0
        return result

    def _initial_energy_mj(self) -> F64:
        """Counters at start: idle since a driver load 1 to 30 days earlier (seeded)."""
        keys = np.arange(self.gpu_count, dtype=np.uint64)
        u = uniforms(self.seed, Stream.STATIC, keys, np.zeros_like(keys), 1)[:, 0]
        uptime_s = 86_400.0 * (1.0 + 29.0 * u)
        energy: F64 = self.nominal.idle_power_w * uptime_s * 1000.0
        return energy


def _nominal(profiles: list[SkuProfile], per_node: I64) -> Nominal:
    def col(values: list[float]) -> F64:
        return np.repeat(np.asarray(values, dtype=np.float64), per_node)

    gpus = [p.gpu for p in profiles]
    dtypes = sorted({d for g in gpus for d in g.tflops})
    return Nominal(
        max_clock_mhz=col([g.max_sm_clock_mhz for g in gpus]),
        power_w=col([g.power_w for g in gpus]),
        idle_power_w=col([g.idle_power_w for g in gpus]),
        temperature_c=col([g.temperature_c for g in gpus]),
        slowdown_temperature_c=col([g.slowdown_temperature_c for g in gpus]),
        memory_total_mib=col([g.memory_gib * 1024.0 for g in gpus]),
        nvlink_links=np.repeat(
            np.asarray([g.nvlink_links for g in gpus], dtype=np.int64), per_node
        ),
        tflops={d: col([g.tflops.get(d, np.nan) for g in gpus]) for d in dtypes},
    )


def _build_state(model: FleetModel, faults: list[Fault]) -> GpuState:
    state = GpuState.healthy(model.gpu_count)
    start = model.scenario.start_time_s
    unreachable: set[str] = set()
    hung: set[str] = set()
    xids: dict[int, list[XidEvent]] = {}
    for fault in faults:
        if fault.kind == "unreachable":
            unreachable.add(fault.node)
            continue
        if fault.kind == "hang":
            hung.add(fault.node)
            continue
        node_gpus = model.node_gpus(fault.node)
        idx = node_gpus if fault.gpus is None else node_gpus[list(fault.gpus)]
        _apply(state, model, fault, idx, start, xids)
    state.xids = {g: tuple(events) for g, events in xids.items()}
    state.unreachable = frozenset(unreachable)
    state.hung = frozenset(hung)
    return state


def _apply(
    state: GpuState,
    model: FleetModel,
    fault: Fault,
    idx: I64,
    start: float,
    xids: dict[int, list[XidEvent]],
) -> None:
    kind = fault.kind
    factor = fault.factor
    if kind in ("slow_gemm", "slow_node"):
        state.gemm_factor[idx] *= factor if factor is not None else 1.0
    elif kind == "nvlink_degraded":
        state.link_factor[idx] *= factor if factor is not None else 1.0
    elif kind == "thermal_throttle":
        state.clock_factor[idx] *= factor if factor is not None else DEFAULT_THROTTLE_FACTOR
        state.reasons[idx] |= int(
            ClocksEventReason.HW_THERMAL_SLOWDOWN | ClocksEventReason.SW_THERMAL_SLOWDOWN
        )
        hot = model.nominal.slowdown_temperature_c[idx] + THROTTLE_ABOVE_SLOWDOWN_C
        state.temperature_c[idx] = hot if fault.temperature_c is None else fault.temperature_c
    elif kind == "power_brake":
        state.clock_factor[idx] *= factor if factor is not None else DEFAULT_POWER_BRAKE_FACTOR
        state.reasons[idx] |= int(ClocksEventReason.HW_POWER_BRAKE_SLOWDOWN)
    elif kind == "sdc":
        state.sdc[idx] = True
        state.sdc_nan[idx] |= fault.nan
    elif kind == "xid":
        message = fault.message or XID_MESSAGES.get(fault.code, "")
        for g in idx:
            xids.setdefault(int(g), []).append(XidEvent(fault.code, start + fault.at_s, message))
        if fault.code == XID_LOST:
            state.lost[idx] = True
    elif kind == "ecc":
        state.ecc_uncorrectable[idx] += fault.uncorrectable
        state.ecc_correctable[idx] += fault.correctable
    elif kind == "remapped_rows":
        if fault.state == "failed":
            state.remap_failed[idx] = True
        else:
            state.remap_pending[idx] = True
    elif kind == "missing_gpu":
        state.missing[idx] = True
    elif kind == "nvlink_down":
        total = model.nominal.nvlink_links[idx]
        down = total if fault.links is None else np.minimum(total, fault.links)
        state.links_down[idx] = np.minimum(total, state.links_down[idx] + down)
    else:  # pragma: no cover - FAULT_KINDS and this function are kept in step by tests
        raise AssertionError(f"fault kind {kind!r} has no effect defined")


@cache
def gpu_uuid(node: str, index: int) -> str:
    """A stable, made-up GPU UUID for a node's GPU (the same whatever the seed)."""
    import hashlib

    h = hashlib.blake2b(f"{node}/{index}".encode(), digest_size=16).hexdigest()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def pci_bus_id(index: int) -> str:
    return f"{index + 1:08X}:01:00.0"
